"""A fake Odoo speaking XML-RPC (``/xmlrpc/2/common`` and ``/xmlrpc/2/object``), run as its own
process by tests that need Odoo to answer something a real one would not (or would only
rarely): it prints its port on stdout, then serves until killed.

``authenticate`` answers 2 for any login. ``execute_kw`` answers, per method, what
``--answer METHOD=JSON`` says (``create`` defaults to a bare id, as Odoo answers a single
dict), or with ``--echo-secret`` raises ``Fault("wrong credential <the secret it got>")``:
an Odoo, or a proxy in front of one, that quotes the credential it refused. With
``--echo-secret-as FORM`` the fault quotes it HTML-escaped (``html``), as a Python repr
(``repr``), in base64 (``base64``, ``base64url``: unpadded URL-safe) or as HTTP Basic
credentials (``basic``: base64 of ``login:secret``); ``FORM=record`` answers a search_read
whose record's field quotes it HTML-escaped and as a repr. ``--echo-encoded ENCODING`` quotes
it encoded otherwise (hex, base32 inside a longer text, every byte as %XX, every character as
&#NN;, reversed, upper-cased: see ``ENCODINGS``), in a record's field (``--echo-in record``) or
in a fault (``--echo-in fault``)."""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
import xmlrpc.client
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

ENCODINGS = {
    "hex": lambda s: s.encode().hex(),
    "base32-offset": lambda s: base64.b32encode(b"id=" + s.encode() + b";").decode(),
    "percent-all": lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    "html-decimal": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "reversed": lambda s: s[::-1],
    "upper": lambda s: s.upper(),
}


class _Paths(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", action="append", default=[], metavar="METHOD=JSON")
    parser.add_argument("--echo-secret", action="store_true")
    parser.add_argument(
        "--echo-secret-as", choices=["html", "repr", "base64", "base64url", "basic", "record"]
    )
    parser.add_argument("--echo-encoded", choices=sorted(ENCODINGS))
    parser.add_argument("--echo-in", choices=["record", "fault"], default="record")
    options = parser.parse_args()
    answers: dict[str, Any] = {"create": 7, "search_read": []}
    for item in options.answer:
        method, _, value = item.partition("=")
        answers[method] = json.loads(value)

    logins: dict[str, str] = {}

    def authenticate(db: str, login: str, secret: str, env: dict[str, Any]) -> int:
        logins[secret] = login
        return 2

    def form(secret: str) -> str:
        login = logins.get(secret, "")
        return {
            "html": html.escape(secret),
            "repr": repr(secret),
            "base64": base64.b64encode(secret.encode()).decode(),
            "base64url": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
            "basic": "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode(),
        }[options.echo_secret_as]

    def version() -> dict[str, Any]:
        return {"server_version": "18.0", "server_version_info": [18, 0, 0, "final", 0, ""]}

    def execute_kw(db: str, uid: int, secret: str, model: str, method: str, *rest: Any) -> Any:
        if options.echo_secret:
            raise xmlrpc.client.Fault(1, f"wrong credential {secret}")
        if options.echo_encoded:
            leaked = ENCODINGS[options.echo_encoded](secret)
            if options.echo_in == "fault":
                raise xmlrpc.client.Fault(1, f"Access denied with credential {leaked}")
            return [{"id": 1, "name": "x", "comment": f"creds {leaked} end"}]
        if options.echo_secret_as == "record":
            quoted = f"creds {html.escape(secret)} / {secret!r}"
            return [{"id": 1, "name": "x", "comment": quoted}]
        if options.echo_secret_as:
            raise xmlrpc.client.Fault(1, f"Access denied with credential {form(secret)}")
        return answers.get(method, True)

    server = SimpleXMLRPCServer(
        ("127.0.0.1", 0), requestHandler=_Paths, allow_none=True, logRequests=False
    )
    server.register_function(authenticate)
    server.register_function(version)
    server.register_function(execute_kw)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
    sys.exit(0)
