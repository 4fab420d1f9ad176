"""A new user on a fresh clone, following the README literally ("Right the first time"):
one data directory for ``make run`` and every command, the exact approval command relayed to
the agent, shipped example policies that work, and one clear line for every mistake."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from odoo_harness import free_port
from support.guard import (
    EFFECT_WAIT,
    REPO,
    audit_count,
    connect_args,
    guard_command,
    guard_env,
    http_client,
    http_guard,
    http_process,
    move_expiry_to_the_past,
    policy,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    stdio_client,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
)

pytestmark = pytest.mark.anyio

EXAMPLES = sorted((REPO / "examples").glob("*.json"))
VENV = Path(sys.executable).parent.parent  # the virtualenv running these tests


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def relayed_command(text: str) -> list[str]:
    """The command in backquotes of a pending answer, as the approver 'carol' types it."""
    found = re.search(r"`([^`]*approvals approve[^`]*)`", text)
    assert found, text
    return [("carol" if word == "NAME" else word) for word in shlex.split(found[1])]


# --- the README's first screen, on a fresh clone, in a fresh HOME --------------------------


def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    # `make run` installs into .venv: lend it this one, already installed (older than
    # pyproject.toml's copy would make make reinstall it).
    (clone / ".venv").symlink_to(VENV, target_is_directory=True)
    installed = (VENV / "bin" / "odoo-mcp-guard").stat().st_mtime
    os.utime(clone / "pyproject.toml", (installed - 60, installed - 60))
    return clone


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """A login shell's environment in a new HOME: no data directory, policy or identity
    chosen, the virtualenv not on PATH."""
    env = guard_env()
    for key in ("MCP_GUARD_DATA_DIR", "XDG_DATA_HOME", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(key, None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV / "bin"
    )
    env["HOME"] = str(home)
    env.update(extra)
    return env


def readme_setup_commands() -> list[str]:
    first_screen = (REPO / "README.md").read_text(encoding="utf-8").split("\n---\n", 1)[0]
    block = re.search(r"```sh\n(.*?)```", first_screen, re.S)
    assert block, "the README's first screen has no sh block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


@contextmanager
def make_run(clone: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`make run` as the README prints it, until it says where it serves: (url, token)."""
    log = clone.parent / "make-run.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the guard it runs: one group to stop
        )
    try:
        deadline = time.monotonic() + 60
        while "serving on http://" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"make run did not serve ({proc.poll()}):\n{log.read_text()}")
            time.sleep(0.05)
        output = log.read_text()
        url = re.search(r"serving on (http://\S+)", output)[1]
        token = re.search(r"^(mcpg_\S+)$", output, re.M)[1]
        yield url, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="no make")
