"""The tool catalog: risk classification on real tool definitions (tests/data/tool_corpus.json),
the ``risk`` section of the policy, and the default approval of destructive tools through a
real proxy session, with ``tools list`` showing class and reason.

``python tests/test_catalog.py`` prints precision and recall per class on both corpora (the
table in the README)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.guard import (
    approve,
    proxy_args,
    proxy_stdio_client,
    run_cli,
    stdio_client,
    text_of,
    upstream_calls,
    upstream_command,
    write_policy,
)

from odoo_mcp_guard.catalog import (
    RISK_CLASSES,
    RISK_RANK,
    changes_connection,
    classify,
    classify_definition,
)
from odoo_mcp_guard.policy import PolicyError, load_policy_text

CORPUS = json.loads((Path(__file__).parent / "data" / "tool_corpus.json").read_text("utf-8"))


def test_the_corpus_is_real_definitions_with_their_source() -> None:
    tools = CORPUS["tools"]
    assert len(tools) >= 50
    assert len({(entry["server"], entry["tool"]["name"]) for entry in tools}) == len(tools)
    for entry in tools:
        source = entry["source"]
        assert source["repo"].count("/") == 1 and source["path"] and source["commit"], entry
        assert entry["tool"]["name"] and isinstance(entry["tool"]["inputSchema"], dict), entry
        assert entry["expected"] in RISK_RANK and entry["why"], entry
    per_class = {risk: sum(e["expected"] == risk for e in tools) for risk in RISK_RANK}
    assert min(per_class.values()) >= 10, per_class
    odoo_claude = [e for e in tools if e["source"]["repo"] == "rosenvladimirov/odoo-claude-mcp"]
    assert len(odoo_claude) >= 170, len(odoo_claude)


# What these tools do is nowhere in their definitions (the source shows it): no classifier that
# reads definitions can see it. A Manager gives them a class override.
UNSEEABLE = {
    # Creates and runs an ir.actions.server with Python code; says "create a journal entry".
    ("odoo-rpc-mcp", "odoo_stock_close_unaccounted_value"),
}


def test_classification_of_real_tools() -> None:
    """Agreement with a reviewer's labels; never lower by more than one class, and at most
    two tools lower at all (the classifier errs towards the higher class)."""
    exact, lower, higher = [], [], []
    for entry in CORPUS["tools"]:
        verdict = classify_definition(entry["tool"])
        row = (entry["server"], entry["tool"]["name"], entry["expected"], verdict.risk_class)
        gap = RISK_RANK[verdict.risk_class] - RISK_RANK[entry["expected"]]
        (exact if gap == 0 else lower if gap < 0 else higher).append((gap, row))
        assert verdict.reason, row
    total = len(CORPUS["tools"])
    report = f"exact {len(exact)}/{total}; lower {lower}; higher {higher}"
    assert len(exact) / total >= 0.9, report
    seen = [(gap, row) for gap, row in lower if row[:2] not in UNSEEABLE]
    assert len(seen) <= 1, report
    assert all(gap == -1 for gap, _ in seen), report
    # No critical tool (code, messages, money, rights) passes for a write or a read.
    assert not [row for _, row in seen if row[2] == "critical"], report


def test_no_tool_that_writes_is_classified_read() -> None:
    """The floor of the issue "Zero bypasses": in either corpus, every tool a reviewer says
    changes anything (write, destructive, critical) is classified above ``read``, so a policy
    that holds writes holds all of them."""
    bypasses = [
        (entry["server"], entry["tool"]["name"], entry["expected"], verdict.reason)
        for entry in CORPUS["tools"] + HOLDOUT["tools"]
        if entry["expected"] != "read"
        and (verdict := classify_definition(entry["tool"])).risk_class == "read"
    ]
    assert not bypasses, bypasses


def per_class(entries: list[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """Precision, recall and support of each class: precision of ``write`` is the share of
    tools classified write that a reviewer calls write."""
    table: dict[str, tuple[float, float, int]] = {}
    verdicts = [(e["expected"], classify_definition(e["tool"]).risk_class) for e in entries]
    for risk in RISK_CLASSES:
        hits = sum(expected == got == risk for expected, got in verdicts)
        predicted = sum(got == risk for _, got in verdicts)
        support = sum(expected == risk for expected, _ in verdicts)
        table[risk] = (hits / predicted if predicted else 1.0, hits / support, support)
    return table


def test_precision_and_recall_per_class() -> None:
    """The README's table. Recall of ``read`` may fall (a read tool called write costs no
    approval by default); precision of ``read`` may not: what is called read reads."""
    labelled, held_out = per_class(CORPUS["tools"]), per_class(HOLDOUT["tools"])
    assert labelled["read"][0] == held_out["read"][0] == 1.0, (labelled, held_out)
    assert labelled["critical"][1] >= 0.95 and held_out["critical"][1] >= 0.7, (labelled, held_out)
    for risk in RISK_CLASSES:
        assert labelled[risk][0] >= 0.75 and labelled[risk][1] >= 0.8, (risk, labelled)
        assert held_out[risk][0] >= 0.75 and held_out[risk][1] >= 0.75, (risk, held_out)


HOLDOUT = json.loads(
    (Path(__file__).parent / "data" / "tool_corpus_holdout.json").read_text("utf-8")
)


def test_classification_of_held_out_tools() -> None:
    """97 tools of 18 other servers, labelled without seeing the classifier and never used to
    tune it (tool_corpus_holdout.json): what to expect on servers nobody looked at. Measured:
    85 exact (88 %), 7 higher, 5 lower (infrastructure tools a reviewer calls critical:
    stopping a container, pausing a project, building an image), none of them read."""
    assert not {(e["server"], e["tool"]["name"]) for e in HOLDOUT["tools"]} & {
        (e["server"], e["tool"]["name"]) for e in CORPUS["tools"]
    }
    assert not {e["source"]["repo"] for e in HOLDOUT["tools"]} & {
        e["source"]["repo"] for e in CORPUS["tools"] if "servers" not in e["source"]["repo"]
    }
    exact, lower = 0, []
    for entry in HOLDOUT["tools"]:
        verdict = classify_definition(entry["tool"])
        gap = RISK_RANK[verdict.risk_class] - RISK_RANK[entry["expected"]]
        exact += gap == 0
        if gap < 0:
            lower.append((entry["tool"]["name"], entry["expected"], verdict.risk_class))
    total = len(HOLDOUT["tools"])
    assert total >= 50
    assert exact / total >= 0.8, (exact, total, lower)
    # The floor that matters: nothing that deletes, runs or sends passes for a read.
    assert not [row for row in lower if row[2] == "read"], lower
    assert len(lower) <= 7, lower


def test_annotations_cannot_lower_the_class() -> None:
    risky = [e["tool"] for e in CORPUS["tools"] if e["expected"] in ("destructive", "critical")]
    for tool in risky:
        claimed = {**tool, "annotations": {"readOnlyHint": True, "destructiveHint": False}}
        assert (
            RISK_RANK[classify_definition(claimed).risk_class]
            >= RISK_RANK[classify_definition({**tool, "annotations": None}).risk_class]
        ), tool["name"]
    # An annotation alone does not make an unknown tool read-only; destructiveHint raises.
    assert classify("frobnicate", None, {"readOnlyHint": True}).risk_class == "write"
    assert classify("get_item", "Get an item.", {"destructiveHint": True}).risk_class == (
        "destructive"
    )


@pytest.mark.parametrize(
    ("name", "description", "expected"),
    [
        ("DeleteRecord", None, "destructive"),
        ("delete-record", None, "destructive"),
        ("records.purge", None, "destructive"),
        ("odoo_disconnect", None, "destructive"),
        ("list_files", "Lists files. Does not delete anything.", "read"),
        ("sync_data", "Synchronises data; removes records missing upstream.", "destructive"),
        ("notify", "Sends an email to the customer.", "critical"),
        ("run_query", "Run a read-only SQL query.", "critical"),  # the name runs something
        ("query", "Run a read-only SQL query.", "read"),
        ("update_user_role", None, "critical"),
        ("get_secret", "Get a secret's metadata.", "read"),
        ("sequentialthinking", "A tool for thinking.", "write"),
    ],
)
def test_names_and_descriptions(name: str, description: str | None, expected: str) -> None:
    assert classify(name, description).risk_class == expected


@pytest.mark.parametrize(
    ("name", "description", "annotations", "schema", "expected"),
    [
        # A read verb, and a description or schema that says it writes.
        ("extract_data", "Extract data. Writes the result back to the record.", None, {}, "write"),
        (
            "translate_html",
            "Translate HTML.",
            None,
            {"mode": {"enum": ["extract", "replace"]}},
            "write",
        ),
        ("get_report", "Get a report.", None, {"savePath": {"type": "string"}}, "destructive"),
        ("list_items", "List items.", None, {"dry_run": {"type": "boolean"}}, "write"),
        ("get_paper", "Get a paper.", {"readOnlyHint": False}, {}, "write"),
        ("fetch_and_store", None, None, {}, "write"),
        ("status_update", None, None, {}, "write"),
        ("oca_gen_readme", "Generate README for an addon.", None, {}, "write"),
        ("open_dashboard", None, None, {}, "write"),
        ("show_settings", "Add/update a saved connection.", None, {}, "destructive"),
        ("get_stock", "Inserts a quant via raw SQL.", None, {}, "critical"),
        ("query", "Query the database.", None, {"sql": {"type": "string"}}, "critical"),
        ("query", "Run a read-only SQL query.", None, {"sql": {"type": "string"}}, "read"),
        (
            "lookup",
            "Look up a value.",
            None,
            {"code": {"description": "Python code to run"}},
            "critical",
        ),
        (
            "lookup",
            "Look up a country.",
            None,
            {"code": {"description": "ISO country code"}},
            "read",
        ),
        ("open_manager", "Launches the desktop app.", None, {}, "critical"),
        ("plugins_reload", "Reload plugin steps from a directory.", None, {}, "critical"),
        ("web_request", "Raw HTTP request to any controller URL.", None, {}, "critical"),
    ],
)
def test_signs_of_writing_raise_a_read_verb(
    name: str,
    description: str | None,
    annotations: dict[str, Any] | None,
    schema: dict[str, Any],
    expected: str,
) -> None:
    verdict = classify(name, description, annotations, {"type": "object", "properties": schema})
    assert verdict.risk_class == expected, verdict


def decide(document: dict[str, Any], tool: str, server: str = "up") -> tuple[str, str | None]:
    policy = load_policy_text(json.dumps(document))
    decision = policy.decide(tool, server, classify(tool))
    return ("hidden" if decision.hidden else decision.action), decision.reason


def test_risky_tools_need_approval_whatever_the_default_says() -> None:
    base: dict[str, Any] = {"version": "1", "default": "allow"}
    action, reason = decide(base, "purge_cache")
    assert action == "require_approval" and reason and "classified destructive" in reason
    assert decide(base, "read_cache")[0] == "allow"
    assert decide(base, "write_cache")[0] == "allow"
    assert decide(base, "execute_command")[0] == "require_approval"
    # A glob does not exempt a risky tool; an exact rule does; deny stays deny.
    globbed = {**base, "rules": {"purge_*": {"action": "allow"}}}
    assert decide(globbed, "purge_cache")[0] == "require_approval"
    exact = {**base, "rules": {"purge_cache": {"action": "allow"}}}
    assert decide(exact, "purge_cache")[0] == "allow"
    denied = {"version": "1", "default": "deny"}
    assert decide(denied, "purge_cache")[0] == "deny"
    # Per server, and a Manager's override of one tool's class.
    per_server = {**base, "risk": {"servers": {"lab": {"require_approval": ["critical"]}}}}
    assert decide(per_server, "purge_cache", "lab")[0] == "allow"
    assert decide(per_server, "purge_cache", "up")[0] == "require_approval"
    assert decide(per_server, "execute_command", "lab")[0] == "require_approval"
    # A proxy's derived name (readable part ~ digest of its upstream) is also found under its
    # readable part, the name it had before the digest: the entry does not silently drop out
    # at the upgrade; an entry naming the whole derived name wins.
    assert decide(per_server, "purge_cache", "lab~1a2b3c4d")[0] == "allow"
    assert decide(per_server, "purge_cache", "lab2~1a2b3c4d")[0] == "require_approval"
    assert decide(per_server, "purge_cache", "lab~")[0] == "require_approval"
    both = {
        **base,
        "risk": {
            "servers": {
                "lab": {"require_approval": ["critical"]},
                "lab~1a2b3c4d": {"require_approval": ["destructive"]},
            }
        },
    }
    assert decide(both, "purge_cache", "lab~1a2b3c4d")[0] == "require_approval"
    assert decide(both, "purge_cache", "lab~99999999")[0] == "allow"
    override = {
        **base,
        "risk": {"overrides": [{"server": "up", "tool": "purge_cache", "class": "write"}]},
    }
    assert decide(override, "purge_cache", "up")[0] == "allow"
    assert decide(override, "purge_cache", "other")[0] == "require_approval"
    assert decide(override, "purge_cache", "up~1a2b3c4d")[0] == "allow"
    none = {**base, "risk": {"require_approval": []}}
    assert decide(none, "purge_cache")[0] == "allow"
    # The published gateway format (no risk key) stays valid and gets the safe default.
    assert load_policy_text(json.dumps(base)).document.risk is None


def test_a_bad_risk_section_is_refused_with_its_line() -> None:
    text = """{
  "version": "1",
  "risk": {
    "require_approval": ["destructive", "scary"],
    "servers": {"lab": {"require": []}},
    "overrides": [{"server": "up", "tool": "bad name", "class": "write"}]
  }
}"""
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text)
    faults = "\n".join(caught.value.faults)
    assert "line 4: $.risk.require_approval[1]" in faults
    assert "line 5: $.risk.servers.lab.require: unknown key" in faults
    assert "line 6: $.risk.overrides[0].tool" in faults
    twice = {
        "version": "1",
        "risk": {
            "overrides": [
                {"server": "up", "tool": "a", "class": "write"},
                {"server": "up", "tool": "a", "class": "read"},
            ]
        },
    }
    with pytest.raises(PolicyError, match="second override for a of up"):
        load_policy_text(json.dumps(twice, indent=2))


@pytest.mark.e2e  # a subprocess
@pytest.mark.anyio
async def test_default_approval_for_a_destructive_tool_through_the_proxy(tmp_path: Path) -> None:
    """default allow, no rule for purge_notes (annotated read-only by its server): the
    proxy holds it for approval; write_note runs at once; then a server setting lifts it."""
    state = tmp_path / "upstream-state.json"
    document: dict[str, Any] = {"version": "1", "default": "allow", "hide": ["crash"]}
    pol = write_policy(tmp_path / "policy.json", document)
    args = proxy_args(tmp_path, pol, upstream=upstream_command(state), server_name="notes")
    async with proxy_stdio_client(tmp_path, args) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["purge_notes"].annotations.read_only_hint is True  # what it claims
        ok = await client.call_tool("write_note", {"key": "k", "value": "v"})
        assert not ok.is_error, text_of(ok)
        held = await client.call_tool("purge_notes", {})
        assert held.is_error and held.structured_content["status"] == "pending"
        assert "classified destructive" in text_of(held)
        assert not [c for c in upstream_calls(state) if c["tool"] == "purge_notes"]

        shown = run_cli(tmp_path, "tools", "list", "--server", "notes", "--policy", str(pol))
        line = next(row for row in shown.stdout.splitlines() if " purge_notes " in row)
        assert "destructive" in line and "require_approval" in line
        assert "name says 'purge'" in shown.stdout
        listing = json.loads(
            run_cli(tmp_path, "tools", "list", "--json", "--policy", str(pol)).stdout
        )
        classes = {row["tool"]: row["risk_class"] for row in listing}
        assert classes["write_note"] == "write" and classes["read_note"] == "read"
        assert classes["odoo_disconnect"] == "destructive"
        assert classes["noop"] == "write"  # read-only only when its name says so

        approve(tmp_path, held.structured_content["request"], "carol")
        done = await client.call_tool("purge_notes", {})
        assert not done.is_error, text_of(done)
        again = await client.call_tool("purge_notes", {})
        assert again.is_error and again.structured_content["status"] == "pending"
        assert len([c for c in upstream_calls(state) if c["tool"] == "purge_notes"]) == 1

        # Configurable per server: this one needs approval for critical tools only.
        document["risk"] = {"servers": {"notes": {"require_approval": ["critical"]}}}
        write_policy(pol, document)
        for _ in range(50):
            free = await client.call_tool("purge_notes", {})
            if not free.is_error:
                break
            await anyio.sleep(0.1)
        assert not free.is_error, text_of(free)
    assert len([c for c in upstream_calls(state) if c["tool"] == "purge_notes"]) == 2


@pytest.mark.e2e  # a subprocess
@pytest.mark.anyio
async def test_serve_records_its_own_tools_in_the_catalog(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert not (await client.call_tool("odoo_connections", {})).is_error
        for _ in range(100):  # recorded by the front-end's background task
            listing = json.loads(run_cli(tmp_path, "tools", "list", "--json").stdout)
            if listing:
                break
            await anyio.sleep(0.1)
    rows = {row["tool"]: row for row in listing if row["server"] == "odoo-mcp-guard"}
    assert names <= set(rows)
    assert rows["odoo_disconnect"]["risk_class"] == "destructive"
    assert rows["odoo_connections"]["risk_class"] == "read"
    # The built-in policy names each of them exactly: the class adds no approval.
    assert rows["odoo_connections"]["decision"] == "allow"
    assert rows["odoo_disconnect"]["decision"] == "require_approval"


# An upstream that serves tool definitions verbatim from a JSON file (real ones, from the
# corpus) and records each call that reaches it, like tests/upstream_server.py.
VERBATIM_UPSTREAM = """
import json, sys
from pathlib import Path
import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

