"""An MCP upstream over stdio speaking raw JSON-RPC (attack 15) that answers every
``tools/call`` with one line the SDK cannot parse; its one tool is ``get_note``.

    python tests/malformed_upstream.py MODE

MODE: surrogate (a lone surrogate escape, with a password beside it), deep (5,000 nested
arrays), deep_meta (3,000 nested objects in a ``_meta``), bigint (a 5,000-digit number),
no_id (an unparseable line with no top-level id: nothing to answer it for), noise (a line
of plain text on stdout, then the right answer), server_error (a well-formed JSON-RPC error
with code -32000, the code the SDK also gives a closed session); object_id and missing_id
(attack 17: a call whose arguments say ``"bad": true`` is answered with a well-formed line
whose id is an object, or that has no id; any other call with "note <pid>", so that a test
sees the same upstream process answer on); invalid_result (outside round 23: a well-formed
answer that is not a tools/call result, a secret in it); invalid_listing (a tools/list answer
that is not one).
"""

from __future__ import annotations

import json
import os
import sys

MODE = sys.argv[1]
SECRET = "Zq9secretX"
TOOLS = [
    {
        "name": "get_note",
        "description": "Return a stored note.",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    }
]


def unparseable(rid: object) -> str:
    head = '{"jsonrpc":"2.0","id":' + json.dumps(rid) + ',"result":{"content":[{"type":"text",'
    secret = '"structuredContent":{"password":"' + SECRET + '"'
    if MODE == "surrogate":
        return head + '"text":"\\ud800"}],' + secret + "}}}"
    if MODE == "deep":
        return head + '"text":"x"}],' + secret + ',"a":' + "[" * 5000 + "1" + "]" * 5000 + "}}}"
    if MODE == "deep_meta":
        nested = '{"a":' * 3000 + "1" + "}" * 3000
        return head + '"text":"x","_meta":' + nested + "}]," + secret + "}}}"
    if MODE == "bigint":
        return head + '"text":"x"}],' + secret + ',"n":' + "9" * 5000 + "}}}"
    if MODE == "no_id":
        return '{"jsonrpc":"2.0","result":{"password":"' + SECRET + '","x":"\\ud800"}}'
    raise SystemExit(f"unknown mode {MODE}")


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    method, rid = message.get("method"), message.get("id")
    if rid is None:
        continue
    if method == "initialize":
        answer = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "malformed", "version": "1"},
        }
    elif method == "tools/list" and MODE == "invalid_listing":
        answer = {"tools": [{**TOOLS[0], "description": 7}]}  # no ListToolsResult (round 23)
    elif method == "tools/list":
        answer = {"tools": TOOLS}
    elif method == "tools/call" and MODE in ("object_id", "missing_id"):
        if message["params"].get("arguments", {}).get("bad"):
            answer = {"content": [{"type": "text", "text": "lost"}]}
            bad = {"jsonrpc": "2.0", "id": {"x": rid}, "result": answer}
            if MODE == "missing_id":
                del bad["id"]
            sys.stdout.write(json.dumps(bad) + "\n")
            sys.stdout.flush()
            continue
        answer = {"content": [{"type": "text", "text": f"note {os.getpid()}"}]}
    elif method == "tools/call" and MODE == "noise":
        sys.stdout.write(f"debug: password={SECRET}\n")
        answer = {"content": [{"type": "text", "text": "note"}]}
    elif method == "tools/call" and MODE == "invalid_result":
        # well-formed JSON-RPC, but no tools/call result: structuredContent a list (round 23)
        answer = {"content": [{"type": "text", "text": "x"}], "structuredContent": [SECRET]}
    elif method == "tools/call" and MODE == "server_error":
        error = {"code": -32000, "message": f"boom password={SECRET}"}
        send({"jsonrpc": "2.0", "id": rid, "error": error})
        continue
    elif method == "tools/call":
        sys.stdout.write(unparseable(rid) + "\n")
        sys.stdout.flush()
        continue
    else:
        answer = {}
    send({"jsonrpc": "2.0", "id": rid, "result": answer})
