"""Outside round 27 (redaction misfires, what an approver sees in ``approvals show``):
(1, MEDIUM) ``auth=('admin', 'PW')`` was shown as ``auth=***'admin', 'PW')``: the bracket
hidden, the password kept; a tuple or list after a secret key now has its items hidden (an
``auth`` pair keeps its user). (2) ``docker login -u bob -p PW registry`` hid the registry, not
the password. (3) Odoo's external API, ``execute_kw(db, uid, 'PW', ...)``,
``login(db, 'admin', 'PW')``, ``authenticate(db, 'admin', 'PW', {})``: the password, the third
positional argument, was shown. (LOW) passwords of other command lines (ldapsearch -w, keytool
-storepass, zip -P, 7z -p, smbclient -U user%pw, httpie -a, net use) and more token shapes.
policy_core direct where it is the interface (both halves vendor it), and one approval request
through a real proxy subprocess and the CLI an approver runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.guard import (
    policy,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    text_of,
    upstream_command,
    write_policy,
    write_upstream_state,
)

from odoo_mcp_guard.policy_core import redact_arguments, redact_text

PW = "Zx9-Q7pw-secret"

HIDDEN = [
    # (1) a tuple or list after a secret key: an auth pair keeps its user
    ("requests.get(url, auth=('admin', 'PW'))", "requests.get(url, auth=('admin', '***'))"),
    ('requests.get(url, auth=("admin", "PW"))', 'requests.get(url, auth=("admin", "***"))'),
    ("requests.post(u, auth = ( 'admin' , 'PW' ), json=d)", None),
    ('config = {"auth": ["admin", "PW"], "x": 1}', 'config = {"auth": ["admin", "***"], "x": 1}'),
    ("auth: ['admin', 'PW']", "auth: ['admin', '***']"),
    ("HTTPBasicAuth('admin', 'PW')", "HTTPBasicAuth('admin', '***')"),
    ("aiohttp.BasicAuth('admin', 'PW')", "aiohttp.BasicAuth('admin', '***')"),
    ("passwords=['PW', 'PW']", "passwords=['***', '***']"),
    # (2) docker login's password, not its registry
    (
        "docker login -u bob -p PW registry.example.com",
        "docker login -u bob -p *** registry.example.com",
    ),
    (
        "docker login -u bob -p DockerS3cretPw registry.example.com",
        "docker login -u bob -p *** registry.example.com",
    ),
    ("podman login -p PW quay.io", "podman login -p *** quay.io"),
    ("docker login --password PW reg.io", "docker login --password *** reg.io"),
    ("docker login --password=PW reg.io", "docker login --password=*** reg.io"),
    # (3) Odoo's external API: the password is the third positional argument
    (
        "models.execute_kw(db, uid, 'PW', 'res.partner', 'read', [[1]])",
        "models.execute_kw(db, uid, '***', 'res.partner', 'read', [[1]])",
    ),
    (
        'models.execute_kw(DB, 2, "PW", "res.partner", "search", [[]])',
        'models.execute_kw(DB, 2, "***", "res.partner", "search", [[]])',
    ),
    ("common.login(db, 'admin', 'PW')", "common.login(db, 'admin', '***')"),
    ("common.authenticate(db, 'admin', 'PW', {})", "common.authenticate(db, 'admin', '***', {})"),
    (
        "common.authenticate('odoo', 'admin', 'PW', {})",
        "common.authenticate('odoo', 'admin', '***', {})",
    ),
    (
        "uid = common.login('prod', 'admin', 'PW')\nok",
        "uid = common.login('prod', 'admin', '***')\nok",
    ),
    # LOW: other command lines
    ("ldapsearch -x -D cn=admin -w PW -b dc=x", "ldapsearch -x -D cn=admin -w *** -b dc=x"),
    ("ldapmodify -D cn=admin -w PW -f a.ldif", "ldapmodify -D cn=admin -w *** -f a.ldif"),
    (
        "keytool -list -keystore ks.jks -storepass PW -keypass PW",
        "keytool -list -keystore ks.jks -storepass *** -keypass ***",
    ),
    ("zip -P PW out.zip file", "zip -P *** out.zip file"),
    ("unzip -P PW out.zip", "unzip -P *** out.zip"),
    ("7z x -pPW archive.7z", "7z x -p*** archive.7z"),
    ("smbclient //srv/share -U bob%PW", "smbclient //srv/share -U bob%***"),
    ("http -a admin:PW GET https://x.example.com", "http -a admin:*** GET https://x.example.com"),
    ("net use \\\\srv\\share PW /user:bob", "net use \\\\srv\\share *** /user:bob"),
    ("net use Z: \\\\srv\\share PW /user:bob", "net use Z: \\\\srv\\share *** /user:bob"),
    # LOW: token shapes
    (
        "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Zq9SECRETslackWEBHOOKx1",
        "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/***",
    ),
    (
        "https://api.telegram.org/bot123456789:AAHsecretTELEGRAMtokenXYZ123abc/sendMessage",
        "https://api.telegram.org/bot123456789:***/sendMessage",
    ),
    ("pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAACKlsz", "***"),
    ("token hf_abcdefghijklmnopqrstuvwxyzABCDEFGH here", "token *** here"),
    ("ya29.a0AfH6SMBsecretGOOGLEaccessTOKENvalue1234567890", "***"),
    ("shpat_0123456789abcdef0123456789abcdef", "***"),
    ("dop_v1_" + "0123456789abcdef" * 4, "***"),
    ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "***"),
]

KEPT = [
    "ssh -p 22 host",
    "docker run -p 8080:80 nginx",
    "docker login -u bob --password-stdin registry.example.com",
    "echo $PW | docker login --password-stdin -u bob",
    "docker ps -a; ssh -p 2222 host",
    "zip -r out.zip dir",
    "curl -w 80 https://x.example.com",
    "wc -w file.txt; fmt -w 80 a.txt",
    "http -a admin GET https://x.example.com",
    "smbclient //srv/share -U bob",
    "net use \\\\srv\\share /user:bob",
    "net use \\\\srv\\share * /user:bob",
    "see http://x.example.com -a b:c",
    "models.execute_kw(db, uid, password, 'res.partner', 'read', [[1]])",
    "common.login(db, username, password)",
    "cr.execute('select 1', (a,), 'x')",
    "7z a -p archive.7z files",
    "the hf_ prefix, npm_ tokens, ya29. tokens",
    "https://hooks.slack.com/services/",
]


@pytest.mark.parametrize(("text", "shown"), HIDDEN)
def test_the_secret_is_hidden_and_the_rest_kept(text: str, shown: str | None) -> None:
    text = text.replace("PW", PW)
    got = redact_text(text)
    assert PW not in got, got
    if shown is not None:
        assert got == shown, got
    assert redact_text(got) == got  # redacting twice changes nothing
    # the same as an approval request's free-form argument
    arguments = redact_arguments({"note": text, "config": {"label": "x", "text": text}})
    assert PW not in json.dumps(arguments), arguments


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_stays_readable(text: str) -> None:
    assert redact_text(text) == text


def test_a_megabyte_of_such_text_is_redacted_in_linear_time() -> None:
    lines = [text.replace("PW", PW) for text, _ in HIDDEN] + KEPT
    document = json.dumps({"lines": lines * (1_000_000 // len(json.dumps(lines)) + 1)})
    assert len(document) >= 1_000_000
    started = time.process_time()
    shown = redact_text(document)
    assert time.process_time() - started < 10, len(document)  # a bound, not a speed claim
    assert PW not in shown
    for opening in (
        "execute_kw(",
        "login(a, 'b', ",
        "auth=('",
        "docker login -p ",
        "net use \\\\s ",
    ):
        started = time.process_time()
        redact_text(opening * (1_000_000 // len(opening)))
        assert time.process_time() - started < 10, opening


@pytest.mark.anyio
async def test_an_approver_sees_neither_password(tmp_path: Path) -> None:
    note = "\n".join(
        [
            f"requests.get(url, auth=('admin', '{PW}'))",
            f"docker login -u bob -p {PW} registry.example.com",
            f"uid = common.login(db, 'admin', '{PW}')",
            f"models.execute_kw(db, uid, '{PW}', 'res.partner', 'read', [[1]])",
        ]
    )
    state = tmp_path / "upstream.json"
    write_upstream_state(state, [])
    pol = write_policy(tmp_path / "policy.json", policy(write_note={"action": "require_approval"}))
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state))
    async with proxy_stdio_client(tmp_path, args) as client:
        pending = await client.call_tool("write_note", {"key": "deploy", "value": note})
        assert (pending.structured_content or {}).get("status") == "pending", text_of(pending)
        ref = pending.structured_content["request"]
    shown = run_cli(tmp_path, "approvals", "show", ref).stdout
    listed = run_cli(tmp_path, "approvals", "list", "--json").stdout
    for text in (shown, listed):
        assert PW not in text, text
    for kept in ("admin", "registry.example.com", "res.partner", "docker login -u bob -p"):
        assert kept in shown, shown
