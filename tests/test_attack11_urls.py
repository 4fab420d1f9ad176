"""Attack 11 (05, 07) at the front-end: a connection URL holding credentials in a form a WHATWG
parser reads (one slash, none, backslashes) or in a secret query parameter, and an alias with an
invisible character, refused by odoo_connect over stdio and by ``connections import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.guard import aliases, connect_args, run_cli, stdio_client, text_of

SECRET = "Hunter2pw"
URLS = [
    f"https:/bob:{SECRET}@erp.example.com",
    f"https:bob:{SECRET}@erp.example.com",
    f"https:\\\\bob:{SECRET}@erp.example.com",
    f"https://\\bob:{SECRET}@erp.example.com",
    f"https://erp.example.com/?X-Amz-Signature={SECRET}",
    f"https://erp.example.com/?key={SECRET}",
    f"https://erp.example.com/?token={SECRET}",
    f"https://erp.example.com/?access_token={SECRET}",
    f"https://erp.example.com/?sig={SECRET}",
    f"https://erp.example.com/?apikey={SECRET}",
    f"https://erp.example.com/odoo?db=prod#access_token={SECRET}",
]
QUERY_URLS = [url for url in URLS if "?" in url or "#" in url]
INVISIBLE = ["\u200b", "\u202e", "\u2060", " "]


def _import(tmp_path: Path, entries: object):
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(entries))
    return run_cli(tmp_path, "connections", "import", str(path), check=False)


@pytest.mark.anyio
async def test_odoo_connect_refuses_a_url_with_credentials_in_any_form(tmp_path):
    async with stdio_client(tmp_path) as client:
        for url in URLS:
            result = await client.call_tool("odoo_connect", connect_args("prod", url=url))
            assert result.is_error, url
            text = text_of(result)
            assert SECRET not in text and "\n" not in text.strip(), text
        for url in QUERY_URLS:
            result = await client.call_tool("odoo_connect", connect_args("prod", url=url))
            assert "url must not contain credentials" in text_of(result), url
        # a plain query stays accepted
        plain = await client.call_tool(
            "odoo_connect", connect_args("prod", url="https://erp.example.com/odoo?db=prod")
        )
        assert not plain.is_error, text_of(plain)
    assert aliases(tmp_path) == ["prod"]


@pytest.mark.parametrize("url", QUERY_URLS)
def test_connections_import_refuses_a_secret_query_parameter(tmp_path, url):
    result = _import(tmp_path, {"connections": [connect_args("prod", url=url)]})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and SECRET not in result.stderr, result.stderr
    assert "url must not contain credentials" in result.stderr
    listed = run_cli(tmp_path, "connections", "list", "--json").stdout
    assert json.loads(listed) == []


@pytest.mark.anyio
async def test_odoo_connect_refuses_an_alias_with_an_invisible_character(tmp_path):
    async with stdio_client(tmp_path) as client:
        assert not (await client.call_tool("odoo_connect", connect_args("prod"))).is_error
        for suffix in INVISIBLE:
            result = await client.call_tool("odoo_connect", connect_args("prod" + suffix))
            assert result.is_error, ascii(suffix)
            text = text_of(result)
            # one line naming the character, as the add-on's mcp.connection says it
            assert "alias must be 1 to 64 characters" in text and ascii(suffix) in text, text
            assert suffix.strip() == "" or suffix not in text
    assert aliases(tmp_path) == ["prod"]
