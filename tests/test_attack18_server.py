"""Outside round 18 (server names): a derived server name identifies the whole upstream, so
an approval filed through one upstream is not consumed through another of the same program
or host (F1); a --server-name is a plain name and never serve's own (F1); an upstream that
pages its tools/list forever fails the listing instead of hanging the proxy (F6). Real proxy
subprocesses on one SQLite store, SDK clients over stdio, the real CLI."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import pytest
from support.guard import (
    EFFECT_WAIT,
    UPSTREAM,
    free_port,
    proxy_args,
    proxy_stdio_client,
    query,
    run_cli,
    text_of,
    upstream_calls,
    within,
    write_policy,
)
from support.server_binding import (
    approval_stays_with_its_server,
    one_line_error,
    purge_policy,
    run_guard,
)

from odoo_mcp_guard.names import server_name_problem
from odoo_mcp_guard.proxy import derived_server_name

HERE = Path(__file__).resolve().parent
LISTING_UPSTREAM = HERE / "listing_upstream.py"


def _script(tmp_path: Path, where: str) -> tuple[list[str], Path]:
    """``python <tmp>/<where>/server.py ...``: the test upstream, as a script named server.py."""
    folder = tmp_path / where
    folder.mkdir()
    shutil.copy(UPSTREAM, folder / "server.py")
    state = tmp_path / f"{where}.json"
    command = [sys.executable, str(folder / "server.py"), "--state", str(state)]
    return command, state


def test_two_scripts_of_one_name_are_two_servers(tmp_path: Path) -> None:
    """F1: two proxies share one store, neither has --server-name, their upstreams are
    ``python .../a/server.py`` and ``python .../b/server.py``. alice's call approved
    through A is not consumed through B (B files its own request); A's call uses it. Both
    names stay readable (``server~<digest>``) in ``approvals show`` and ``list``."""
    policy = purge_policy(tmp_path)
    commands = {where: _script(tmp_path, where) for where in ("a", "b")}

    def client(where: str):
        args = proxy_args(tmp_path, policy, upstream=commands[where][0], server_name=None)
        return proxy_stdio_client(tmp_path, args, mode="legacy")

    shown = anyio.run(
        approval_stays_with_its_server, tmp_path, lambda: client("a"), lambda: client("b")
    )
    assert "server~" in shown, shown
    assert [c["tool"] for c in upstream_calls(commands["a"][1])] == ["purge_notes"]
    ran_b = upstream_calls(commands["b"][1]) if commands["b"][1].exists() else []
    assert "purge_notes" not in [c["tool"] for c in ran_b]
    rows = query(tmp_path, "SELECT server, state FROM approval_requests ORDER BY id")
    assert [state for _, state in rows] == ["done", "pending"], rows
    (a_name, _), (b_name, _) = rows
    assert a_name != b_name and a_name.startswith("server~") and b_name.startswith("server~")
    listing = run_cli(tmp_path, "approvals", "list").stdout
    assert a_name in listing and b_name in listing, listing


def test_a_request_filed_under_the_old_derived_name_stays_with_it(tmp_path: Path) -> None:
    """The upgrade: a request stored (schema v10) under the name the upstream used to be
    derived as (``server``) is not consumed by the upstream now named ``server~<digest>``:
    it stays approved under the old name; the call files a new request."""
    policy = purge_policy(tmp_path)
    command, state = _script(tmp_path, "a")

    def client(name: str | None):
        args = proxy_args(tmp_path, policy, upstream=command, server_name=name)
        return proxy_stdio_client(tmp_path, args, mode="legacy")

    async def main() -> None:
        async with client("server") as old:  # as the previous version named it
            ref = (await old.call_tool("purge_notes", {})).structured_content["request"]
        run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol")
        async with client(None) as new:
            again = await new.call_tool("purge_notes", {})
            assert again.is_error, text_of(again)
            assert again.structured_content["request"] != ref

    anyio.run(main)
    assert not state.exists() or "purge_notes" not in [c["tool"] for c in upstream_calls(state)]
    rows = query(tmp_path, "SELECT server, state FROM approval_requests ORDER BY id")
    assert rows[0] == ("server", "approved"), rows
    assert rows[1][0].startswith("server~") and rows[1][1] == "pending", rows


def test_url_upstreams_are_named_by_their_whole_url_without_secrets(tmp_path: Path) -> None:
    """F1: two paths on one host are two servers; the URL's user, password and secret query
    values are not part of the name (nor shown), its other query values are."""
    port = free_port()  # nothing listens: the refusal names the server
    base = f"http://127.0.0.1:{port}"
    secret = "hunter22-s3cret"

    async def name_of(url: str) -> str:
        args = proxy_args(tmp_path, None, upstream=url, server_name=None)
        async with proxy_stdio_client(tmp_path, args, mode="legacy") as client:
            refused = await client.call_tool("anything", {})
        text = text_of(refused)
        assert refused.is_error and secret not in text, text
        assert "the upstream server " in text, text
        return text.split("the upstream server ", 1)[1].split(" ", 1)[0]

    async def main() -> None:
        a = await name_of(f"{base}/a/mcp")
        b = await name_of(f"{base}/b/mcp")
        assert a != b and a.startswith(f"127.0.0.1:{port}~") and b.startswith(f"127.0.0.1:{port}~")
        with_secrets = await name_of(f"http://bob:{secret}@127.0.0.1:{port}/a/mcp?token={secret}")
        assert with_secrets == a
        tenant = await name_of(f"{base}/a/mcp?tenant=x")
        assert tenant not in (a, b)

    anyio.run(main)


def test_a_server_name_is_plain_and_never_serves_own(tmp_path: Path) -> None:
    """F1: --server-name odoo-mcp-guard (serve's name, in any spelling a reader takes for
    it) is refused, and so is a name that is not plain: a derived-looking ``server~1a2b3c4d``,
    a prefix, a path, mixed scripts. One line naming what is wrong."""
    cases = {
        "odoo-mcp-guard": "the name of the guard's own server (serve)",
        "Odoo_MCP_Guard": "the name of the guard's own server (serve)",
        "server~1a2b3c4d": "'~'",
        "stdio:notes": "':'",
        "x/notes": "'/'",
        "nоtes": "mixes scripts",  # a Cyrillic о
        " notes": "space",
    }
    for name, why in cases.items():
        line = one_line_error(
            run_guard(tmp_path, "proxy", "--upstream-command", "x", "--server-name", name)
        )
        assert "--server-name must" in line and why in line, line


def _cursor_proxy(tmp_path: Path):
    policy = write_policy(tmp_path / "policy.json", {"version": "1", "default": "allow"})
    upstream = [
        sys.executable,
        str(LISTING_UPSTREAM),
        "--state",
        str(tmp_path),
        "--mode",
        "cursor",
    ]
    args = proxy_args(tmp_path, policy, upstream=upstream, server_name="notes")
    return proxy_stdio_client(tmp_path, args, mode="legacy")


def test_an_upstream_that_pages_forever_fails_its_listing(tmp_path: Path) -> None:
    """F6: the upstream's tools/list starts to name the same nextCursor on every page (then,
    a new one on every page): the proxy does not list forever. The listing fails, and every
    call is refused with its reason in one line; nothing more reaches the upstream."""
    for paging, reason in (("loop", "same nextCursor twice"), ("endless", "within 100 pages")):
        here = tmp_path / paging
        here.mkdir()
        phase = here / "phase"

        async def main(
            here: Path = here, phase: Path = phase, paging: str = paging, reason: str = reason
        ) -> str:
            async with _cursor_proxy(here) as client:
                assert not (await client.call_tool("notes_tool", {"q": "x"})).is_error
                phase.write_text(paging, encoding="utf-8")  # announced after the next call
                assert not (await client.call_tool("notes_tool", {"q": "y"})).is_error

                async def refused() -> str | None:
                    result = await client.call_tool("notes_tool", {"q": "z"})
                    # a call in flight when the session broke is "in doubt": not this yet
                    return text_of(result) if reason in text_of(result) else None

                text, _ = await within(EFFECT_WAIT, refused)
                again = await client.call_tool("notes_tool", {"q": "w"})
                assert again.is_error and text_of(again) == text, text_of(again)
                return text

        text = anyio.run(main)
        assert reason in text and len(text.splitlines()) == 1, text
        ran = [line for line in (here / "calls").read_text().splitlines() if '"w"' in line]
        assert ran == [], ran


def test_an_upstream_that_pages_forever_at_start_is_one_line(tmp_path: Path) -> None:
    """F6: when the first listing already pages forever, the proxy stops at start with one
    line naming the cause."""
    (tmp_path / "phase").write_text("loop", encoding="utf-8")
    upstream = [
        sys.executable,
        str(LISTING_UPSTREAM),
        "--state",
        str(tmp_path),
        "--mode",
        "cursor",
    ]
    args = proxy_args(tmp_path, None, upstream=upstream, server_name="notes")
    proc = run_guard(tmp_path, *args)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "same nextCursor twice" in proc.stderr, proc.stderr


@pytest.mark.unit
def test_a_derived_name_covers_the_whole_command_without_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F1, the name itself: ``server.py`` run in two folders is two servers (paths made
    absolute), other arguments count, a secret option's value neither counts nor shows."""
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "server.py").write_text("", encoding="utf-8")
    names = []
    for where in ("a", "b"):
        monkeypatch.chdir(tmp_path / where)
        names.append(derived_server_name(["python", "server.py"], None))
        assert names[-1] == derived_server_name(
            ["python", str(tmp_path / where / "server.py")], None
        )
    assert names[0] != names[1] and all(name.startswith("server~") for name in names)
    one = derived_server_name(["uvx", "odoo-claude-mcp", "--api-key", "hunter22"], None)
    two = derived_server_name(["uvx", "odoo-claude-mcp", "--api-key=s3cret99"], None)
    assert one.startswith("odoo-claude-mcp~") and "hunter22" not in one
    assert one == derived_server_name(["uvx", "odoo-claude-mcp", "--api-key", "other"], None)
    assert two != one  # the option's spelling is part of the command line, its value is not
    assert derived_server_name(["uvx", "odoo-claude-mcp", "--db", "x"], None) != one
    assert server_name_problem(one) is not None  # no --server-name can pose as a derived one


