"""Outside round 22 (MEDIUM): the proxy trusted an incomplete ``odoo_connections`` listing.

An upstream answering ``{"connections": [], "next": "page2", "total": 1}`` (a first page), or
listing its aliases under another key, made ``odoo_connect alias=prod`` look like a NEW
connection: let through without approval, it replaced "prod". Round 23 said "there is more" in
other words (``links.next``, ``meta.total``, a note). A listing is now complete only in the
shapes odoo-claude-mcp and the guard answer (``connections``, and ``count`` equal to their
number); any other cannot be read and the call is judged a replacement (held for the
odoo_disconnect approval, nothing sent).

Through the real interface: the SDK client → ``odoo-mcp-guard proxy`` (a subprocess) →
tests/upstream_server.py holding "prod", whose listing is ``UPSTREAM_LISTING``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.guard import (
    CONNECTION_POLICY,
    proxy_args,
    proxy_stdio_client,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
    write_upstream_state,
)

pytestmark = pytest.mark.anyio

PROD_URL = "https://prod.example.com"

# Each hides "prod" (held upstream) from the connections it lists, and says so somehow.
INCOMPLETE: dict[str, dict[str, Any]] = {
    "next-and-total": {"connections": [], "next": "page2", "total": 1},
    "another-key": {"items": "$connections", "connections": []},
    "aliases-as-strings": {"connections": [], "aliases": ["prod"]},
    "mapping-by-alias": {"connections": [], "by_alias": {"prod": {"url": PROD_URL}}},
    "count-mismatch": {"connections": [], "count": 1},
    "count-not-int": {"connections": [], "count": "0"},
    "count-bool": {"connections": [], "count": False},
    "total-count": {"connections": [], "totalCount": 1},
    "has-more": {"connections": [], "has_more": True},
    "next-cursor": {"connections": [], "nextCursor": "abc"},
    "folded-key": {"connections": [], "Next-Page": 2},
    "truncated": {"connections": [], "truncated": True},
    "page-of-pages": {"connections": [], "page": 1, "pages": 2},
    "offset-limit": {"connections": [], "offset": 0, "limit": 0},
    "item-not-a-dict": {"connections": ["prod"]},
    # outside round 23: said in other words; only ``connections`` and its ``count`` are trusted
    "links-next": {"connections": [], "links": {"next": "/page/2"}},
    "odata-next-link": {"connections": [], "@odata.nextLink": "/page/2"},
    "truncated-at": {"connections": [], "truncated_at": 0},
    "meta-total": {"connections": [], "meta": {"total": 1}},
    "items-count": {"connections": [], "items_count": 1},
    "size": {"connections": [], "size": 1},
    "omitted": {"connections": [], "omitted": 1},
    "shown-of": {"connections": [], "shown": 0, "of": 1},
    "filter": {"connections": [], "filter": "active"},
    "note": {"connections": [], "note": "one more is not shown"},
    "explicitly-last-page": {"connections": [], "next": None, "has_more": False},
}


def start_state(path: Path) -> None:
    write_upstream_state(path, {"prod": PROD_URL})


def is_pending(result: Any) -> bool:
    content = result.structured_content
    return bool(content) and content.get("status") == "pending"


def connects(state: Path) -> list[dict[str, Any]]:
    return [c["arguments"] for c in upstream_calls(state) if c["tool"] == "odoo_connect"]


async def connect_through_proxy(
    tmp_path: Path, listing: dict[str, Any], alias: str, *, text: bool = False
) -> tuple[Any, Path]:
    pol = write_policy(tmp_path / "policy.json", CONNECTION_POLICY)
    state = tmp_path / "upstream.json"
    start_state(state)
    env = ("UPSTREAM_CONNECT=1", f"UPSTREAM_LISTING={json.dumps(listing)}")
    if text:
        env += ("UPSTREAM_LISTING_TEXT=1",)
    extra: tuple[str, ...] = ()
    for item in env:
        extra += ("--upstream-env", item)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), extra=extra)
    async with proxy_stdio_client(tmp_path, args) as client:
        await client.list_tools()
        result = await client.call_tool("odoo_connect", {"alias": alias, "url": "http://evil"})
    return result, state


@pytest.mark.parametrize("text", [False, True], ids=["structured", "text-json"])
@pytest.mark.parametrize("form", sorted(INCOMPLETE))
async def test_an_incomplete_listing_makes_connect_a_replacement(
    tmp_path: Path, form: str, text: bool
) -> None:
    """``odoo_connect`` of the alias the listing hides is held for approval, unsent."""
    result, state = await connect_through_proxy(tmp_path, INCOMPLETE[form], "prod", text=text)
    assert is_pending(result), text_of(result)
    assert connects(state) == []
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["urls"]["prod"] == PROD_URL


@pytest.mark.parametrize("text", [False, True], ids=["structured", "text-json"])
@pytest.mark.parametrize(
    "listing",
    [
        {"connections": "$connections", "count": "$count"},  # the guard's own server's form
        {"connections": "$connections"},  # odoo-claude-mcp's
    ],
    ids=["with-count", "bare"],
)
async def test_a_complete_listing_still_lets_a_new_alias_through(
    tmp_path: Path, listing: dict[str, Any], text: bool
) -> None:
    """A truly new alias, on a complete listing, is new: let through, sent once."""
    result, state = await connect_through_proxy(tmp_path, listing, "fresh", text=text)
    assert not result.is_error and not is_pending(result), text_of(result)
    assert connects(state) == [{"alias": "fresh", "url": "http://evil"}]


async def test_a_complete_listing_still_sees_a_listed_alias_as_a_replacement(
    tmp_path: Path,
) -> None:
    listing = {"connections": "$connections", "count": "$count"}
    result, state = await connect_through_proxy(tmp_path, listing, "prod")
    assert is_pending(result), text_of(result)
    assert connects(state) == []