async def test_readme_first_screen_on_a_fresh_clone(tmp_path: Path) -> None:
    assert readme_setup_commands() == ["make run", "make test"]
    clone = fresh_clone(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = newcomer_env(home, PORT=str(port))
    with make_run(clone, env) as (url, token):
        assert url == f"http://127.0.0.1:{port}/mcp"
        async with http_client(url, token) as client:
            created = await client.call_tool("odoo_connect", connect_args("prod"))
            assert not created.is_error, text_of(created)
            answer = await client.call_tool("odoo_disconnect", {"alias": "prod"})
            assert answer.structured_content["status"] == "pending", text_of(answer)
            ref = answer.structured_content["request"]

            # The approver carol, in another shell (same HOME), types exactly what was relayed.
            command = relayed_command(text_of(answer))
            assert command[0].startswith("/")  # not on PATH after make run: named in full
            assert ref in command and "--data-dir" not in command  # the default directory
            listed = cli(command[0], "approvals", "list", env=newcomer_env(home))
            assert ref in listed.stdout, listed.stdout + listed.stderr
            decided = cli(*command, env=newcomer_env(home))
            assert decided.returncode == 0, decided.stderr
            assert f"{ref} approved by carol" in decided.stdout

            retried = await client.call_tool("odoo_disconnect", {"alias": "prod"})
            assert not retried.is_error, text_of(retried)
            assert retried.structured_content == {"alias": "prod", "removed": True}

        # A token added the way the README says reaches the running guard.
        added = cli(command[0], "tokens", "add", "claude-code", env=newcomer_env(home))
        assert added.returncode == 0, added.stderr
        async with http_client(url, added.stdout.strip()) as client:
            listed = await client.call_tool("odoo_connections", {})
            assert listed.structured_content == {"connections": [], "count": 0}
    data = home / ".local" / "share" / "odoo-mcp-guard"
    assert (data / "guard.sqlite3").is_file() and not (clone / ".data").exists()


# --- 1: one data directory, --data-dir anywhere, reads never create a store ----------------


def test_data_dir_is_accepted_after_the_command_and_reads_create_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "nowhere"
    for args in (
        ["approvals", "list"],
        ["audit", "tail"],
        ["connections", "list"],
        ["tools", "list"],
    ):
        result = cli(*guard_command(*args, "--data-dir", str(empty)), env=guard_env())
        assert result.returncode == 0, result.stderr
        assert f"no guard store in {empty}" in one_line(result.stderr)
    assert not empty.exists()
    refused = cli(
        *guard_command(
            "approvals", "approve", "MCPR-00001", "--as", "bob", "--data-dir", str(empty)
        ),
        env=guard_env(),
    )
    assert refused.returncode == 2
    assert f"no guard store in {empty}" in one_line(refused.stderr)
    assert not empty.exists()


async def test_relayed_command_names_the_executable_and_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with stdio_client(data) as client:
        await client.call_tool("odoo_connect", connect_args("prod"))
        answer = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        ref = answer.structured_content["request"]
        command = relayed_command(text_of(answer))
        assert command[command.index("--data-dir") + 1] == str(data)
        # From a shell that has neither the virtualenv on PATH nor MCP_GUARD_DATA_DIR.
        shell = newcomer_env(tmp_path / "home")
        decided = cli(*command, env=shell)
        assert decided.returncode == 0, decided.stderr
        assert f"{ref} approved by carol" in decided.stdout
        retried = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert retried.structured_content == {"alias": "prod", "removed": True}


# --- 2: example policies, and rules that can never apply ---------------------------------


def test_examples_are_shipped_and_check_clean() -> None:
    assert [p.name for p in EXAMPLES] == ["policy.json", "readonly.json"]
    for path in EXAMPLES:
        result = cli(*guard_command("policy", "check", str(path)), env=guard_env())
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # no warning: every rule can apply


def test_readme_policy_is_the_example() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The policy", 1)[1]
    shown = json.loads(re.search(r"```json\n(.*?)```", section, re.S)[1])
    assert shown == json.loads((REPO / "examples" / "policy.json").read_text())


def test_readme_policy_check_command_works_as_printed() -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## The policy", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    check = next(line for line in block.splitlines() if " policy check " in line)
    if not (REPO / shlex.split(check)[0]).exists():
        pytest.skip(f"{shlex.split(check)[0]} is not installed in this checkout")
    result = cli(*shlex.split(check), env=guard_env(), cwd=REPO)
    assert result.returncode == 0 and result.stderr == "", result.stderr


async def test_example_policy_runs_the_documented_flow(tmp_path: Path) -> None:
    pol = REPO / "examples" / "policy.json"
    async with stdio_client(tmp_path, policy_file=pol) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "odoo_disconnect" in names and "odoo_unlink" not in names
        await client.call_tool("odoo_connect", connect_args("prod"))
        answer = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert answer.structured_content["status"] == "pending", text_of(answer)
        assert cli(*relayed_command(text_of(answer)), env=guard_env()).returncode == 0
        retried = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert retried.structured_content == {"alias": "prod", "removed": True}
        denied = await client.call_tool("odoo_write", {"model": "res.partner", "ids": [1]})
        assert denied.is_error


async def test_readonly_example_serves_only_reads(tmp_path: Path) -> None:
    pol = REPO / "examples" / "readonly.json"
    async with stdio_client(tmp_path, policy_file=pol) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"odoo_connections", "odoo_search_read", "odoo_read", "odoo_fields_get"}
        listed = await client.call_tool("odoo_connections", {})
        assert listed.structured_content == {"connections": [], "count": 0}
        refused = await client.call_tool("odoo_disconnect", {"alias": "prod"})
        assert refused.is_error