DEFINITIONS, STATE = Path(sys.argv[1]), Path(sys.argv[2])

async def list_tools(ctx, params):
    tools = json.loads(DEFINITIONS.read_text("utf-8"))
    return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

async def call_tool(ctx, params):
    state = json.loads(STATE.read_text("utf-8")) if STATE.exists() else {"calls": []}
    state["calls"].append({"tool": params.name, "arguments": params.arguments})
    STATE.write_text(json.dumps(state), "utf-8")
    return types.CallToolResult(content=[types.TextContent(type="text", text="done")])

async def main():
    server = Server("verbatim", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""

# The odoo-claude-mcp tools of the issue "Zero bypasses", with arguments that pass their schema.
UNDER_RATED_CALLS: dict[str, dict[str, Any]] = {
    "odoo_web_request": {"path": "/web/session/destroy", "method": "POST"},
    "open_connection_manager": {},
    "ai_invoice_plugins_reload": {"plugins_dir": "/tmp/plugins"},
    "odoo_stock_product_flip_to_storable": {
        "product_id": 1,
        "location_id": 8,
        "quantity": 5,
        "company_id": 1,
        "in_date": "2026-01-01",
    },
    "user_connection_add": {"alias": "prod", "url": "https://evil.example", "db": "x", "user": "y"},
    "odoo_translate_html": {
        "model": "blog.post",
        "res_id": 1,
        "field_name": "content",
        "mode": "replace",
        "translations": {"bg_BG": "<p>x</p>"},
    },
    "ai_invoice_extract": {"attachment_id": 7},
}


def verbatim_upstream(tmp_path: Path, names: list[str]) -> tuple[list[str], Path]:
    tools = {e["tool"]["name"]: e["tool"] for e in CORPUS["tools"] if e["server"] == "odoo-rpc-mcp"}
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps([tools[name] for name in names]), "utf-8")
    script = tmp_path / "verbatim_upstream.py"
    script.write_text(VERBATIM_UPSTREAM, "utf-8")
    state = tmp_path / "upstream-state.json"
    state.write_text(json.dumps({"calls": []}), "utf-8")
    return [sys.executable, str(script), str(definitions), str(state)], state


