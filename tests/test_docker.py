"""docker/: the image and the compose stack, checked against the package without a Docker engine.

The compose file is validated and expanded by `docker-compose config` (Debian's docker-compose
package, or the `docker compose` plugin), which needs no engine; the Dockerfile is parsed here.
The image's HEALTHCHECK command is run against a real `serve --transport http`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from support.guard import free_port, http_guard

from odoo_mcp_guard.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
PROFILE = "pg-store"

# --- helpers ----------------------------------------------------------------------------------


def compose_command() -> list[str] | None:
    """`docker-compose` (v1, Debian) or the `docker compose` plugin, whichever is here."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


COMPOSE_CMD = compose_command()
needs_compose = pytest.mark.skipif(
    COMPOSE_CMD is None,
    reason="COMPOSE FILE NOT VALIDATED: neither docker-compose nor the docker compose plugin "
    "is installed (apt-get install -y docker-compose; .ci/run does it)",
)


def clean_env() -> dict[str, str]:
    """Only what the compose tool needs: no variable of the caller leaks into interpolation."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {key: os.environ[key] for key in keep if key in os.environ}


def run_compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_CMD is not None
    command = [*COMPOSE_CMD, "-f", str(COMPOSE), "--env-file", str(env_file), *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=120
    )


def compose_config(*profiles: str, env_file: Path = ENV_EXAMPLE) -> dict[str, Any]:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_compose(*flags, "config", env_file=env_file)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    parsed = yaml.safe_load(result.stdout)
    assert isinstance(parsed, dict) and "services" in parsed, result.stdout
    return parsed


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends with a continuation line"
    return instructions


def instruction(name: str) -> list[str]:
    return [rest for keyword, rest in dockerfile_instructions() if keyword == name]


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def healthcheck_command() -> list[str]:
    (rest,) = instruction("HEALTHCHECK")
    _, sep, command = rest.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {rest}"
    command = command.strip()
    return exec_form(command) if command.startswith("[") else ["/bin/sh", "-c", command]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match[1]] = match[2]
    return values


def port_mappings(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, published, target) for v1's "ip:pub:target/tcp" strings and v2's mappings."""
    mappings = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            mappings.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            spec = str(port).split("/")[0]
            parts = spec.split(":")
            assert len(parts) == 3, f"expected ip:published:target, got {port!r}"
            mappings.append((parts[0], int(parts[1]), int(parts[2])))
    return mappings


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) for v1's "src:dst[:mode]" strings and v2's mappings."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume["source"], volume["target"]))
        else:
            source, target = str(volume).split(":")[:2]
            mounts.append((source, target))
    return mounts


def serve_default_port() -> int:
    port = build_parser().parse_args(["serve"]).port
    assert isinstance(port, int)
    return port


# --- the compose file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if COMPOSE_CMD is None:
        pytest.skip(needs_compose.kwargs["reason"])
    return compose_config(PROFILE)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


@needs_compose
@pytest.mark.parametrize("profiles", [(), (PROFILE,)], ids=["default", PROFILE])
def test_compose_file_is_valid(profiles: tuple[str, ...]) -> None:
    services = compose_config(*profiles)["services"]
    assert {"db", "odoo", "redis", "guard"} <= set(services)
    for name in ("db", "odoo", "redis", "guard"):
        assert not services[name].get("profiles"), f"{name} must run without a profile"
    for name in ("guard-pg", "guard-pg-init"):
        # Compose v1 prints every service; v2 only those of the active profiles.
        if PROFILE in profiles:
            assert name in services, name
        if name in services:
            assert services[name].get("profiles") == [PROFILE], name


@needs_compose
def test_compose_refuses_a_missing_postgres_password(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_every_compose_variable_is_documented_in_env_example() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    used |= set(re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text))
    assert {"POSTGRES_PASSWORD", "ODOO_API_KEY", "MCP_GUARD_DB_PASSWORD"} <= used
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented = env_example()
    for name in sorted(used):
        assert name in documented, f"{name} is used in docker-compose.yml, not in .env.example"
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        assert index > 0 and lines[index - 1].startswith("#"), f"{name} has no comment above it"
    for name in sorted(set(documented) - used):
        pytest.fail(f"{name} is in .env.example but not used by docker-compose.yml")