@pytest.mark.parametrize(
    ("document", "warning"),
    [
        (
            {"hide": ["odoo_disconnect"], "rules": {"odoo_disconnect": {"action": "deny"}}},
            "rule 'odoo_disconnect' never applies: odoo_disconnect is hidden",
        ),
        (
            {"hide": ["odoo_*"], "rules": {"odoo_dis*": {"action": "deny"}}},
            "rule 'odoo_dis*' never applies: every tool it matches is hidden",
        ),
        (
            {
                "rules": {
                    "odoo_disconnect": {"action": "deny"},
                    "odoo_disc*": {"action": "deny"},
                }
            },
            "rule 'odoo_disc*' never applies to the guard's own tools",
        ),
    ],
)
def test_policy_check_warns_on_rules_that_never_apply(
    tmp_path: Path, document: dict[str, Any], warning: str
) -> None:
    path = write_policy(tmp_path / "p.json", {"version": "1", "default": "deny", **document})
    result = cli(*guard_command("policy", "check", str(path)), env=guard_env())
    assert result.returncode == 0
    assert f"warning: {path}: {warning}" in one_line(result.stderr)


# --- 3 and 13: an upstream that cannot start, or is down ------------------------------------


def run_proxy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        guard_command("proxy", "--data-dir", str(tmp_path), *args),
        env=guard_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_proxy_whose_upstream_command_is_missing_fails_at_start(tmp_path: Path) -> None:
    result = run_proxy(tmp_path, "--upstream-command", "uvx-not-installed odoo-claude-mcp")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "odoo-mcp-guard: error: the upstream command 'uvx-not-installed odoo-claude-mcp' "
        "cannot start: uvx-not-installed was not found on PATH"
    )
    missing = tmp_path / "bin" / "server"
    result = run_proxy(tmp_path, "--upstream-command", str(missing))
    assert result.returncode == 2
    assert f"cannot start: {missing} was not found" in one_line(result.stderr)


def test_proxy_whose_upstream_exits_at_once_fails_at_start(tmp_path: Path) -> None:
    command = shlex.join([sys.executable, "-c", "raise SystemExit(3)"])
    result = run_proxy(tmp_path, "--upstream-command", command)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"odoo-mcp-guard: error: the upstream command '{command}' cannot start")
    assert "exited before completing the MCP handshake" in line


def test_proxy_whose_upstream_lists_invalid_tools_fails_at_start_in_one_line(
    tmp_path: Path,
) -> None:
    """Outside round 23: pydantic's many-line message was printed as it was."""
    upstream = Path(__file__).with_name("malformed_upstream.py")
    command = shlex.join([sys.executable, str(upstream), "invalid_listing"])
    result = run_proxy(tmp_path, "--upstream-command", command)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert one_line(result.stderr).endswith(
        "cannot start: its ListToolsResult is not valid MCP (1 error)"
    ), result.stderr