@pytest.mark.e2e  # a subprocess
@pytest.mark.anyio
async def test_under_rated_odoo_claude_tools_are_held_under_a_glob_policy(tmp_path: Path) -> None:
    """Real odoo-claude-mcp definitions behind the proxy, every tool allowed by a glob: those
    that run code, launch a program, make raw requests or replace a saved connection are held
    for approval; those that write back are held where the policy holds writes; reads run."""
    names = [*UNDER_RATED_CALLS, "ai_search_similar"]
    upstream, state = verbatim_upstream(tmp_path, names)
    globbed: dict[str, Any] = {
        "version": "1",
        "default": "deny",
        "rules": {glob: {"action": "allow"} for glob in ("odoo_*", "ai_*", "user_*", "open_*")},
    }
    pol = write_policy(tmp_path / "policy.json", globbed)
    args = proxy_args(tmp_path, pol, upstream=upstream, server_name="odoo-rpc")
    async with proxy_stdio_client(tmp_path, args) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == set(names)
        for name, arguments in UNDER_RATED_CALLS.items():
            result = await client.call_tool(name, arguments)
            risky = name not in ("odoo_translate_html", "ai_invoice_extract")
            status = (result.structured_content or {}).get("status")
            assert (status == "pending") is risky, (name, text_of(result))
        assert not (await client.call_tool("ai_search_similar", {"query": "x"})).is_error
    reached = [call["tool"] for call in upstream_calls(state)]
    assert reached == ["odoo_translate_html", "ai_invoice_extract", "ai_search_similar"]

    listing = json.loads(
        run_cli(
            tmp_path, "tools", "list", "--server", "odoo-rpc", "--json", "--policy", str(pol)
        ).stdout
    )
    classes = {row["tool"]: row["risk_class"] for row in listing}
    assert classes == {
        "odoo_web_request": "critical",
        "open_connection_manager": "critical",
        "ai_invoice_plugins_reload": "critical",
        "odoo_stock_product_flip_to_storable": "critical",
        "user_connection_add": "destructive",
        "odoo_translate_html": "write",
        "ai_invoice_extract": "write",
        "ai_search_similar": "read",
    }

    # A server whose writes need approval: the tools that write back are held too.
    write_policy(
        pol, {**globbed, "risk": {"require_approval": ["write", "destructive", "critical"]}}
    )
    async with proxy_stdio_client(tmp_path, args) as client:
        for name in ("odoo_translate_html", "ai_invoice_extract"):
            held = await client.call_tool(name, UNDER_RATED_CALLS[name])
            assert held.structured_content["status"] == "pending", text_of(held)
            assert "classified write" in text_of(held)
        assert not (await client.call_tool("ai_search_similar", {"query": "y"})).is_error
    reached = [call["tool"] for call in upstream_calls(state)]
    assert reached[3:] == ["ai_search_similar"]


