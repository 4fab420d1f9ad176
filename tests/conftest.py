"""Fixtures and hooks only. The helpers the tests share live in ``tests/support``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- tiers -------------------------------------------------------------------------------
# unit: in-process, no subprocess, no service (`make test-fast`, under 30 s). e2e: the real
# guard, CLI or upstream as subprocesses. odoo/postgres/redis/docker: what needs that service
# (always e2e). Assigned here by file; a test marked unit or e2e itself keeps its marker.

UNIT_FILES = {
    "test_catalog.py",
    "test_guard.py",
    "test_policy.py",
    "test_policy_core.py",
    "test_policy_golden.py",
    "test_properties.py",
    "test_store.py",
}
SERVICE_FILES = {
    "test_catalog_odoo.py": "odoo",
    "test_docker.py": "docker",
    "test_odoo_addon.py": "odoo",
    "test_odoo_backend.py": "odoo",
    "test_pg_replicas.py": "postgres",
    "test_proxy_odoo.py": "odoo",
    "test_replica_races.py": "postgres",
}
SERVICE_FIXTURES = {"pg_database": "postgres"}
SERVICES = ("odoo", "postgres", "redis", "docker")


def _uses_postgres_store(item: pytest.Item) -> bool:
    """test_store's engine-parametrised tests on their postgresql run."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("opener") == "postgresql"


# The longest files first (the add-on's suites inside Odoo, then the live-Odoo files): with
# two workers taking a file each (make test: pytest-xdist --dist loadfile, no reordering by
# test count), a long file started last would run alone at the end.
LONGEST_FIRST = (
    "test_odoo_addon.py",
    "test_odoo_backend.py",
    "test_proxy_odoo.py",
    "test_catalog_odoo.py",
    "test_odoo_routing.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept
    for item in items:
        name = item.path.name
        service = SERVICE_FILES.get(name)
        if service and not item.get_closest_marker("unit"):  # unit: needs no service
            item.add_marker(service)
        for fixture, marker in SERVICE_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
        if _uses_postgres_store(item):
            item.add_marker("postgres")
        if item.get_closest_marker("unit") or item.get_closest_marker("e2e"):
            continue
        needs_service = any(item.get_closest_marker(s) for s in SERVICES)
        item.add_marker("unit" if name in UNIT_FILES and not needs_service else "e2e")