def test_env_example_holds_placeholders_only() -> None:
    values = env_example()
    assert values["ODOO_API_KEY"] == ""
    for name in ("POSTGRES_PASSWORD", "MCP_GUARD_DB_PASSWORD"):
        assert values[name].startswith("change-me"), name


def test_named_volumes_only_for_state(config: dict[str, Any], services: dict[str, Any]) -> None:
    named = set(config.get("volumes", {}))
    expected = {
        "db": "/var/lib/postgresql/data",
        "odoo": "/var/lib/odoo",
        "redis": "/data",
        "guard": "/data",
    }
    for name, target in expected.items():
        sources = [source for source, tgt in volume_mounts(services[name]) if tgt == target]
        assert sources and sources[0] in named, f"{name}:{target} is not on a named volume"


def test_guard_service_runs_the_image_against_odoo(services: dict[str, Any]) -> None:
    guard = services["guard"]
    assert guard["build"]["dockerfile"] == "docker/Dockerfile"
    assert Path(guard["build"]["context"]).resolve() == ROOT
    env = guard["environment"]
    assert env["ODOO_URL"] == "http://odoo:8069"
    assert env["ODOO_DB"] == env_example()["ODOO_DB"]
    assert "MCP_GUARD_DATABASE_URL" not in env
    assert "command" not in guard, "guard should use the image's default CMD"


def test_guard_port_mapping_matches_the_image(services: dict[str, Any]) -> None:
    (exposed,) = instruction("EXPOSE")
    for name, host_port in (("guard", "GUARD_PORT"), ("guard-pg", "GUARD_PG_PORT")):
        (mapping,) = port_mappings(services[name])
        assert mapping == ("127.0.0.1", int(env_example()[host_port]), int(exposed)), name


@needs_compose
@pytest.mark.parametrize("series", ["18.0", "19.0"])
def test_odoo_mounts_the_addon_of_its_series_and_installs_it(series: str, tmp_path: Path) -> None:
    """ODOO_SERIES picks the image tag and the add-on layer Odoo loads, whose manifest must be
    of that series (Odoo refuses a module of another series)."""
    if series == env_example()["ODOO_SERIES"]:
        env_file = ENV_EXAMPLE
    else:
        env_file = tmp_path / "series.env"
        env_file.write_text(ENV_EXAMPLE.read_text() + f"\nODOO_SERIES={series}\n")
    services = compose_config(env_file=env_file)["services"]
    odoo = services["odoo"]
    assert odoo["image"] == f"odoo-mcp-guard-odoo:{series}"
    # built on the official image of the series, with the add-on's ICU dependency
    assert odoo["build"]["args"]["ODOO_SERIES"] == series
    dockerfile = (ROOT / "docker" / odoo["build"]["dockerfile"]).read_text()
    assert "FROM odoo:${ODOO_SERIES}" in dockerfile and "pyicu-wheels" in dockerfile
    (source,) = [src for src, tgt in volume_mounts(odoo) if tgt == "/mnt/extra-addons"]
    mounted = Path(source).resolve()
    assert mounted == ROOT / "odoo_addon"
    command = odoo["command"]
    assert command[0] == "--", "without '--' the odoo image's entrypoint adds no db options"
    (addons_arg,) = [arg for arg in command if arg.startswith("--addons-path=")]
    inside = PurePosixPath(addons_arg.partition("=")[2]).relative_to("/mnt/extra-addons")
    manifest = mounted / inside / "mcp_guard" / "__manifest__.py"
    assert manifest.is_file(), manifest
    # the symlinks of a series layer must stay inside the mounted folder
    assert manifest.resolve().is_relative_to(mounted)
    for path in (mounted / inside / "mcp_guard").rglob("*"):
        assert path.resolve().is_relative_to(mounted), f"{path} leaves the mount"
    version = ast.literal_eval(manifest.read_text())["version"]
    assert version.startswith(series + "."), (manifest, version)
    assert "--init=mcp_guard" in command
    env = odoo["environment"]
    assert env["HOST"] == "db"
    assert env["PASSWORD"] == services["db"]["environment"]["POSTGRES_PASSWORD"]
    assert env["USER"] == services["db"]["environment"]["POSTGRES_USER"]


