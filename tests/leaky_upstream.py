#!/usr/bin/env python3
"""A careless raw-JSON-RPC stdio upstream (outside tester, round 17): it quotes the credential
the operator gave it (ODOO_API_KEY in its environment) and the password it was forwarded in
odoo_connect, in its results, its errors and on its stderr; it writes secrets in common
shapes (argv[1], the secret) in a tool's title, icons, result and a JSON-RPC error; at start
it writes a stderr line longer than the proxy's line limit, cut right after "password".
Round 18: ``env_read`` quotes the values of the environment variables named in ``q`` (a
comma-separated list) in its result and on its stderr, ``env_fail`` in a JSON-RPC error;
``scatter_read`` quotes the value of the one named in ``q`` spaced out (one separator between
each character: a space, "-", ".", "_", ",", a zero-width space, a newline) and cut in two
halves shown in two content blocks; ``deep_read`` quotes it nested 80 levels deep in its
structured content and in its text (as JSON). With a second argument, the name of an environment
variable, it also lists two tools whose names hold that variable's value: a bad name, and
``get_<value>``.
Round 21: ``encoded_read`` quotes the value of the one named in ``q`` in base64 wrapped at 76
columns (``\n``) and at 64 (``\r\n``), as Node's Buffer JSON and as a plain list of byte values
(in text blocks and in its structured content; the wrapped form on its stderr too), beside a
wrapped base64 block and lists of numbers that hold no secret."""

import base64
import json
import os
import sys

S = sys.argv[1]
KEY = os.environ.get("ODOO_API_KEY", "")
SHAPES = [
    f"export DBPASS={S}",
    f"the password is {S}",
    f"password\u3000{S}",
    f"secret:\n  value: {S}",
    f'<input type=password value="{S}">',
    f"AccountKey={S}==;",
    f"xoxb-123456789012-1234567890123-{S}AbCd",
    f"glpat-{S}abcdefgh12",
    f"AIzaSyA{S}abcdefghijklmnopqrs",
    f"SG.{S}abc.{S}defghijk",
    "Basic " + base64.b64encode(f"admin:{S}".encode()).decode(),
]
STRING = {"type": "object", "properties": {k: {"type": "string"} for k in ("q",)}}
CONNECT = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("alias", "url", "db", "username", "password")},
}
TOOLS = [
    {
        "name": "odoo_connections",
        "description": "List configured Odoo connections.",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "odoo_connect",
        "description": "Add/update an Odoo connection.",
        "inputSchema": CONNECT,
    },
    {
        "name": "notes_read",
        "description": "Read a note.",
        "inputSchema": STRING,
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "leaky_read",
        "description": "Read a note.",
        "inputSchema": STRING,
        "annotations": {"readOnlyHint": True},
        "title": f"Reader (login admin, the password is {S})",
        "icons": [{"src": "data:text/plain;base64," + base64.b64encode(b"password=").decode() + S}],
    },
    *(
        {
            "name": name,
            "description": "Read the environment.",
            "inputSchema": STRING,
            "annotations": {"readOnlyHint": True},
        }
        for name in (
            "env_read",
            "env_fail",
            "scatter_read",
            "deep_read",
            "encoded_read",
            "spread_read",
        )
    ),
    {
        "name": "failing_read",
        "description": "Read a note.",
        "inputSchema": STRING,
        "annotations": {"readOnlyHint": True},
    },
]
if len(sys.argv) > 2:
    TOOLS.append({"name": f"bad name {os.environ.get(sys.argv[2], '')}", "inputSchema": STRING})
    # and one whose name is good, holding it too (outside round 20, F1)
    TOOLS.append({"name": f"get_{os.environ.get(sys.argv[2], '')}", "inputSchema": STRING})
sys.stderr.write("A" * (65536 - len("password")) + "password" + "=" + S + "-boundary\n")
sys.stderr.flush()


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


# Spread out with runs of two or three spacers (outside round 24): by spread_read, on its
# result and its stderr, the value of the environment variable named in ``q``, or with
# ``q`` "@forwarded" the password the last odoo_connect was given.
SPREAD = (", ", "\r\n", " | ", " ,\t")
FORWARDED = [""]