if __name__ == "__main__":
    # The README's precision/recall table: python tests/test_catalog.py
    print("| class | labelled: precision | recall | tools | held out: precision | recall | tools |")
    print("|---|---|---|---|---|---|---|")
    labelled_table, held_out_table = per_class(CORPUS["tools"]), per_class(HOLDOUT["tools"])
    for risk in RISK_CLASSES:
        (p1, r1, n1), (p2, r2, n2) = labelled_table[risk], held_out_table[risk]
        print(f"| `{risk}` | {p1:.0%} | {r1:.0%} | {n1} | {p2:.0%} | {r2:.0%} | {n2} |")


# Tools that change a connection, however they are worded (attack 7, finding 02), and tools
# that do not (a record created on a connection, a test of one).
CONNECTION_CHANGES = [
    ("user_connection_add", "Add a connection for the current user."),
    ("odoo_connection_edit", "Edit an existing Odoo connection."),
    ("set_connection", "Set the Odoo connection for an alias."),
    ("connection_update", "Update a connection."),
    ("conn_register", "Register an Odoo instance."),
    ("upsertConnection", "Create or update a connection."),
    ("save_profile", "Save a connection for later use."),
    ("configure", "Configure the Odoo connection."),
    ("register_server", "Register a new connection to a server."),
    ("odoo_connect", "Connect to an Odoo instance."),
    ("reconnect", "Reconnect with other credentials."),
    ("user_connection_delete", "Delete a personal connection."),
    # attack 10, finding 06: a connection by another word
    ("odoo_login", "Log in to an Odoo server and remember it under an alias for later calls."),
    (
        "odoo_profile_save",
        "Save an Odoo profile (URL, database, credentials) under a name; an existing profile "
        "of that name is updated.",
    ),
    ("sign_in", "Sign in to a server."),
    ("keep_server", "Keep the server you give under a name for later calls."),
]
NOT_CONNECTION_CHANGES = [
    ("odoo_create", "Create a new record on the given connection."),
    ("odoo_search_read", "Search records through a connection."),
    ("test_connection", "Test whether a connection answers."),
    ("write_note", "Write a note."),
    ("account_move_create", "Create a journal entry."),
    ("odoo_create", "Create a partner under the given name."),
]


