"""Odoo data tools on a configured connection: search_read, read, fields_get, create, write,
unlink. Each runs as the connection's own Odoo user, so Odoo's ACLs and record rules apply;
the guard's policy decides beforehand whether the call may run at all."""

from __future__ import annotations

import hashlib
import logging
import threading
import traceback
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from odoo_mcp_guard.odoo_rpc import OdooClient, OdooConfig, OdooError, ProtocolSetting
from odoo_mcp_guard.policy_core import redact_known, redact_known_text
from odoo_mcp_guard.store import Connection

# The connection record's protocol -> the client's. Odoo's /jsonrpc is the same service as
# /xmlrpc/2 (both deprecated on 19): such connections are spoken to over XML-RPC.
WIRE_OF: dict[str, ProtocolSetting] = {"json2": "json2", "xmlrpc": "xmlrpc", "jsonrpc": "xmlrpc"}
MODEL_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
MAX_LIMIT = 2000

log = logging.getLogger(__name__)


class DataToolError(Exception):
    """A data call that could not be done; the message is safe for an agent."""


class _DataArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    alias: str | None = Field(
        default=None,
        description="Connection alias; may be omitted when exactly one connection exists",
    )
    model: str = Field(pattern=MODEL_PATTERN, max_length=128, description="e.g. res.partner")


class SearchReadArgs(_DataArgs):
    domain: list[Any] = Field(
        default_factory=list, description='Odoo domain, e.g. [["is_company", "=", true]]'
    )
    fields: list[str] = Field(default_factory=list, description="Fields to return (all if empty)")
    limit: int = Field(default=80, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)
    order: str | None = Field(default=None, max_length=256, description='e.g. "name asc"')


class ReadArgs(_DataArgs):
    ids: list[int] = Field(min_length=1, max_length=MAX_LIMIT)
    fields: list[str] = Field(default_factory=list)


class FieldsGetArgs(_DataArgs):
    attributes: list[str] = Field(
        default_factory=lambda: ["string", "type", "required", "readonly", "relation"]
    )


class CreateArgs(_DataArgs):
    values: dict[str, Any] = Field(description="Field values of the new record")


class WriteArgs(_DataArgs):
    ids: list[int] = Field(min_length=1, max_length=MAX_LIMIT)
    values: dict[str, Any]


class UnlinkArgs(_DataArgs):
    ids: list[int] = Field(min_length=1, max_length=MAX_LIMIT)


# name -> (arguments model, description, read only?)
DATA_TOOLS: dict[str, tuple[type[_DataArgs], str, bool]] = {
    "odoo_search_read": (SearchReadArgs, "Search records of an Odoo model and read fields.", True),
    "odoo_read": (ReadArgs, "Read records of an Odoo model by id.", True),
    "odoo_fields_get": (FieldsGetArgs, "Describe the fields of an Odoo model.", True),
    "odoo_create": (CreateArgs, "Create a record in an Odoo model.", False),
    "odoo_write": (WriteArgs, "Update records of an Odoo model.", False),
    "odoo_unlink": (UnlinkArgs, "Delete records of an Odoo model. Cannot be undone.", False),
}