for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    method, mid = m.get("method"), m.get("id")
    if method == "initialize":
        send(
            {
                "jsonrpc": "2.0",
                "id": mid,
                "result": {
                    "protocolVersion": m["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "leaky", "version": "1"},
                },
            }
        )
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        name, args = m["params"]["name"], m["params"].get("arguments") or {}
        if name == "failing_read":
            send(
                {
                    "jsonrpc": "2.0",
                    "id": mid,
                    "error": {
                        "code": -32000,
                        "message": f"login failed: the password is {S}; export DBPASS={S}",
                    },
                }
            )
            continue
        if name == "deep_read":
            nested = {"value": os.environ.get(str(args.get("q", "")), "")}
            for _ in range(80):
                nested = {"level": nested}
            content = [{"type": "text", "text": json.dumps(nested)}]
            result = {"content": content, "structuredContent": nested}
            send({"jsonrpc": "2.0", "id": mid, "result": result})
            continue
        if name == "encoded_read":
            raw = os.environ.get(str(args.get("q", "")), "").encode()
            b64 = base64.b64encode(b"password: " + raw).decode()
            wrapped76 = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
            wrapped64 = "\r\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
            plain64 = base64.b64encode(bytes(range(48, 123)) * 2).decode()
            plain = "\n".join(plain64[i : i + 76] for i in range(0, len(plain64), 76))
            node = {"type": "Buffer", "data": list(raw)}
            sys.stderr.write(f"dump:\n{wrapped76}\nend of dump\n")
            sys.stderr.flush()
            blocks = [
                f"-----BEGIN DATA-----\n{wrapped76}\n-----END DATA-----",
                f"body:\r\n{wrapped64}\r\n",
                json.dumps({"password": "x", "buf": node}),
                json.dumps(list(raw)),
                f"plain:\n{plain}",
                "prices: [10, 20, 30, 40, 250]",
            ]
            structured = {
                "pem": wrapped76,
                "crlf": wrapped64,
                "buffer": node,
                "bytes": list(raw),
                "plain": plain,
                "numbers": [10, 20, 30, 40, 250],
            }
            content = [{"type": "text", "text": block} for block in blocks]
            result = {"content": content, "structuredContent": structured}
            send({"jsonrpc": "2.0", "id": mid, "result": result})
            continue
        if name == "spread_read":
            q = str(args.get("q", ""))
            value = FORWARDED[0] if q == "@forwarded" else os.environ.get(q, "")
            spread = [sep.join(value) for sep in SPREAD]
            sys.stderr.write("".join(f"spread: {form} (end)\n" for form in spread))
            sys.stderr.write("one per line:\r\n" + "\r\n".join(value) + "\r\nend of lines\n")
            sys.stderr.flush()
            content = [{"type": "text", "text": f"spread: {form} (end)"} for form in spread]
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": content}})
            continue
        if name in ("env_read", "env_fail", "scatter_read"):
            names = [n for n in str(args.get("q", "")).split(",") if n]
            quoted = "; ".join(f"{n}={os.environ.get(n, '')}" for n in names)
            if name == "env_fail":
                error = {"code": -32000, "message": f"upstream refused: {quoted}"}
                send({"jsonrpc": "2.0", "id": mid, "error": error})
                continue
            if name == "env_read":
                sys.stderr.write(f"using {quoted}\n")
                sys.stderr.flush()
                blocks = [f"configured with {quoted}"]
            else:
                value = os.environ.get(names[0], "")
                half = len(value) // 2
                spaced = [sep.join(value) for sep in (" ", "-", ".", "_", ",", "\u200b", "\n")]
                blocks = [
                    "spaced: " + " | ".join(spaced),
                    f"first part {value[:half]} (see below)",
                    f"and the rest: {value[half:]}.",
                ]
            content = [{"type": "text", "text": block} for block in blocks]
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": content}})
            continue
        if name == "odoo_connect":
            pw = args.get("password", "")
            FORWARDED[0] = pw
            sys.stderr.write(f"connecting {args.get('username')} using {pw}\n")
            text = json.dumps(
                {
                    "note": f"authenticated {args.get('username')} with {pw}",
                    "login_hint": f"{args.get('username')}/{pw}",
                }
            )
        elif name == "notes_read":
            sys.stderr.write(f"auth failed with {KEY}\n")
            text = f"Odoo refused the key {KEY} for user admin"
        elif name == "leaky_read":
            text = "\n".join(SHAPES)
        else:
            text = "[]"
        sys.stderr.flush()
        send(
            {
                "jsonrpc": "2.0",
                "id": mid,
                "result": {
                    "content": [{"type": "text", "text": text}],
                    "isError": name == "notes_read",
                },
            }
        )
    elif mid is not None and method:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
