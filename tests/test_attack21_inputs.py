"""Outside round 21 at the front-end: a password or an API key with a NUL, which the add-on's
PostgreSQL refused with a traceback, is refused by both halves at the input with one line
(identity.secret_problem): by odoo_connect over stdio and by ``connections import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.guard import aliases, connect_args, run_cli, stdio_client, text_of

SECRETS = [{"password": "Zq9pw\x00tail"}, {"api_key": "\x00Zq9key"}]


@pytest.mark.anyio
async def test_odoo_connect_refuses_a_secret_with_a_nul(tmp_path):
    async with stdio_client(tmp_path) as client:
        for secret in SECRETS:
            result = await client.call_tool("odoo_connect", connect_args("prod", **secret))
            assert result.is_error, secret
            text = text_of(result)
            assert "contains a NUL character" in text and "\n" not in text.strip(), text
            assert "Zq9" not in text, text
    assert aliases(tmp_path) == []


@pytest.mark.parametrize("secret", SECRETS, ids=["password", "api_key"])
def test_connections_import_refuses_a_secret_with_a_nul(tmp_path: Path, secret: dict[str, str]):
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"connections": [connect_args("prod", **secret)]}))
    result = run_cli(tmp_path, "connections", "import", str(path), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "contains a NUL character" in result.stderr
    assert "Zq9" not in result.stderr, result.stderr
    assert json.loads(run_cli(tmp_path, "connections", "list", "--json").stdout) == []