@pytest.mark.parametrize(("name", "description"), CONNECTION_CHANGES)
def test_connection_changes_are_recognised_whatever_their_wording(
    name: str, description: str
) -> None:
    tool = {"name": name, "description": description, "inputSchema": {"type": "object"}}
    assert changes_connection(tool)
    assert classify_definition(tool).risk_class != "read"


@pytest.mark.parametrize(("name", "description"), NOT_CONNECTION_CHANGES)
def test_tools_that_use_a_connection_do_not_change_it(name: str, description: str) -> None:
    assert not changes_connection({"name": name, "description": description})


def test_odoo_claude_connection_changes() -> None:
    """odoo-claude-mcp's tools (the corpus holds its definitions): exactly those that add,
    replace, activate or remove a connection are recognised (``odoo_disconnect`` among them: it
    takes an alias; the proxy leaves it to its own rule)."""
    tools = [
        e["tool"]
        for e in CORPUS["tools"]
        if e["source"]["repo"] == "rosenvladimirov/odoo-claude-mcp"
    ]
    found = {
        tool["name"]
        for tool in tools
        if classify_definition(tool).risk_class != "read" and changes_connection(tool)
    }
    assert found == {
        "identify",
        "odoo_cert_refresh",
        "odoo_connect",
        "odoo_disconnect",
        # logs in and keeps the session for the connection's later calls (attack 10)
        "odoo_web_login",
        # ends that session (outside round 22: a log-out verb ends what a log-in kept)
        "odoo_web_logout",
        "user_connection_activate",
        "user_connection_add",
        "user_connection_delete",
    }


