"""Outside round 17 (server): an approval is bound to the server it was filed on (F5); a
listing that names a tool twice is a change of that tool (F2); a call runs only on the
definition a Manager accepted (F10); bad URLs and settings are one line (F7). Real proxy
subprocesses over stdio with the SDK client, real hostile upstreams, the real CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
from support.guard import (
    EFFECT_WAIT,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    upstream_calls,
    upstream_command,
    within,
    write_policy,
)
from support.server_binding import (
    approval_stays_with_its_server,
    one_line_error,
    purge_policy,
    run_guard,
)

HERE = Path(__file__).resolve().parent


def test_an_approval_is_bound_to_the_server_it_was_filed_on(tmp_path: Path) -> None:
    """F5: two proxies share one data directory. alice's call approved through 'staging' is
    not used by the identical call through 'production', which files its own request, and
    neither withdraws the other's."""
    policy = purge_policy(tmp_path)
    states = {name: tmp_path / f"{name}.json" for name in ("staging", "production")}

    def client(name: str):
        args = proxy_args(
            tmp_path, policy, upstream=upstream_command(states[name]), server_name=name
        )
        return proxy_stdio_client(tmp_path, args, mode="legacy")

    shown = anyio.run(
        approval_stays_with_its_server,
        tmp_path,
        lambda: client("staging"),
        lambda: client("production"),
    )
    assert "staging" in shown, shown
    assert [c["tool"] for c in upstream_calls(states["staging"])] == ["purge_notes"]
    assert not states["production"].exists() or not [
        c for c in upstream_calls(states["production"]) if c["tool"] == "purge_notes"
    ]
    listing = run_cli(tmp_path, "approvals", "list").stdout
    assert "production" in listing and "staging" in listing, listing
    rows = query(tmp_path, "SELECT server, state FROM approval_requests ORDER BY id")
    assert rows == [("staging", "done"), ("production", "pending")], rows


def test_a_malformed_url_or_setting_is_one_line(tmp_path: Path) -> None:
    """F7: a malformed --upstream-url or ODOO_URL, and a MCP_GUARD_PATTERN_SECONDS that is no
    finite positive number, are refused in one line (no traceback, no silent acceptance)."""
    for url in ("http://[::1/mcp", "http://127.0.0.1:99999/mcp", "http://127.0.0.1:8a/mcp"):
        line = one_line_error(run_guard(tmp_path, "proxy", "--upstream-url", url))
        assert "--upstream-url: not a valid URL" in line
    odoo = {"ODOO_DB": "x", "ODOO_USERNAME": "u", "ODOO_API_KEY": "k"}
    for url in ("http://[::1", "http://u:hunter22@127.0.0.1:8a"):
        line = one_line_error(run_guard(tmp_path, "approvals", "list", ODOO_URL=url, **odoo))
        assert "not a valid URL" in line and "hunter22" not in line
    for value in ("abc", "nan", "inf", "-1", "0"):
        line = one_line_error(
            run_guard(
                tmp_path,
                "proxy",
                "--upstream-url",
                "http://127.0.0.1:1/mcp",
                MCP_GUARD_PATTERN_SECONDS=value,
            )
        )
        assert "MCP_GUARD_PATTERN_SECONDS" in line


LISTING_UPSTREAM = HERE / "listing_upstream.py"


def _listing_proxy(tmp_path: Path, mode: str):
    policy = write_policy(tmp_path / "policy.json", {"version": "1", "default": "allow"})
    upstream = [sys.executable, str(LISTING_UPSTREAM), "--state", str(tmp_path), "--mode", mode]
    args = proxy_args(tmp_path, policy, upstream=upstream, server_name="notes")
    return proxy_stdio_client(tmp_path, args, mode="legacy")


def _ran(tmp_path: Path) -> list[dict]:
    path = tmp_path / "calls"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def _pending(tmp_path: Path) -> str | None:
    rows = query(tmp_path, "SELECT pending_hash FROM pinned_tools WHERE tool = 'notes_tool'")
    return rows[0][0] if rows and rows[0][0] else None