def test_one_command_with_another_environment_is_another_server(tmp_path: Path) -> None:
    """Outside round 19, F2: two proxies share one store and run the same upstream command;
    --upstream-env picks the target (ODOO_URL=https://test... / https://prod...). The call
    approved through the test one is not consumed through the prod one, which files its own
    request. A rotated credential (a secret value) is still the same server."""
    policy = purge_policy(tmp_path)
    command, state = _script(tmp_path, "a")

    def client(target: str, password: str = "Zq7vWk3pLx9TrB2m"):
        env = ["--upstream-env", f"ODOO_URL=https://{target}.example.com"]
        env += ["--upstream-env", f"ODOO_PASSWORD={password}"]
        args = proxy_args(tmp_path, policy, upstream=command, server_name=None)
        return proxy_stdio_client(tmp_path, [*args, *env], mode="legacy")

    async def main() -> None:
        async with client("test") as test:
            ref = (await test.call_tool("purge_notes", {})).structured_content["request"]
        run_cli(tmp_path, "approvals", "approve", ref, "--as", "carol")
        async with client("prod") as prod:
            other = await prod.call_tool("purge_notes", {})
            assert other.is_error, text_of(other)
            assert other.structured_content["request"] != ref
        async with client("test", password="rotated-Kp4sW9xQ2") as test:
            done = await test.call_tool("purge_notes", {})
            assert not done.is_error, text_of(done)

    anyio.run(main)
    assert [c["tool"] for c in upstream_calls(state)] == ["purge_notes"]
    rows = query(tmp_path, "SELECT server, state FROM approval_requests ORDER BY id")
    assert [row[1] for row in rows] == ["done", "pending"], rows
    assert rows[0][0] != rows[1][0] and all(row[0].startswith("server~") for row in rows)


def test_headers_are_part_of_a_derived_url_name_credentials_by_name_only() -> None:
    """Outside round 19, F2b: ``X-Odoo-Database: test`` and ``: prod`` in front of one URL
    are two servers; a credential header's value is not part of the name."""
    url = "http://127.0.0.1:8933/mcp"
    test = derived_server_name(None, url, {}, {"X-Odoo-Database": "test"})
    prod = derived_server_name(None, url, {}, {"X-Odoo-Database": "prod"})
    assert test != prod
    assert derived_server_name(None, url, {}, {"Authorization": "Bearer aaaaaaaaaaaa"}) == (
        derived_server_name(None, url, {}, {"Authorization": "Bearer bbbbbbbbbbbb"})
    )