# Attack 17, finding F4: a connection changed or removed in other words. An upstream tool
# that takes an ``alias`` (the key a connection is kept under) and does not only read acts on
# a saved connection, however it is named; so do re-logins and upserts of a server.
def _takes(*params: str) -> dict[str, Any]:
    return {"type": "object", "properties": {p: {"type": "string"} for p in params}}


CONNECTION_CHANGES_IN_OTHER_WORDS = [
    ("odoo_point", "Repoint an alias to a different URL.", _takes("alias", "url")),
    ("odoo_forget", "Forget an alias.", _takes("alias")),
    ("odoo_set_database", "Use another database.", _takes("alias", "db")),
    ("odoo_rotate_key", "Rotate the API key.", _takes("alias", "api_key")),
    ("odoo_relogin", "Log in again.", _takes("connection")),
    ("odoo_server_upsert", "Add or update an Odoo server.", _takes("name", "url")),
    ("register_odoo", "Register an Odoo instance; overwrites an existing one.", _takes("name")),
    # outside round 22: ended, repointed or switched in yet other words
    ("site_forget", "Forget a saved Odoo site.", _takes("name")),
    ("instance_retire", "Retire an instance.", _takes("name")),
    ("odoo_detach", "Detach.", _takes("name")),
    ("odoo_logout", "Log out of NAME.", _takes("name")),
    ("odoo_session_end", "End the session.", _takes("name")),
    ("odoo_rename", "Rename.", _takes("old", "new")),
    ("odoo_point", "Point a name at an address.", _takes("name", "address")),
    ("odoo_set", "Set a value.", _takes("key", "value")),
    ("odoo_use", "Use it from now on.", _takes("name")),
    ("env_switch", "Switch environment.", _takes("target")),
    ("odoo_target", "Target it.", _takes("name")),
    # outside round 24: a reset, a decommission, a connection by a short name, ...
    ("odoo_reset", "Reset.", _takes("name")),
    ("instance_decommission", "Decommission.", _takes("name")),
    ("odoo_cxn_remove", "Remove.", _takes("name")),
    ("odoo_teardown", "Tear it down.", _takes("name")),
    ("odoo_tear_down", "Tear it down.", _takes("name")),
    ("conn_destroy", "Destroy.", _takes("name")),
    ("conns_purge", "Purge.", _takes("names")),
    ("cx_wipe", "Wipe.", _takes("name")),
    ("odoo_revoke", "Revoke.", _takes("name")),
    ("odoo_drop", "Drop.", _takes("name")),
    ("odoo_nuke", "Nuke.", _takes()),
    ("odoo_dispose", "Dispose.", _takes("id")),
    ("site_terminate", "Terminate.", _takes("name")),
    ("odoo_close", "Close.", _takes("name")),
    ("odoo_link_remove", "Remove.", _takes("id")),
    ("account_revoke", "Revoke.", _takes("name")),
    ("profile_destroy", "Destroy.", _takes("name")),
    ("credentials_wipe", "Wipe.", _takes("name")),
    ("odoo_thing", "Decommission an Odoo instance.", _takes("x")),
    ("odoo_thing", "Tear down the connection.", _takes("x")),
]
# Not connection changes by their words: a namespace's end verb given more than a name (the
# proxy still judges any call naming a known connection as its change, at call time).
NOT_CONNECTION_CHANGES_IN_OTHER_WORDS = [
    ("git_reset", "Resets repository.", _takes("repo_path")),
    ("memory_delete", "Delete a memory file.", _takes("filename", "scope")),
    ("odoo_unlink", "Delete records from the database.", _takes("connection", "model", "ids")),
    ("odoo_do", "Do it.", _takes("name")),
]

