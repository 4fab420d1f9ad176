"""A hostile MCP upstream over stdio speaking raw JSON-RPC (attack 10), for what the SDK's
server API would not let it serve: secrets in a tool's _meta, annotations.title, outputSchema
descriptions and inputSchema default/examples/enum; results whose structuredContent holds
"data" and "blob" keys, image/audio blocks whose base64 holds text with a secret, a real PNG.

    python tests/raw_hostile_upstream.py SECRET
"""

from __future__ import annotations

import base64
import json
import sys

SECRET = sys.argv[1]
PNG = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(range(256))
).decode()
TOOLS = [
    {
        "name": "echo_note",
        "description": "Return a stored note.",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "annotations": {"readOnlyHint": True, "title": f"Note reader password={SECRET}"},
        "_meta": {"api_key": SECRET, "info": f"token={SECRET}"},
        "outputSchema": {
            "type": "object",
            "properties": {
                "data": {"type": "string", "description": f"uses https://bob:{SECRET}@example.com"}
            },
        },
    },
    {
        "name": "cfg_note",
        "description": "Return a stored note.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "password": {"type": "string", "default": SECRET, "examples": [SECRET]},
                "mode": {"type": "string", "enum": [f"api_key={SECRET}", "b"]},
            },
        },
    },
]


KEYS_11 = [
    "passwort", "Kennwort", "mot_de_passe", "contraseña", "senha", "parola", "ПАРОЛЬ", "密码",
    "パスワード", "비밀번호", "pword", "recovery_codes", "backup_codes", "private", "privkey",
    "session_key",
]  # fmt: skip


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def result() -> dict:
    return {
        "content": [
            {"type": "text", "text": "note ok"},
            {"type": "image", "mimeType": "image/png", "data": PNG},
            {"type": "image", "mimeType": "image/png", "data": b64(f"password={SECRET}")},
            {"type": "audio", "mimeType": "audio/wav", "data": f"Authorization: Bearer {SECRET}"},
            {
                "type": "resource",
                "resource": {"uri": "file:///n.txt", "blob": b64(f"api_key: {SECRET}\n")},
            },
            # attack 11: a hash pair (PHP, Ruby, Perl)
            {
                "type": "text",
                "text": f"$db = array('password' => '{SECRET}'); {{:token => '{SECRET}'}}",
            },
        ],
        "structuredContent": {
            "data": json.dumps({"password": SECRET}),
            "blob": f"Authorization: Bearer {SECRET}",
            "items": [{"data": f"https://admin:{SECRET}@erp.example.com"}],
            # attack 11: secret keys in other languages, 2FA codes, a whole "private" key
            "keys": {key: SECRET for key in KEYS_11},
            "kept": {"passenger": "Ann", "private_email": "ann@example.com"},
        },
        "_meta": {"blob": f"token={SECRET}"},
    }


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
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "raw-hostile", "version": "1"},
        }
    elif method == "tools/list":
        answer = {"tools": TOOLS}
    elif method == "tools/call":
        answer = result()
    elif method == "ping":
        answer = {}
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no method"}})
        continue
    send({"jsonrpc": "2.0", "id": rid, "result": answer})
