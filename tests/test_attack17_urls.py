"""Attack 17 (finding 1) at the front-end: a connection URL whose credentials hide behind a
compatibility form of "@" (fullwidth, small), or a URL that is no string, is refused by
odoo_connect over stdio and by ``connections import``, as the add-on refuses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.guard import aliases, connect_args, run_cli, stdio_client, text_of

SECRET = "Hunter2pw"
URLS = [
    f"http://bob:{SECRET}\uff20h.example.com",
    f"http://bob:{SECRET}\ufe6bh.example.com",
    f"https://{SECRET}\uff20h.example.com/odoo",
]


@pytest.mark.anyio
async def test_odoo_connect_refuses_credentials_behind_a_fullwidth_at(tmp_path):
    async with stdio_client(tmp_path) as client:
        for url in URLS:
            result = await client.call_tool("odoo_connect", connect_args("prod", url=url))
            assert result.is_error, url
            text = text_of(result)
            assert SECRET not in text and "\n" not in text.strip(), text
            assert "url must not contain credentials" in text, text
        listed = await client.call_tool(
            "odoo_connect", connect_args("prod", url=[f"http://bob:{SECRET}@h.example"])
        )
        assert listed.is_error and SECRET not in text_of(listed), text_of(listed)
    assert aliases(tmp_path) == []


@pytest.mark.parametrize("url", [*URLS, [f"http://bob:{SECRET}@h.example"]])
def test_connections_import_refuses_them(tmp_path: Path, url: object):
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"connections": [connect_args("prod", url=url)]}))
    result = run_cli(tmp_path, "connections", "import", str(path), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and SECRET not in result.stderr, result.stderr
    assert json.loads(run_cli(tmp_path, "connections", "list", "--json").stdout) == []