def test_a_listing_that_names_a_tool_twice_is_a_change_of_it(tmp_path: Path) -> None:
    """F2: the upstream lists notes_tool (pinned), then announces a change and lists it twice
    (its old definition and a destructive one with a ``wipe`` argument), in one page or on a
    second page: the tool is refused as changed until a Manager accepts, never first-wins."""
    for mode in ("dup", "page"):
        here = tmp_path / mode
        here.mkdir()

        async def main(here: Path = here, mode: str = mode) -> None:
            async with _listing_proxy(here, mode) as client:
                await client.list_tools()
                first = await client.call_tool("notes_tool", {"q": "x"})
                assert not first.is_error, text_of(first)
                await within(EFFECT_WAIT, lambda: _pending(here))
                wipe = await client.call_tool("notes_tool", {"q": "x", "wipe": True})
                assert wipe.is_error, text_of(wipe)
                assert wipe.structured_content["status"] == "definition_changed", mode
                shown = run_cli(here, "tools", "show", "notes_tool").stdout
                assert "CHANGED" in shown and "Delete every note" in shown, shown
                # accepting it does not make it callable while it is listed twice
                run_cli(here, "tools", "accept", "notes_tool", "--as", "manager")
                plain = await client.call_tool("notes_tool", {"q": "x"})
                assert plain.is_error and "more than once" in text_of(plain)

        anyio.run(main)
        assert [call["params"]["arguments"] for call in _ran(here)] == [{"q": "x"}], mode


def test_a_call_runs_only_on_the_definition_a_manager_accepted(tmp_path: Path) -> None:
    """F10: the upstream changes notes_tool A -> B (shown, reviewed), then B -> C without
    saying so; the Manager accepts B. No call runs on C: the proxy lists the upstream again
    before serving an accepted definition, sees C, and refuses until C is accepted; an
    acceptance naming the reviewed definition is refused once another is pending."""
    phase = tmp_path / "phase"
    phase.write_text("A", encoding="utf-8")

    async def main() -> None:
        async with _listing_proxy(tmp_path, "phase") as client:
            await client.list_tools()
            assert not (await client.call_tool("notes_tool", {})).is_error
            phase.write_text("B", encoding="utf-8")
            await client.call_tool("notes_tool", {})  # runs as B, then B is announced
            reviewed, _ = await within(EFFECT_WAIT, lambda: _pending(tmp_path))
            shown = run_cli(tmp_path, "tools", "show", "notes_tool").stdout
            assert f"--definition {reviewed[:12]}" in shown and "paging" in shown, shown
            phase.write_text("C", encoding="utf-8")  # changed again, announced to nobody
            refused = await client.call_tool("notes_tool", {})
            assert refused.is_error, text_of(refused)
            run_cli(
                tmp_path,
                "tools",
                "accept",
                "notes_tool",
                "--as",
                "manager",
                "--definition",
                reviewed[:12],
            )
            after = await client.call_tool("notes_tool", {"q": "x"})
            assert after.is_error, text_of(after)
            assert after.structured_content["status"] == "definition_changed"
            now = await _pending(tmp_path)
            assert now is not None and now != reviewed
            stale = run_cli(
                tmp_path,
                "tools",
                "accept",
                "notes_tool",
                "--as",
                "manager",
                "--definition",
                reviewed[:12],
                check=False,
            )
            assert stale.returncode == 2 and "nothing was accepted" in stale.stderr, stale.stderr
            latest = run_cli(tmp_path, "tools", "show", "notes_tool").stdout
            assert f"--definition {now[:12]}" in latest and "Delete every note" in latest

    anyio.run(main)
    # B's own call may be refused instead of run, if the proxy saw B listed first (under load):
    # what matters is that none ran on C
    ran = [call["as"] for call in _ran(tmp_path)]
    assert ran in (["A"], ["A", "B"]), ran