def test_pg_store_profile_points_the_guard_at_the_stack_database(
    services: dict[str, Any],
) -> None:
    guard_pg = services["guard-pg"]
    url = urlsplit(guard_pg["environment"]["MCP_GUARD_DATABASE_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", "db", 5432, "/guard")
    assert url.username == "guard"
    assert url.password == env_example()["MCP_GUARD_DB_PASSWORD"]
    assert "ODOO_URL" not in guard_pg["environment"]
    args = build_parser().parse_args(guard_pg["command"])
    assert (args.transport, args.host, args.backend) == ("http", "0.0.0.0", "local")
    assert args.port == int(instruction("EXPOSE")[0])
    assert guard_pg["depends_on"]["guard-pg-init"]["condition"] == (
        "service_completed_successfully"
    )
    init = services["guard-pg-init"]
    assert init["environment"]["PGHOST"] == "db"
    (script,) = [Path(src) for src, tgt in volume_mounts(init) if tgt == init["entrypoint"][-1]]
    assert script.resolve() == DOCKER / "pg-store-init.sh"
    text = script.read_text()
    assert "CREATE DATABASE guard OWNER guard" in text and "MCP_GUARD_DB_PASSWORD" in text


# --- the Dockerfile ---------------------------------------------------------------------------


def test_base_image_is_slim_python_311() -> None:
    (base,) = instruction("FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base


def test_entrypoint_is_the_console_script() -> None:
    scripts = pyproject()["project"]["scripts"]
    (entrypoint,) = instruction("ENTRYPOINT")
    command = exec_form(entrypoint)
    assert len(command) == 1 and command[0] in scripts, (command, scripts)
    assert scripts[command[0]] == "odoo_mcp_guard.cli:main"


def test_default_cmd_is_http_serve_on_the_default_port() -> None:
    (cmd,) = instruction("CMD")
    args = build_parser().parse_args(exec_form(cmd))
    assert args.handler.__name__ == "cmd_serve"
    assert (args.transport, args.host) == ("http", "0.0.0.0")
    (exposed,) = instruction("EXPOSE")
    assert args.port == int(exposed) == serve_default_port()


def test_copies_what_the_package_build_needs() -> None:
    project = pyproject()
    copied: set[str] = set()
    for rest in instruction("COPY"):
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            copied.add(source.rstrip("/"))
    assert project["project"]["readme"] in copied
    assert "pyproject.toml" in copied
    for where in project["tool"]["setuptools"]["packages"]["find"]["where"]:
        assert where in copied
    assert any(re.search(r"\bpip install \.(\s|$)", rest) for rest in instruction("RUN"))


def test_runs_as_non_root_with_data_volume() -> None:
    users = instruction("USER")
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert "/data" in exec_form(instruction("VOLUME")[0])
    env = " ".join(instruction("ENV"))
    assert re.search(r"\bMCP_GUARD_DATA_DIR=/data\b", env), env


def test_healthcheck_targets_the_served_port() -> None:
    command = healthcheck_command()
    code = command[-1]
    match = re.search(r"HTTPConnection\('127\.0\.0\.1', (\d+)", code)
    assert match, code
    assert int(match[1]) == int(instruction("EXPOSE")[0]) == serve_default_port()
    assert "'/mcp'" in code


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    assert command[0] == "python", command
    code = command[-1].replace(f", {serve_default_port()},", f", {port},")
    assert f", {port}," in code
    return subprocess.run(
        [sys.executable, *command[1:-1], code], capture_output=True, text=True, timeout=30
    )


def test_healthcheck_fails_when_nothing_listens() -> None:
    assert _healthcheck(free_port()).returncode != 0


def test_healthcheck_passes_against_the_http_server(tmp_path: Path) -> None:
    with http_guard(tmp_path) as running:
        port = urlsplit(running.url).port
        assert port is not None
        result = _healthcheck(port)
        assert result.returncode == 0, result.stderr
