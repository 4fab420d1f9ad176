"""Outside tester (MEDIUM): the connection's own password, masked by value (redact_known), leaked
through serve's data tools in forms the by-value redaction did not know: hex (either case),
base32, base85/ascii85, base64 at any byte offset (``otherlogin:secret``, any prefix), every byte
as %XX, every character as &#NN; / &#xNN; / \\uXXXX / \\xNN, reversed, in another case.

The checker here does not encode the secret the way the guard does: it DECODES every text it is
given (hex and base32/64/85 runs at every alignment, %XX, HTML and backslash escapes, reversed,
case-folded) and looks for the secret in what comes out; a leaked form is one it finds."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import pytest
from support.guard import REPO, policy, query, run_cli, serve_with_log, text_of, write_policy

from odoo_mcp_guard.policy_core import redact_known, redact_known_text

pytestmark = pytest.mark.anyio

FAKE_ODOO = REPO / "tests" / "fake_odoo.py"
LOGIN = "admin"
SECRETS = ["Zq9SuperSecretPw!", "Pa<ss>&'\"w0rdZq9", "back\\slash~?/+=Zq9"]

# --- the checker: decode, then look ----------------------------------------------------------

_RUNS = {
    "base64": re.compile(r"[A-Za-z0-9+/_-]{4,}"),
    "base32": re.compile(r"[A-Za-z2-7]{8,}"),
    "base32hex": re.compile(r"[0-9A-Va-v]{8,}"),
    "base85": re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{5,}"),
    "ascii85": re.compile(r"[!-u]{5,}"),
}


def _b64(chunk: str) -> bytes:
    return base64.b64decode(chunk.replace("-", "+").replace("_", "/"))


_DECODERS: dict[str, tuple[int, Callable[[str], bytes]]] = {
    "base64": (4, _b64),
    "base32": (8, lambda c: base64.b32decode(c.upper())),
    "base32hex": (8, lambda c: base64.b32hexdecode(c.upper())),
    "base85": (5, base64.b85decode),
    "ascii85": (5, base64.a85decode),
}


def _unescaped(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        return chr(int(next(group for group in match.groups() if group), 16))

    escape = r"\\+(?:u([0-9a-fA-F]{4})|u\{([0-9a-fA-F]{1,6})\}|x([0-9a-fA-F]{2}))"
    return re.sub(escape, one, text)


def leaks(text: str, secret: str) -> list[str]:
    """How ``text`` still shows ``secret``: the names of the decodings that reveal it."""
    want = secret.encode().lower()
    found = []
    views = {
        "plain, any case": text,
        "reversed": text[::-1],
        "html": html.unescape(html.unescape(text)),
        "backslash escapes": _unescaped(text),
        "json": text.replace('\\"', '"').replace("\\\\", "\\"),
        "every escape": _unescaped(html.unescape(unquote(text))),
    }
    for name, view in views.items():
        if want in view.encode("utf-8", "replace").lower():
            found.append(name)
    percent = text.encode("utf-8", "replace")
    for _ in range(3):
        percent = unquote_to_bytes(percent.replace(b"+", b" "))
        if want in percent.lower():
            found.append("percent")
            break
    bare = re.sub(r"0x|[\s:,.-]", "", text)  # hex bytes apart, 0x before each
    for run in re.findall(r"[0-9a-fA-F]{8,}", text) + re.findall(r"[0-9a-fA-F]{8,}", bare):
        for start in (0, 1):
            chunk = run[start:]
            if want in bytes.fromhex(chunk[: len(chunk) // 2 * 2]).lower():
                found.append("hex")
    for name, (size, decode) in _DECODERS.items():
        for run in _RUNS[name].findall(text):
            for start in range(size):
                chunk = run[start:]
                # whole groups, or all of it (a last group cut short, padded as it decodes)
                pad = "" if "85" in name else "=" * (-len(chunk) % size)
                for candidate in (chunk[: len(chunk) // size * size], chunk + pad):
                    try:
                        data = decode(candidate)
                    except (ValueError, binascii.Error):
                        continue
                    if want in data.lower():
                        found.append(name)
    return found


# --- the forms the tester used ----------------------------------------------------------------


def _at(prefix: bytes, secret: str) -> bytes:
    return prefix + secret.encode() + b"|tail"


FORMS: dict[str, Callable[[str], str]] = {
    "hex": lambda s: s.encode().hex(),
    "HEX": lambda s: s.encode().hex().upper(),
    "hex, 0x and colons": lambda s: ":".join(f"0x{b:02x}" for b in s.encode()),
    "base32": lambda s: base64.b32encode(s.encode()).decode(),
    "base32, lower case": lambda s: base64.b32encode(s.encode()).decode().lower(),
    "base32hex": lambda s: base64.b32hexencode(_at(b"k=", s)).decode(),
    "base85": lambda s: base64.b85encode(s.encode()).decode(),
    "ascii85": lambda s: base64.a85encode(s.encode(), adobe=True).decode(),
    "basic, another login": lambda s: base64.b64encode(b"otherlogin:" + s.encode()).decode(),
    "basic url-safe, another login": lambda s: base64.urlsafe_b64encode(
        b"bob:" + s.encode()
    ).decode(),
    "every byte %xx": lambda s: "".join(f"%{b:02x}" for b in s.encode()),
    "every byte %XX": lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    "every byte %25XX (twice)": lambda s: "".join(f"%25{b:02X}" for b in s.encode()),
    "every char &#NN;": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "every char &#xNN;": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "every char &#XNN; upper": lambda s: "".join(f"&#X{ord(c):X};" for c in s),
    "every char \\uXXXX": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "every char \\uXXXX upper": lambda s: "".join(f"\\u{ord(c):04X}" for c in s),
    "every byte \\xNN": lambda s: "".join(f"\\x{b:02x}" for b in s.encode()),
    "mixed escapes": lambda s: "".join(
        (f"%{ord(c):02x}", f"&#{ord(c)};", f"\\u{ord(c):04x}", c)[i % 4] for i, c in enumerate(s)
    ),
    "reversed": lambda s: s[::-1],
    "reversed, upper": lambda s: s[::-1].upper(),
    "UPPER": lambda s: s.upper(),
    "lower": lambda s: s.lower(),
    "swapcase": lambda s: s.swapcase(),
}
for _offset in range(3):
    FORMS[f"base64 at offset {_offset}"] = lambda s, o=_offset: base64.b64encode(
        _at(b"xyz"[:o], s)
    ).decode()
    FORMS[f"base64url at offset {_offset}"] = lambda s, o=_offset: base64.urlsafe_b64encode(
        _at(b"\xfb\xff\xfe"[:o], s)
    ).decode()
for _offset in range(5):
    FORMS[f"base32 at offset {_offset}"] = lambda s, o=_offset: base64.b32encode(
        _at(b"abcde"[:o], s)
    ).decode()
for _offset in range(4):
    FORMS[f"base85 at offset {_offset}"] = lambda s, o=_offset: base64.b85encode(
        _at(b"abcd"[:o], s)
    ).decode()
    FORMS[f"ascii85 at offset {_offset}"] = lambda s, o=_offset: base64.a85encode(
        _at(b"abcd"[:o], s)
    ).decode()


@pytest.mark.unit
@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", list(FORMS))
def test_a_known_secret_is_hidden_in_every_encoding(secret: str, form: str) -> None:
    shown = FORMS[form](secret)
    text = f"Access denied for login admin with credential {shown} (end)"
    assert leaks(text, secret), (form, "the checker must see the leak it is given")
    hidden = redact_known_text(text, [secret], LOGIN)
    assert "***" in hidden and not leaks(hidden, secret), (leaks(hidden, secret), hidden)
    record = redact_known({"comment": f"creds {shown}", shown: 1}, [None, secret], LOGIN)
    shown_record = json.dumps(record, ensure_ascii=False)
    assert not leaks(shown_record, secret), (leaks(shown_record, secret), shown_record)


@pytest.mark.unit
def test_other_text_is_left_alone() -> None:
    """Hex digests, base64 blobs and words of other data keep their every character."""
    text = " ".join(
        [
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            base64.b64encode(b"an attachment that is not the secret at all").decode(),
            base64.b32encode(b"another attachment here").decode(),
            base64.b85encode(b"and one more attachment").decode(),
            "%41%42%43 &#65;&#66; \\u0041 Super secret password policy: rotate yearly.",
        ]
    )
    for secret in SECRETS:
        assert redact_known_text(text, [secret], LOGIN) == text


@pytest.mark.unit
def test_a_short_secret_keeps_its_minimum() -> None:
    """A secret shorter than MIN_KNOWN_SECRET is not searched for encoded (hex, base64, in a
    word): only as it is, where it stands as a whole token (outside round 24)."""
    text = "abc 616263 YWJj abcd xabc"
    assert redact_known_text(text, ["abc"], LOGIN) == "*** 616263 YWJj abcd xabc"


@pytest.mark.unit
def test_redacting_a_large_result_stays_fast() -> None:
    rows = [{"id": i, "name": f"Partner {i} " * 4, "comment": "x" * 80} for i in range(1000)]
    rows[500]["comment"] = "leak " + SECRETS[0].encode().hex()
    redact_known(rows, SECRETS[:1], LOGIN)  # the pattern is built once per secrets
    started = time.perf_counter()
    hidden = redact_known(rows, SECRETS[:1], LOGIN)
    assert time.perf_counter() - started < 2.0
    assert hidden[500]["comment"] == "leak ***"


# --- through serve, a fake Odoo and the SDK client ----------------------------------------------

E2E = ["hex", "base32-offset", "percent-all", "html-decimal", "reversed", "upper"]


@pytest.fixture(params=[(e, where) for e in E2E for where in ("record", "fault")], ids=str)
def encoding_odoo(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    import subprocess

    encoding, where = request.param
    process = subprocess.Popen(
        [sys.executable, str(FAKE_ODOO), "--echo-encoded", encoding, "--echo-in", where],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), port
        yield encoding, where, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


async def test_an_odoo_quoting_the_password_encoded_shows_it_nowhere(
    tmp_path: Path, encoding_odoo: tuple[str, str, str]
) -> None:
    _encoding, where, url = encoding_odoo
    password = SECRETS[0]
    pol = write_policy(tmp_path / "policy.json", policy(odoo_search_read={"action": "allow"}))
    log = tmp_path / "serve.log"
    async with serve_with_log(tmp_path, pol, log) as client:
        connect = {
            "alias": "prod",
            "url": url,
            "db": "prod",
            "username": LOGIN,
            "password": password,
            "protocol": "xmlrpc",
        }
        assert not (await client.call_tool("odoo_connect", connect)).is_error
        result = await client.call_tool(
            "odoo_search_read",
            {"alias": "prod", "model": "res.partner", "fields": ["name", "comment"]},
        )
    # base32 keeps the characters its neighbours share with the secret: "NFSD2***HM======"
    masked = r"\S*\*\*\*\S*"
    if where == "record":
        assert not result.is_error, text_of(result)
        assert re.search(f"creds {masked} end", text_of(result)), text_of(result)
    else:
        assert result.is_error, text_of(result)
        assert re.search(f"credential {masked}", text_of(result)), text_of(result)
    shown = text_of(result) + json.dumps(result.model_dump(mode="json"), ensure_ascii=False)
    audit = json.dumps(query(tmp_path, "SELECT * FROM audit"), ensure_ascii=False)
    audit += run_cli(tmp_path, "audit", "tail", "-n", "20", "--json").stdout
    if where == "fault":
        assert re.search(f"credential {masked}", audit), audit
    for place, text in (("result", shown), ("audit", audit), ("log", log.read_text())):
        assert not leaks(text, password), (place, leaks(text, password), text)