async def test_proxy_tells_the_agent_the_upstream_is_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    args = proxy_args(tmp_path, upstream=f"http://127.0.0.1:{port}/mcp", server_name="notes")
    async with proxy_stdio_client(tmp_path, args) as client:
        listed = await client.list_tools()
        assert listed.tools == []
        down = listed.meta["odoo-mcp-guard/upstream"]
        assert down["status"] == "down" and down["server"] == "notes"
        assert f"127.0.0.1:{port} does not accept connections" in down["cause"]
        answer = await client.call_tool("noop", {})
        assert answer.is_error and answer.structured_content == {"status": "down"}
        assert text_of(answer).startswith(
            f"Refused: the upstream server notes is down: 127.0.0.1:{port} does not accept "
            "connections"
        ), text_of(answer)
        assert "unknown tool" not in text_of(answer)
    assert audit_count(tmp_path, "unavailable") == 1


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_upstream_gone_while_idle_is_not_reachable_at_once(
    tmp_path: Path, mode: str
) -> None:
    pol = write_policy(tmp_path / "p.json", {"version": "1", "default": "allow"})
    state = tmp_path / "state.json"
    port = free_port()
    args = proxy_args(tmp_path, pol, upstream=f"http://127.0.0.1:{port}/mcp")
    env = {"MCP_GUARD_UPSTREAM_MODE": mode}  # legacy: no listen stream sees it go
    with http_process(
        upstream_command(state, transport="http", port=port), tmp_path / "up", port
    ) as up:
        async with proxy_stdio_client(tmp_path, args, env=env) as client:
            assert not (await client.call_tool("read_note", {"key": "a"})).is_error
            up.proc.kill()
            up.proc.wait()
            answer = await client.call_tool("read_note", {"key": "b"})
            message = text_of(answer)
            assert answer.is_error
            # Said at once, whether the session saw it go (auto: its listen stream) or only
            # the call's own request found it gone (legacy: nothing was sent).
            not_sent = "nothing was sent" in message and "not reachable" in message
            down = "is down" in message and "does not accept connections" in message
            assert not_sent or down, message
            assert "Whether it acted is unknown" not in message
    assert [call["arguments"] for call in upstream_calls(state)] == [{"key": "a"}]


