"""A small Odoo RPC client (XML-RPC, ``/xmlrpc/2``) with Odoo's faults turned into clear errors.

The standard library's ``xmlrpc.client`` is enough: Odoo 14-18 all serve it, it keeps one HTTP
connection alive per client, it needs no dependency, and its faults carry Odoo's exception class
in a stable numeric code (2 user error, 3 access denied, 4 access error). odoorpc would add a
dependency and JSON-RPC session handling that an API-key client does not need.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import tomllib
import xmlrpc.client
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from odoo_mcp_guard.policy_core import redact_text

# Odoo's fault codes on /xmlrpc/2 (odoo/addons/base/controllers/rpc.py); any other is
# an application error.
FAULT_USER_ERROR = 2
FAULT_ACCESS_DENIED = 3
FAULT_ACCESS_ERROR = 4

ErrorKind = Literal["unreachable", "auth", "access", "user", "application", "protocol"]


class OdooError(Exception):
    """An RPC call that failed; ``message`` is safe to show to an agent (no traceback, no
    URL credentials: it may quote the configured URL)."""

    def __init__(self, kind: ErrorKind, message: str):
        message = redact_text(message)
        super().__init__(message)
        self.kind = kind
        self.message = message


class OdooConfig(BaseModel):
    """Where the front-end reaches Odoo, named as odoo-claude-mcp names it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, pattern=r"^https?://")
    db: str = Field(min_length=1)
    username: str = Field(min_length=1)
    api_key: SecretStr | None = None
    password: SecretStr | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)
    verify_ssl: bool = True

    @property
    def secret(self) -> str:
        chosen = self.api_key or self.password
        if chosen is None:
            raise OdooError("auth", "no ODOO_API_KEY or ODOO_PASSWORD is configured")
        return chosen.get_secret_value()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OdooConfig | None:
        """From ODOO_URL, ODOO_DB, ODOO_USERNAME, ODOO_API_KEY / ODOO_PASSWORD; None without URL."""
        env = dict(os.environ if env is None else env)
        if not env.get("ODOO_URL"):
            return None
        values: dict[str, Any] = {
            "url": env["ODOO_URL"],
            "db": env.get("ODOO_DB", ""),
            "username": env.get("ODOO_USERNAME", ""),
            "api_key": env.get("ODOO_API_KEY") or None,
            "password": env.get("ODOO_PASSWORD") or None,
        }
        if env.get("ODOO_TIMEOUT"):
            values["timeout"] = env["ODOO_TIMEOUT"]
        return cls._validated(values, "environment (ODOO_*)")

    @classmethod
    def from_file(cls, path: Path) -> OdooConfig:
        """A TOML or JSON file with the same keys in lower case (url, db, username, api_key...)."""
        try:
            raw = path.read_bytes()
            if path.suffix == ".json":
                import json

                data = json.loads(raw)
            else:
                data = tomllib.loads(raw.decode("utf-8"))
        except OSError as exc:
            raise OdooError("protocol", f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise OdooError("protocol", f"{path}: not valid TOML/JSON: {exc}") from None
        section = data.get("odoo", data) if isinstance(data, dict) else data
        if not isinstance(section, dict):
            raise OdooError("protocol", f"{path}: expected a table of settings")
        return cls._validated(
            {k.lower().removeprefix("odoo_"): v for k, v in section.items()}, str(path)
        )

    @classmethod
    def _validated(cls, values: dict[str, Any], source: str) -> OdooConfig:
        try:
            config = cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise OdooError("protocol", f"{source}: {where}: {first['msg']}") from None
        if config.api_key is None and config.password is None:
            raise OdooError("protocol", f"{source}: set an API key (ODOO_API_KEY) or a password")
        return config


class _Transport(xmlrpc.client.SafeTransport):
    """Keeps one connection alive, with a timeout, over http or https."""

    def __init__(self, scheme: str, timeout: float, verify_ssl: bool):
        context = None
        if scheme == "https" and not verify_ssl:
            context = ssl._create_unverified_context()  # the operator asked for it explicitly
        super().__init__(context=context)
        self._scheme = scheme
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _x509 = self.get_host_info(host)
        if self._scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                chost, timeout=self._timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(chost, timeout=self._timeout)
        self._connection = host, conn
        return conn


def _fault_message(fault: xmlrpc.client.Fault) -> str:
    text = str(fault.faultString or "").strip()
    # Application errors carry a server traceback: keep only its last line, the exception.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = lines[-1] if lines else "Odoo reported an error"
    return message[:500]


class OdooClient:
    """One authenticated user on one Odoo database. Thread-safe (calls are serialised)."""

    def __init__(self, config: OdooConfig):
        self.config = config
        base = config.url.rstrip("/")
        scheme = base.split(":", 1)[0]
        self._common = xmlrpc.client.ServerProxy(
            f"{base}/xmlrpc/2/common",
            allow_none=True,
            transport=_Transport(scheme, config.timeout, config.verify_ssl),
        )
        self._object = xmlrpc.client.ServerProxy(
            f"{base}/xmlrpc/2/object",
            allow_none=True,
            transport=_Transport(scheme, config.timeout, config.verify_ssl),
        )
        self._lock = threading.Lock()
        self._uid: int | None = None

    def _guarded(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except xmlrpc.client.Fault as fault:
            code = fault.faultCode
            if code == FAULT_ACCESS_ERROR:
                raise OdooError("access", _fault_message(fault)) from None
            if code == FAULT_ACCESS_DENIED:
                raise OdooError("auth", "Odoo refused the credentials (access denied)") from None
            if code == FAULT_USER_ERROR:
                raise OdooError("user", _fault_message(fault)) from None
            raise OdooError("application", _fault_message(fault)) from None
        except xmlrpc.client.ProtocolError as exc:
            raise OdooError("protocol", f"Odoo answered HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            raise OdooError(
                "unreachable", f"Odoo at {self.config.url} is unreachable ({exc})"
            ) from None

    def authenticate(self) -> int:
        with self._lock:
            uid = self._guarded(
                self._common.authenticate,
                self.config.db,
                self.config.username,
                self.config.secret,
                {},
            )
            if not uid:
                raise OdooError(
                    "auth",
                    f"Odoo refused the login {self.config.username!r} on database "
                    f"{self.config.db!r} (wrong user, key or database)",
                )
            self._uid = int(uid)
            return self._uid

    @property
    def uid(self) -> int:
        return self._uid if self._uid is not None else self.authenticate()

    def call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``execute_kw`` as the configured user; raises OdooError."""
        uid = self.uid
        with self._lock:
            return self._guarded(
                self._object.execute_kw,
                self.config.db,
                uid,
                self.config.secret,
                model,
                method,
                list(args),
                kwargs,
            )
