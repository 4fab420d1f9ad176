"""Outside round 24 (redaction gaps): (1, HIGH) a known secret (the operator's upstream
credential, a forwarded connection password) spread out with two or three characters between
its characters (``", ".join(secret)``, ``"\\r\\n".join(secret)``) passed the proxy in a result
and on its stderr: a short run of spacers is read now, one way only (a near miss costs the
search linear time, not 2 ** len(secret)); (2) a known secret of 1 to 3 characters was never
hidden: it is, as a whole token; (3) a secret key's value on the next line ("password=\\nX");
(4) a letters-only token in a URL path after "token", "key"...; (5) an approver was shown, at
stake, a listed connection whose database holds the password the call itself forwards.
Real proxy subprocesses through the SDK client, the CLI an approver runs; policy_core direct
where it is the interface (both halves vendor it)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from support.guard import (
    REPO,
    audit_text,
    policy,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    upstream_command,
    write_policy,
    write_upstream_state,
)

from odoo_mcp_guard.policy_core import (
    LineRedaction,
    display_url,
    redact_arguments,
    redact_known,
    redact_known_text,
    redact_text,
    url_path_secrets,
)

LEAKY = REPO / "tests" / "leaky_upstream.py"
SECRET = "Tr9-odoo-Pass-Kq4Wz8Lm"  # the operator's, given to the upstream
FORWARDED = "Fw7pass-Xq2Lz9"  # a client's, in odoo_connect
SPREAD = (", ", "\r\n", " | ", " ,\t")


def _forms(secret: str) -> list[str]:
    return [secret, *(sep.join(secret) for sep in SPREAD), "\n".join(secret)]


@pytest.mark.anyio
async def test_a_known_secret_spread_out_is_hidden_in_results_and_stderr(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(default="allow"))
    upstream = [sys.executable, str(LEAKY), "Hq7xK2mP9vLw"]
    extra = ("--upstream-env", f"ODOO_PASSWORD={SECRET}")
    args = proxy_args(tmp_path, pol, upstream=upstream, server_name="upstream", extra=extra)
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        client = proxy_stdio_client(tmp_path, args, mode="legacy", errlog=errlog)
        async with client:
            operator = await client.call_tool("spread_read", {"q": "ODOO_PASSWORD"})
            connect = {"alias": "prod", "url": "https://p.example.com", "db": "p"}
            connected = await client.call_tool(
                "odoo_connect", {**connect, "username": "admin", "password": FORWARDED}
            )
            assert not connected.is_error, text_of(connected)
            forwarded = await client.call_tool("spread_read", {"q": "@forwarded"})
    for result in (operator, forwarded):
        blocks = [block.text for block in result.content]
        assert blocks == ["spread: *** (end)"] * len(SPREAD), blocks
    stderr = log.read_text()
    # stderr is read line by line: the lines of "\r\n".join(secret) are held and judged with
    # the end of the line before, already shown with the secret's first character (alone)
    assert stderr.count("spread: *** (end)") == 2 * (len(SPREAD) - 1), stderr[-3000:]
    for secret in (SECRET, FORWARDED):
        assert f"spread: {secret[0]}\n*** (end)" in stderr, stderr[-3000:]
    assert "one per line:" in stderr and "end of lines" in stderr, stderr[-3000:]
    for where, text in (("stderr", stderr), ("audit", audit_text(tmp_path))):
        for secret in (SECRET, FORWARDED):
            leaked = [form for form in _forms(secret) if form in text]
            assert not leaked, (where, leaked, text[-3000:])
    # one character per line on stderr: none of the secret's characters shown alone
    lines = stderr.splitlines()
    at = lines.index("one per line:")
    assert lines[at + 1 : at + 3] == ["***", "end of lines"], lines[at : at + 4]


def test_spread_forms_through_policy_core() -> None:
    for secret in (SECRET, "a-b-c-d-e", "Ab12"):
        for sep in (*SPREAD, " ", "-", "\\", "\\\\", " - ", "\u200b\u200b", ";\n"):
            if any(ch in sep for ch in secret):
                continue  # a spacer the secret holds: read as the secret's own (caveat)
            for value in (secret, secret[::-1]):
                text = f"x {sep.join(value)} y"
                assert redact_known_text(text, [secret]) == "x *** y", (secret, sep)
    # not more than three spacers between two characters; nor a word of it
    assert redact_known_text(" ,  ".join(SECRET), [SECRET]) == " ,  ".join(SECRET)
    assert redact_known_text("Ab 1 note", ["Ab12"]) == "Ab 1 note"
    # the operator's and forwarded secrets take the same forms in a dumped message
    dumped = {"content": [{"type": "text", "text": "\r\n".join(FORWARDED)}]}
    assert redact_known(dumped, [FORWARDED]) == {"content": [{"type": "text", "text": "***"}]}


def test_a_near_miss_costs_linear_time() -> None:
    """A megabyte of spacers and near misses (all of the secret but its last character, each
    way it can be spread) is searched in linear time: the bound guards against the
    exponential blow-up (2 ** len(secret)) a spacer read two ways made, not a speed claim."""
    secret = "abcdefghijklmnopqrstuvwxyz0123"
    miss = secret[:-1]
    texts = [
        ("\\".join(miss) + "\\X ") * 16000,  # read two ways before: minutes for 40 bytes
        (", ".join(miss) + ", X ") * 12000,
        ("\r\n".join(miss) + "\r\nX") * 12000,
        ("-" * 1000 + "x") * 1000,
        (" ,-\\" * 4 + "a") * 60000,
    ]
    for text in texts:
        assert len(text) >= 900_000
        started = time.monotonic()
        assert redact_known_text(text, [secret, "------x-y", "a-b-c-d-e-f"]) == text
        assert time.monotonic() - started < 120, len(text)


def test_a_short_known_secret_is_hidden_as_a_whole_token() -> None:
    text = 'pw: abc, abcd xabc abc1 "abc" abc. ABC'
    assert redact_known_text(text, ["abc"]) == 'pw: ***, abcd xabc abc1 "***" ***. ABC'
    assert redact_known({"abc": "abc", "note": "the abc ab db"}, ["ab", "abc"]) == {
        "abc": "***",  # a key is not hidden by a short secret (a field's name)
        "note": "the *** ab db",  # 1 or 2 characters: not hidden (every "x" would go)
    }
    assert redact_known_text("id 777, 1777, 777.", ["777"]) == "id ***, 1777, ***."
    # an approval request's arguments: the database named as its 3-character password
    shown = redact_arguments({"db": "Zq9", "password": "Zq9", "url": "https://h/Zq9/x"})
    assert shown == {"db": "***", "password": "***", "url": "https://h/***/x"}, shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("password=\nS3cretXYZ", "password=\n***"),
        ("password:\r\n  S3cretXYZ", "password:\r\n  ***"),
        ("password:\r\n  S3cretXYZ\r\nuser: x", "password:\r\n  ***\r\nuser: x"),
        ("token=\ndXNlcg==\nnext line", "token=\n***\nnext line"),
        ('password=\n"a b c"', 'password=\n"***"'),
        # plainly another key on the next line: not a value
        ("password=\nuser=bob", "password=\nuser=bob"),
        ("password:\nuser: bob", "password:\nuser: bob"),
        # YAML nested as before; prose kept
        ("password:\n  hunter2\nuser: bob", "password:\n  ***\nuser: bob"),
        ("Enter your password:\nThe form below", "Enter your password:\nThe form below"),
        ("password:\n", "password:\n"),
    ],
)
def test_a_secret_keys_value_on_the_next_line(text: str, shown: str) -> None:
    assert redact_text(text) == shown
    assert redact_text(shown) == shown


def test_a_letters_only_token_after_a_secret_path_segment() -> None:
    for url in (
        "https://h.example.com/api/token/qwertyuiopasdfgh/mcp",
        "https://h.example.com/key/QWERTYUIOPASDFGH",
        "https://h.example.com/v1/api_key/Abcdefghijklmnop/mcp",
        "https://h.example.com/auth/zxcvbnmasdfghjkl",
    ):
        token = url.split("/")[-2 if url.endswith("/mcp") else -1]
        assert token not in display_url(url) and "***" in display_url(url), url
        assert token in url_path_secrets(url), url
    for url in (
        "https://h.example.com/auth/login",
        "https://h.example.com/token/refresh",
        "https://h.example.com/docs/introductionpage/mcp",
    ):
        assert display_url(url) == url and url_path_secrets(url) == (), url


def test_stderr_short_lines_are_held_only_with_known_secrets() -> None:
    redaction = LineRedaction(known=lambda: [SECRET])
    shown: list[str] = []
    for line in ["start", *SECRET, "end", "ok"]:
        shown += redaction.lines(line)
    assert shown + redaction.finish() == ["start", "***", "end", "ok"]
    plain = LineRedaction(known=lambda: [])
    assert [plain.lines(line) for line in "ab"] == [["a"], ["b"]]


STAKE_POLICY = {
    "version": "1",
    "default": "deny",
    "rules": {
        "odoo_connections": {"action": "allow"},
        "odoo_connect": {"action": "require_approval"},
        "odoo_disconnect": {"action": "require_approval"},
    },
}


@pytest.mark.anyio
async def test_at_stake_hides_the_password_the_call_forwards(tmp_path: Path) -> None:
    """A replacement's approval request: the listed connection's database is the password
    the call forwards (not yet known to the proxy: it was never sent): hidden at stake."""
    password = "Db4own-Pass7"
    listing = {"connections": [{"alias": "prod", "url": "https://p.example.com", "db": password}]}
    state = tmp_path / "upstream.json"
    write_upstream_state(state, ["prod"])
    pol = write_policy(tmp_path / "policy.json", STAKE_POLICY)
    extra: tuple[str, ...] = ()
    for item in ("UPSTREAM_CONNECT=1", "UPSTREAM_ECHO_SECRET=1"):
        extra += ("--upstream-env", item)
    extra += ("--upstream-env", f"UPSTREAM_LISTING={json.dumps(listing)}")
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=extra)
    async with proxy_stdio_client(tmp_path, args) as client:
        call = {"alias": "prod", "url": "https://p.example.com", "password": password}
        pending = await client.call_tool("odoo_connect", call)
        assert (pending.structured_content or {}).get("status") == "pending", text_of(pending)
        ref = pending.structured_content["request"]
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    assert "replaces:" in shown and "prod" in shown, shown
    listed = run_cli(tmp_path, "approvals", "list", "--json").stdout
    for text in (shown, listed):
        assert password not in text, text