# Outside round 25: a namespace and words that name no data and no reading, on a tool that
# takes nothing (or only a name) and does not only read, ended the upstream's connection.
ZERO_ARGUMENT_ENDINGS = (
    "odoo_bye",
    "odoo_clear",
    "odoo_close_all",
    "odoo_eject",
    "odoo_finish",
    "odoo_unlink_all",
    "odoo_unpair",
)
# Zero-argument tools that read what the upstream is: no connection change.
ZERO_ARGUMENT_READS = ("odoo_version", "odoo_ping", "odoo_status", "odoo_whoami", "odoo_help")


@pytest.mark.parametrize(("name", "description", "schema"), CONNECTION_CHANGES_IN_OTHER_WORDS)
def test_connection_changes_in_other_words_are_recognised(
    name: str, description: str, schema: dict[str, Any]
) -> None:
    tool = {"name": name, "description": description, "inputSchema": schema}
    assert changes_connection(tool)
    assert classify_definition(tool).risk_class != "read"


@pytest.mark.parametrize(("name", "description", "schema"), NOT_CONNECTION_CHANGES_IN_OTHER_WORDS)
def test_end_verbs_alone_do_not_make_a_connection_change(
    name: str, description: str, schema: dict[str, Any]
) -> None:
    assert not changes_connection({"name": name, "description": description, "inputSchema": schema})


