"""Attack 21 (outside security test): a known secret (a 64-character ODOO_PASSWORD the operator
gives the upstream) passed the proxy's hiding by value when the upstream returned it
(1) in standard base64 wrapped at 76 or 64 columns (MIME/PEM style, ``\\n`` or ``\\r\\n`` inside
the base64 text), or (2) as a byte array: Node's Buffer JSON ``{"type": "Buffer", "data":
[84, ...]}`` or a plain JSON list of byte values, in its structured content or as JSON text.
Each is hidden now in the tool result, the proxy's stderr and the audit
(``policy_core.KnownForms``); a base64 block and lists of numbers holding no secret pass
unchanged. A real proxy subprocess through the SDK client, in front of tests/leaky_upstream.py."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from support.guard import (
    REPO,
    audit_text,
    policy,
    proxy_args,
    proxy_stdio_client,
    write_policy,
)

pytestmark = pytest.mark.anyio

LEAKY = REPO / "tests" / "leaky_upstream.py"
SECRET = "Tr9-odoo-Pass-Kq4Wz8Lm2Vx6Np3Rt7Yb5Hc1Jd0Fg-long-enough-64-chars"
assert len(SECRET) == 64


def _wrapped(data: bytes, width: int) -> list[str]:
    text = base64.b64encode(data).decode()
    return [text[i : i + width] for i in range(0, len(text), width)]


def _forms(secret: str) -> list[str]:
    """What shows the secret: each line of its wrapped base64 that carries a byte of it
    (all but those of the "password: " prefix alone), its byte values listed."""
    raw = secret.encode()
    lines = _wrapped(b"password: " + raw, 76) + _wrapped(b"password: " + raw, 64)
    numbers = [json.dumps(list(raw)), ",".join(map(str, raw[:16])), ", ".join(map(str, raw[:16]))]
    return [secret, *lines, *numbers]


async def test_a_known_secret_wrapped_in_base64_or_as_bytes_is_hidden(tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "policy.json", policy(default="allow"))
    upstream = [sys.executable, str(LEAKY), "Hq7xK2mP9vLw"]
    extra = ("--upstream-env", f"ODOO_PASSWORD={SECRET}")
    args = proxy_args(tmp_path, pol, upstream=upstream, server_name="upstream", extra=extra)
    log = tmp_path / "proxy.log"
    with log.open("w") as errlog:
        client = proxy_stdio_client(tmp_path, args, mode="legacy", errlog=errlog)
        async with client:
            result = await client.call_tool("encoded_read", {"q": "ODOO_PASSWORD"})
    assert not result.is_error, result
    blocks = [block.text for block in result.content]
    structured = result.structured_content
    shown = "\n".join(blocks) + json.dumps(structured)
    stderr = log.read_text()
    for where, text in (("result", shown), ("stderr", stderr), ("audit", audit_text(tmp_path))):
        leaked = [form for form in _forms(SECRET) if form in text]
        assert not leaked, (where, leaked, text[-3000:])
    # (1) the wrapped blocks hidden whole, what is around them kept
    assert blocks[0] == "-----BEGIN DATA-----\n***\n-----END DATA-----", blocks[0]
    assert blocks[1] == "body:\r\n***\r\n", blocks[1]
    assert structured["pem"] == "***" and structured["crlf"] == "***", structured
    assert "dump:" in stderr and "end of dump" in stderr, stderr[-2000:]
    # (2) the byte arrays replaced by the marker
    assert structured["buffer"] == {"type": "Buffer", "data": "***"}, structured
    assert structured["bytes"] == "***", structured
    assert json.loads(blocks[2]) == {"password": "***", "buf": {"type": "Buffer", "data": "***"}}
    assert blocks[3] == '"***"', blocks[3]
    # what holds no secret passes unchanged
    plain64 = base64.b64encode(bytes(range(48, 123)) * 2).decode()
    plain = "\n".join(plain64[i : i + 76] for i in range(0, len(plain64), 76))
    assert blocks[4] == f"plain:\n{plain}" and structured["plain"] == plain, blocks[4]
    assert blocks[5] == "prices: [10, 20, 30, 40, 250]", blocks[5]
    assert structured["numbers"] == [10, 20, 30, 40, 250], structured


def test_redact_known_wrapped_base64_and_byte_arrays() -> None:
    """The same forms through policy_core directly (both halves vendor it): Java's signed
    bytes too; a block or a list that holds no known secret is kept as it is."""
    from odoo_mcp_guard.policy_core import redact_known, redact_known_text

    raw = SECRET.encode()
    for width, sep in ((76, "\n"), (64, "\r\n"), (76, "\\n"), (64, "\\r\\n")):
        for prefix in (b"", b"x", b"password: "):
            text = "pem: " + sep.join(_wrapped(prefix + raw, width)) + sep + "done"
            hidden = redact_known_text(text, [SECRET])
            assert hidden == f"pem: ***{sep}done", (width, sep, prefix, hidden)
    signed = [b - 256 if b > 127 else b for b in "Ünïcode-".encode() + raw]
    for numbers in (list(raw), signed):
        assert redact_known({"data": numbers}, [SECRET]) == {"data": "***"}
        assert redact_known_text(json.dumps(numbers), [SECRET]) == '"***"'
        assert redact_known_text(f"bytes {numbers} end", [SECRET]) == 'bytes "***" end'
        assert redact_known_text(f"{{{','.join(map(str, numbers))}}}", [SECRET]) == '"***"'
    kept = {"numbers": [1, 2, 3, 250, 17], "flags": [True, False, True, True], "b": [84] * 40}
    assert redact_known(kept, [SECRET]) == kept
    other = "\n".join(_wrapped(b"nothing secret here at all" * 5, 76))
    assert redact_known_text(other, [SECRET]) == other
    assert redact_known_text("[84, 114, 57, 45, 111]", [SECRET]) == "[84, 114, 57, 45, 111]"
    # a secret whole within one line of such a block: hidden alone, the next line kept
    header = "key: Ap5Qm9vR2xT7wK4z\naccept-language-name: shown"
    assert (
        redact_known_text(header, ["Ap5Qm9vR2xT7wK4z"]) == "key: ***\naccept-language-name: shown"
    )


def test_stderr_lines_of_wrapped_base64_are_judged_as_one_block() -> None:
    """An upstream's stderr arrives line by line (policy_core.LineRedaction): the lines of a
    wrapped base64 block are held until its last, then hidden whole when they hold a known
    secret; other blocks come out as they were, and nothing is held without known secrets."""
    from odoo_mcp_guard.policy_core import LineRedaction

    lines = _wrapped(b"password: " + SECRET.encode(), 64)
    redaction = LineRedaction(known=lambda: [SECRET])
    shown = [redaction.lines("dump:")]
    shown += [redaction.lines(line) for line in lines] + [redaction.lines("done")]
    assert len(lines) == 2 and shown == [["dump:"], [], ["***"], ["done"]], shown
    other = _wrapped(b"nothing secret here at all" * 5, 76)
    held = [redaction.lines(line) for line in other[:-1]]
    assert held == [[]] * (len(other) - 1) and redaction.lines(other[-1]) == other, held
    assert redaction.lines(lines[0]) == [] and redaction.finish() == [lines[0]]
    plain = LineRedaction(known=lambda: [])
    assert [plain.lines(line) for line in lines] == [[line] for line in lines]