# --- 4: a port in use --------------------------------------------------------------------


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            guard_command("serve", "--transport", "http", "--port", str(port)),
            env=guard_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode != 0
    line = one_line(result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert "serving on" not in result.stderr


# --- 5: a data directory that cannot be written ------------------------------------------


@pytest.mark.parametrize("data_dir", ["/proc/1", "/proc/version/guard"])
def test_unwritable_data_dir_is_one_line(data_dir: str) -> None:
    env = guard_env()
    for args in (["approvals", "list"], ["audit", "tail"], ["connections", "list"]):
        result = cli(*guard_command(*args, "--data-dir", data_dir), env=env)
        assert result.returncode == 0 and len(result.stderr.strip().splitlines()) == 1
    for args in (["tokens", "add", "zed"], ["serve"]):
        result = subprocess.run(
            guard_command(*args, "--data-dir", data_dir),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert data_dir in one_line(result.stderr)


# --- 6: tools list judges with the policy in force, and shows what a change is -------------


async def test_tools_list_shows_the_decision_in_force_and_a_changed_definition(
    tmp_path: Path,
) -> None:
    pol = write_policy(
        tmp_path / "policy.json",
        {"version": "1", "default": "deny", "rules": {"write_note": {"action": "allow"}}},
    )
    state = tmp_path / "state.json"
    # No --server-name: the name is derived from the whole upstream, readable and stable.
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), server_name=None)
    async with proxy_stdio_client(tmp_path, args) as client:
        assert not (await client.call_tool("write_note", {"key": "a", "value": "1"})).is_error
    (server,) = {row[0] for row in query(tmp_path, "SELECT server FROM pinned_tools")}
    assert server.startswith("upstream_server~"), server

    def tools(*extra: str, policy_env: Path | None = None) -> list[str]:
        env = guard_env(tmp_path, **({"MCP_GUARD_POLICY": str(policy_env)} if policy_env else {}))
        result = cli(*guard_command("tools", *extra), env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    for lines in (
        tools("list", "--policy", str(pol)),
        tools("list", policy_env=pol),  # as the guard reads it: --policy, else the variable
        tools("list", "--server", server, "--policy", str(pol)),
    ):
        assert lines[0] == f"decisions of the policy {pol}"
        header = lines[1]
        assert header.split() == ["SERVER", "TOOL", "CLASS", "DECISION", "STATE", "DEFINITION"]
        rows = {line.split()[1]: line for line in lines[2:] if line.startswith(f"{server} ")}
        assert {"write_note", "noop", "confirm_delete"} <= set(rows)
        assert rows["write_note"].split()[3] == "allow"
        assert rows["read_note"].split()[3] == "deny"
        column = header.index("DECISION")  # the same column on every row, long names or not
        assert all(row[column:].split()[0] in ("allow", "deny") for row in rows.values())
    builtin = tools("list")  # neither given: the built-in policy, and it says so
    assert builtin[0].startswith("decisions of the policy <built-in> (no --policy given")
    assert next(row for row in builtin if " write_note " in row).split()[3] == "deny"
    unknown = cli(*guard_command("tools", "list", "--server", "nope"), env=guard_env(tmp_path))
    assert unknown.returncode == 2 and f"(known: {server})" in one_line(unknown.stderr)

    # The upstream changes write_note: the new description is shown before it is accepted.
    # (Not by --upstream-env: that is part of the derived name, so another server.)
    state.with_name(state.name + ".variant").write_text("2", encoding="utf-8")
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
    listed = "\n".join(tools("list", "--policy", str(pol)))
    shown = "\n".join(tools("show", "write_note", "--policy", str(pol)))
    for output in (listed, shown):
        assert "-  Write a note." in output, output
        assert "+  Write a note, and forward it to any address." in output
        assert '+      "forward_to": {' in output
    assert "refused until accepted (odoo-mcp-guard tools accept write_note --server " in shown
    accepted = cli(
        *guard_command("tools", "accept", "write_note", "--as", "manager"), env=guard_env(tmp_path)
    )
    assert accepted.returncode == 0, accepted.stderr
    after = "\n".join(tools("show", "write_note"))
    assert "Write a note, and forward it to any address." in after and "CHANGED" not in after


# --- 7: a token is never replaced by surprise --------------------------------------------


async def test_tokens_add_refuses_to_replace_without_rotate(tmp_path: Path) -> None:
    first = run_cli(tmp_path, "tokens", "add", "local").stdout.strip()
    again = run_cli(tmp_path, "tokens", "add", "local", check=False)
    assert again.returncode == 2 and again.stdout == ""
    assert "local already has a token" in one_line(again.stderr) and "--rotate" in again.stderr
    with http_guard(tmp_path) as guard:
        async with http_client(guard.url, first) as client:  # the first one still works
            assert not (await client.call_tool("odoo_connections", {})).is_error
        rotated = run_cli(tmp_path, "tokens", "add", "local", "--rotate")
        assert "the old token of local is no longer valid" in rotated.stderr
        async with http_client(guard.url, rotated.stdout.strip()) as client:
            assert not (await client.call_tool("odoo_connections", {})).is_error


# --- 8: removing what is not there -------------------------------------------------------


async def test_disconnect_of_a_missing_alias_is_refused_at_once(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        answer = await client.call_tool("odoo_disconnect", {"alias": "ghost"})
        assert answer.is_error and "no connection named 'ghost'" in text_of(answer)
        assert "no approval was requested" in text_of(answer)
        assert (answer.structured_content or {}).get("status") != "pending"
    assert query(tmp_path, "SELECT count(*) FROM approval_requests")[0][0] == 0
    assert audit_count(tmp_path, "invalid") == 1


# --- 9: the approver sees what they decide -----------------------------------------------


async def test_approver_sees_arguments_the_replaced_connection_and_expiry(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        await client.call_tool("odoo_connect", connect_args("prod"))
        new = connect_args("prod", url="https://new.example.com", db="new_db", username="bob")
        answer = await client.call_tool("odoo_connect", new)
        assert answer.structured_content["status"] == "pending", text_of(answer)
        ref = answer.structured_content["request"]

        listed = run_cli(tmp_path, "approvals", "list").stdout
        line = next(line for line in listed.splitlines() if ref in line)
        assert "pending" in line and "https://new.example.com" in line and '"alias": "prod"' in line
        assert "s3cret" not in listed  # redacted by the policy core's rule

        shown = run_cli(tmp_path, "approvals", "show", ref).stdout
        assert '"url": "https://new.example.com"' in shown
        assert (
            "replaces:   prod: https://prod.example.com  db=prod_db  user=admin  xmlrpc" in shown
        ), shown
        assert "s3cret" not in shown

        # Nobody decided in time: listed as expired, and the agent is told so.
        move_expiry_to_the_past(tmp_path, ref)
        listed = run_cli(tmp_path, "approvals", "list").stdout
        assert f"{ref}  expired" in listed, listed
        pending = run_cli(tmp_path, "approvals", "list", "--state", "pending").stdout
        assert ref not in pending
        assert ref in run_cli(tmp_path, "approvals", "list", "--state", "expired").stdout
        again = await client.call_tool("odoo_connect", new)
        message = text_of(again)
        assert f"request {ref} for 'odoo_connect' expired before an approver decided" in message
        assert "approval" not in message.split("expired", 1)[0].lower()


# --- 10: approver actions are audited; audit lines stay readable -------------------------


async def test_approver_actions_are_audited(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        refs = []
        for alias in ("a", "b", "c"):
            await client.call_tool("odoo_connect", connect_args(alias))
            answer = await client.call_tool("odoo_disconnect", {"alias": alias})
            refs.append(answer.structured_content["request"])
    approved, rejected, cancelled = refs
    run_cli(tmp_path, "approvals", "approve", approved, "--as", "carol")
    run_cli(tmp_path, "approvals", "reject", rejected, "--as", "carol", "--note", "not today")
    run_cli(tmp_path, "approvals", "approve", cancelled, "--as", "carol")
    no_name = run_cli(tmp_path, "approvals", "cancel", cancelled, check=False)
    assert no_name.returncode == 2 and "--as" in no_name.stderr
    done = run_cli(tmp_path, "approvals", "cancel", cancelled, "--as", "dave")
    assert f"{cancelled} cancelled by dave" in done.stdout
    shown = run_cli(tmp_path, "approvals", "show", cancelled).stdout
    # carol's approval stays in the request's history; the decision is dave's
    assert "decided by: dave" in shown and "decided by: carol" not in shown

    events = json.loads(run_cli(tmp_path, "audit", "tail", "-n", "50", "--json").stdout)
    decisions = [
        (e["outcome"], e["principal"], e["request_ref"])
        for e in events
        if e["outcome"] in ("approved", "rejected", "cancelled")
    ]
    assert decisions == [
        ("approved", "carol", approved),
        ("rejected", "carol", rejected),
        ("approved", "carol", cancelled),
        ("cancelled", "dave", cancelled),
    ]
    reject_row = next(e for e in events if e["outcome"] == "rejected")
    assert reject_row["detail"] == "rejected by carol: not today"
    cancel_row = next(e for e in events if e["outcome"] == "cancelled")
    assert cancel_row["detail"] == "cancelled by dave (it was approved, by carol)"


async def test_audit_text_shows_a_long_message_once_and_refuses_a_negative_count(
    tmp_path: Path,
) -> None:
    async with stdio_client(tmp_path) as client:
        await client.call_tool("odoo_connect", connect_args("prod"))
        for _ in range(2):  # the same pending answer twice: a long message
            await client.call_tool("odoo_disconnect", {"alias": "prod"})
    lines = run_cli(tmp_path, "audit", "tail").stdout.splitlines()
    pending = [line for line in lines if "approval_pending" in line]
    assert len(pending) == 2
    assert len(pending[0]) < 250 and pending[0].endswith("…"), pending[0]
    assert pending[1].endswith("(same message as above)")
    for bad in ("-3", "0", "x"):
        refused = run_cli(tmp_path, "audit", "tail", "-n", bad, check=False)
        assert refused.returncode == 2 and refused.stdout == ""
        assert "argument -n" in refused.stderr.strip().splitlines()[-1]


# --- 11: a malformed tokens.json ---------------------------------------------------------


def test_malformed_tokens_file_refuses_start_in_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": {"local": 3}}')
    result = subprocess.run(
        guard_command("serve", "--transport", "http", "--port", str(free_port())),
        env=guard_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"{tokens}: not a valid tokens file: tokens.local" in one_line(result.stderr)
    listed = run_cli(tmp_path, "tokens", "list", check=False)
    assert listed.returncode == 2
    assert "not a valid tokens file" in one_line(listed.stderr)


# --- 12: a policy file that is not there; a fixed one ------------------------------------


def test_missing_policy_file_refuses_start(tmp_path: Path) -> None:
    missing = tmp_path / "polcy.json"
    result = subprocess.run(
        guard_command("serve", "--policy", str(missing)),
        env=guard_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert f"--policy {missing}: no such file" in one_line(result.stderr)


def test_fixing_a_broken_policy_is_logged(tmp_path: Path) -> None:
    pol = tmp_path / "policy.json"
    pol.write_text('{"version": "1", "default": "maybe"}')
    with http_guard(tmp_path, pol) as guard:
        write_policy(pol, policy())
        deadline = time.monotonic() + EFFECT_WAIT
        while "valid again" not in guard.log.read_text():  # checked every 0.5 s by the guard
            assert time.monotonic() < deadline, guard.log.read_text()
            time.sleep(0.05)
        assert f"{pol}: valid again; this policy is now in force" in guard.log.read_text()


# --- 14: help, references, plurals ----------------------------------------------------------


def test_serve_help_has_no_internal_names() -> None:
    shown = cli(*guard_command("serve", "--help"), env=guard_env()).stdout
    assert "_LOCAL" not in shown and "--data-dir DIR" in shown
    options = shown.split("options:", 1)[1]
    transport = options.split("--transport {stdio,http}", 1)[1].split("--host", 1)[0]
    assert "stdio:" in transport and "http:" in transport


async def test_short_request_reference_is_found(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        await client.call_tool("odoo_connect", connect_args("prod"))
        await client.call_tool("odoo_disconnect", {"alias": "prod"})
    for key in ("MCPR-1", "mcpr-00001", "1"):
        shown = json.loads(run_cli(tmp_path, "approvals", "show", key, "--json").stdout)
        assert shown["ref"] == "MCPR-00001"


def test_one_fault_is_singular(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "p.json", {"version": "1", "default": "maybe"})
    result = cli(*guard_command("policy", "check", str(path)), env=guard_env())
    assert result.returncode == 1
    assert "invalid policy (1 fault)" in result.stderr


def test_import_names_the_file_and_every_fault(tmp_path: Path) -> None:
    bad = tmp_path / "connections.json"
    bad.write_text(
        json.dumps(
            [
                {"alias": "a", "url": "u", "db": "d", "username": "u", "protocol": "ftp"},
                "prod",
                {"alias": "b", "url": "u", "db": "d"},
            ]
        )
    )
    result = run_cli(tmp_path, "connections", "import", str(bad), check=False)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"{bad}: nothing imported" in line
    for fault in ("connections[0].protocol", "connections[1]: expected", "connections[2].username"):
        assert fault in line
    listed = run_cli(tmp_path, "connections", "list", "--json")
    assert json.loads(listed.stdout) == []


# --- 15: make test says what runs ----------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_test_names_each_test() -> None:
    planned = subprocess.run(
        ["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    pytest_line = next(line for line in planned.splitlines() if "pytest" in line)
    assert " -v" in pytest_line and "--durations" in pytest_line