def test_a_read_given_an_alias_is_not_a_connection_change() -> None:
    tool = {
        "name": "odoo_cert_info",
        "description": "Return the pinned certificate details.",
        "inputSchema": _takes("alias"),
    }
    assert classify_definition(tool).risk_class == "read" and not changes_connection(tool)


SETTINGS = {
    "type": "object",
    "properties": {p: {"type": "string"} for p in ("name", "url", "username", "password")},
}


def test_a_tool_that_takes_a_server_and_its_login_changes_a_connection() -> None:
    """Attack 10, finding 06: whatever its name and description, a tool that is given a
    server's address and a secret for it and does not only read is a connection
    change; a read tool given them is not; and odoo_login is never a read."""
    tool = {"name": "odoo_setup", "description": "Set things up.", "inputSchema": SETTINGS}
    assert changes_connection(tool)
    read = {"name": "odoo_search", "description": "Search records.", "inputSchema": SETTINGS}
    assert classify_definition(read).risk_class == "read" and not changes_connection(read)
    login = {"name": "odoo_login", "description": "Log in.", "inputSchema": SETTINGS}
    assert classify_definition(login).risk_class == "write"


@pytest.mark.parametrize("name", ZERO_ARGUMENT_ENDINGS)
@pytest.mark.parametrize("schema", [_takes(), {"type": "object"}, _takes("name")])
def test_a_namespace_and_a_bare_action_change_a_connection(
    name: str, schema: dict[str, Any]
) -> None:
    tool = {"name": name, "description": "", "inputSchema": schema}
    assert changes_connection(tool)
    assert classify_definition(tool).risk_class != "read"


@pytest.mark.parametrize("name", ZERO_ARGUMENT_READS)
def test_zero_argument_reads_are_no_connection_change(name: str) -> None:
    tool = {"name": name, "description": "", "inputSchema": _takes()}
    assert not changes_connection(tool)


# Outside round 26: a tool named by an end or farewell verb alone, given nothing or only a
# name for what it ends, ended the upstream's connection.
LONE_END_VERBS = ("disconnect", "reset", "quit", "bye", "exit", "logoff", "hangup", "remove")


@pytest.mark.parametrize("name", LONE_END_VERBS)
@pytest.mark.parametrize("schema", [_takes(), {"type": "object"}, _takes("alias")])
def test_a_lone_end_verb_given_nothing_ends_a_connection(name: str, schema: dict[str, Any]) -> None:
    tool = {"name": name, "description": "", "inputSchema": schema}
    assert changes_connection(tool)
    assert classify_definition(tool).risk_class != "read"


@pytest.mark.parametrize(
    ("name", "schema"),
    [("delete", _takes("key")), ("remove", _takes("path")), ("clear", _takes("model"))],
)
def test_a_lone_end_verb_given_what_it_ends_is_no_connection_change(
    name: str, schema: dict[str, Any]
) -> None:
    assert not changes_connection({"name": name, "description": "", "inputSchema": schema})


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("odoo_cache_clear", "Clear the cache."),
        ("odoo_records_unlink_all", "Delete all records."),
        ("proxy_refresh", "Re-discover tools."),
        ("odoo_do", "Do it."),
    ],
)
def test_a_bare_action_needs_no_arguments_and_no_data_named(name: str, description: str) -> None:
    """Data named, a refresh, or an unknown verb given a name: the zero-argument rule does not
    apply (the proxy still judges a call naming a known connection at call time)."""
    schema = _takes("name") if name == "odoo_do" else _takes()
    assert not changes_connection({"name": name, "description": description, "inputSchema": schema})


def test_the_real_corpora_keep_their_connection_tools() -> None:
    """Over both corpora, the connection tools are exactly these (the zero-argument rule adds
    none: ``proxy_refresh``, ``open_connection_manager``, ``google_gmail_labels`` stay out)."""
    found = {
        (e["server"], e["tool"]["name"])
        for e in [*CORPUS["tools"], *HOLDOUT["tools"]]
        if changes_connection(e["tool"])
    }
    assert found == {
        ("mysql", "execute_sql"),
        ("odoo-claude-mcp", "odoo_connect"),
        ("odoo-claude-mcp", "odoo_disconnect"),
        ("odoo-rpc-mcp", "identify"),
        ("odoo-rpc-mcp", "odoo_cert_refresh"),
        ("odoo-rpc-mcp", "odoo_web_login"),
        ("odoo-rpc-mcp", "odoo_web_logout"),
        ("odoo-rpc-mcp", "user_connection_activate"),
        ("odoo-rpc-mcp", "user_connection_add"),
        ("odoo-rpc-mcp", "user_connection_delete"),
    }, found
