"""What the live-Odoo tests share (tests/odoo_live.py runs the Odoo): ``live``, the running
Odoo of each series found (a module fixture: import it into the test module);
``data_connection``, an agent's connection to the same Odoo, and ``shared_connection``, a
connection a person makes in Odoo and shares with the Agent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from odoo_live import LiveOdoo, live_odoo, series_params

OWNER = ("olga", "olga-pw-1234")  # an MCP Guard User who owns connections (odoo_live.py)


@pytest.fixture(scope="module", params=series_params())
def live(request: pytest.FixtureRequest) -> Iterator[LiveOdoo]:
    """A running Odoo with ``mcp_guard``, once per series (a series not found: NOT RUN)."""
    with live_odoo(request.param) as odoo, odoo.running():
        yield odoo


def data_connection(live: LiveOdoo, alias: str) -> dict[str, Any]:
    """An agent's odoo_connect arguments for the same Odoo as the plain 'data' user."""
    return {
        "alias": alias,
        "url": live.url,
        "db": live.db,
        "username": "data",
        "api_key": live.data_key,
        "protocol": live.protocol,
    }


def shared_connection(live: LiveOdoo, alias: str) -> int:
    """A connection the owner makes in Odoo to the same Odoo as the plain 'data' user (its API
    key, the series' protocol) and shares with the Agent; its id."""
    agent_id = live.admin("res.users", "search", [["login", "=", "mcp-agent"]])[0]
    return live.rpc(
        *OWNER,
        "mcp.connection",
        "create",
        {
            "alias": alias,
            "url": live.url,
            "db": live.db,
            "login": "data",
            "new_api_key": live.data_key,
            "protocol": live.protocol,
            "agent_user_ids": [(4, agent_id)],
        },
    )