class DataTools:
    """Runs data tools; keeps one RPC client per connection (and credentials)."""

    def __init__(self) -> None:
        self._clients: dict[str, OdooClient] = {}
        self._lock = threading.Lock()

    def _client(self, conn: Connection) -> OdooClient:
        secret = conn.api_key or conn.password or ""
        key = hashlib.sha256(
            "\0".join(
                (conn.alias, conn.url, conn.db, conn.username, conn.protocol, secret)
            ).encode()
        ).hexdigest()
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = OdooConfig(
                    url=conn.url,
                    db=conn.db,
                    username=conn.username,
                    api_key=conn.api_key,
                    password=conn.password,
                    verify_ssl=conn.verify_ssl,
                    protocol=WIRE_OF[conn.protocol],
                )
                client = self._clients[key] = OdooClient(config)
        return client

    @staticmethod
    def pick(connections: list[Connection], alias: str | None) -> Connection:
        if alias is not None:
            for conn in connections:
                if conn.alias == alias:
                    return conn
            raise DataToolError(f"There is no connection named '{alias}'.")
        if len(connections) == 1:
            return connections[0]
        names = ", ".join(c.alias for c in connections) or "none"
        raise DataToolError(f"Name the connection with 'alias' (configured: {names}).")

    def run(self, tool: str, args: _DataArgs, conn: Connection) -> dict[str, Any]:
        """Blocking: call from a worker thread. What Odoo returns passes the one redaction
        rule: a connection whose Odoo user may read secrets (another connection's password,
        api_key, a URL with credentials) must not hand them to the agent. The connection's
        own password and API key are hidden by value too, in the result, in an error (an
        Odoo may quote the credential it refused) and in the log."""
        secrets = (conn.password, conn.api_key)
        try:
            result: dict[str, Any] = redact_known(
                self._run(tool, args, conn), secrets, conn.username
            )
        except DataToolError as exc:
            raise DataToolError(redact_known_text(str(exc), secrets, conn.username)) from None
        except Exception as exc:
            # a fault of the guard's own: the traceback logged, the secrets hidden in it too
            log.error("%s", redact_known_text(traceback.format_exc(), secrets, conn.username))
            name = type(exc).__name__
            raise DataToolError(
                f"{tool} on Odoo '{conn.alias}' failed inside the guard ({name}, logged)"
            ) from None
        return result

    def _run(self, tool: str, args: _DataArgs, conn: Connection) -> dict[str, Any]:
        client = self._client(conn)
        model = args.model
        try:
            if isinstance(args, SearchReadArgs):
                kwargs: dict[str, Any] = {
                    "fields": args.fields,
                    "limit": args.limit,
                    "offset": args.offset,
                }
                if args.order:
                    kwargs["order"] = args.order
                records = _records(
                    tool,
                    "search_read",
                    client.call(model, "search_read", domain=args.domain, **kwargs),
                )
                return {"model": model, "records": records, "count": len(records)}
            if isinstance(args, ReadArgs):
                records = _records(
                    tool, "read", client.call(model, "read", ids=args.ids, fields=args.fields)
                )
                missing = sorted(set(args.ids) - {r["id"] for r in records})
                return {"model": model, "records": records, "missing_ids": missing}
            if isinstance(args, FieldsGetArgs):
                fields = client.call(model, "fields_get", attributes=args.attributes)
                if not isinstance(fields, dict):
                    raise _unexpected(tool, "fields_get", "an object of fields", fields)
                return {"model": model, "fields": fields}
            if isinstance(args, CreateArgs):
                new_id = _created_id(tool, client.call(model, "create", vals_list=[args.values]))
                return {"model": model, "id": new_id}
            if isinstance(args, WriteArgs):
                client.call(model, "write", ids=args.ids, vals=args.values)
                return {"model": model, "ids": args.ids, "updated": True}
            if isinstance(args, UnlinkArgs):
                client.call(model, "unlink", ids=args.ids)
                return {"model": model, "ids": args.ids, "deleted": True}
        except OdooError as exc:
            raise DataToolError(_explain(exc, tool, conn)) from None
        raise DataToolError(f"{tool} is not a data tool")


def _shape(value: Any) -> str:
    """What an answer is, in a few words (never its content: it may hold anything)."""
    if isinstance(value, bool) or value is None:
        return repr(value).lower() if value is not None else "null"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return {int: "a number", float: "a number", str: "a string", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _unexpected(tool: str, method: str, wanted: str, answer: Any, after: str = "") -> DataToolError:
    return DataToolError(
        f"{tool}: Odoo answered {method} with an unexpected shape ({_shape(answer)}; "
        f"expected {wanted}){after}"
    )


def _records(tool: str, method: str, answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(
        isinstance(record, dict) and isinstance(record.get("id"), int) for record in answer
    ):
        raise _unexpected(tool, method, "a list of records, each with its id", answer)
    return answer


def _created_id(tool: str, answer: Any) -> int:
    """The new record's id: Odoo answers ``create`` of one dict with a bare id, of a list of
    dicts with a list of ids (depending on the series and the protocol)."""
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise _unexpected(
            tool, "create", "the new record's id", answer, "; the record may have been created"
        )
    return answer


def _explain(exc: OdooError, tool: str, conn: Connection) -> str:
    where = f"Odoo '{conn.alias}'"
    if exc.kind == "access":
        return f"{where} refused {tool} (AccessError): {exc.message}"
    if exc.kind == "auth":
        return f"{where} refused the connection's credentials: {exc.message}"
    if exc.kind == "database":
        return f"{where}: {exc.message}"
    if exc.kind == "unreachable":
        return f"{where} cannot be reached: {exc.message}"
    if exc.kind == "user":
        return f"{where} refused {tool}: {exc.message}"
    return f"{where} failed on {tool}: {exc.message}"
