"""A small Odoo RPC port with two implementations, and Odoo's errors turned into clear lines.

* :class:`Json2Client` speaks JSON-2, Odoo 19's external API (``POST /json/2/<model>/<method>``,
  ``Authorization: bearer <API key>``, ``X-Odoo-Database``, named arguments only, ``ids`` for
  the records of a record method, one transaction per request), with httpx (already in the
  tree through the MCP SDK): one pooled, kept-alive connection and a timeout per client.
* :class:`XmlRpcClient` speaks ``/xmlrpc/2`` to Odoo 18 and earlier, with the standard
  library's ``xmlrpc.client`` (one kept-alive connection; Odoo's exception class comes in a
  stable numeric fault code). Odoo 19 still serves it but logs a deprecation warning for
  every call and schedules its removal.
* :class:`OdooClient` is the one the rest of the guard uses: it asks the server which series
  it runs (``GET /web/version``, which Odoo 19 answers with ``version_info`` and 18 does not
  have) and speaks JSON-2 to 19 and later, XML-RPC otherwise, unless the protocol is
  configured (``ODOO_PROTOCOL=json2|xmlrpc``, or a connection record's ``protocol``).

Callers name every argument (``call(model, method, ids=[...], fields=[...])``): that is what
JSON-2 accepts, and XML-RPC's ``execute_kw`` takes the same names. Both protocols raise the
same :class:`OdooError` kinds with the same one-line messages for a refused key, an unknown
database, an access error, a missing record and a bad domain.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import ssl
import threading
import tomllib
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx2 as httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from odoo_mcp_guard.files import read_regular_file
from odoo_mcp_guard.policy_core import redact_known_text, redact_text
from odoo_mcp_guard.settings import url_problem

# Odoo's fault codes on /xmlrpc/2 (odoo/addons/base/controllers/rpc.py); any other is
# an application error.
MAX_CONFIG_BYTES = 1024 * 1024
FAULT_USER_ERROR = 2
FAULT_ACCESS_DENIED = 3
FAULT_ACCESS_ERROR = 4

ErrorKind = Literal["unreachable", "auth", "database", "access", "user", "application", "protocol"]
Wire = Literal["json2", "xmlrpc"]
ProtocolSetting = Literal["auto", "json2", "xmlrpc"]
# The first series that serves JSON-2 (and deprecates /xmlrpc and /jsonrpc)
JSON2_SINCE = 19

log = logging.getLogger(__name__)


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
    # auto: ask the server (JSON-2 from Odoo 19 on, XML-RPC before)
    protocol: ProtocolSetting = "auto"

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

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
        if env.get("ODOO_PROTOCOL"):
            values["protocol"] = env["ODOO_PROTOCOL"].strip().lower()
        return cls._validated(values, "environment (ODOO_*)")

    @classmethod
    def from_file(cls, path: Path) -> OdooConfig:
        """A TOML or JSON file with the same keys in lower case (url, db, username, api_key...)."""
        try:
            raw = read_regular_file(path, MAX_CONFIG_BYTES)  # never a FIFO or a device
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
        if config.protocol == "json2" and config.api_key is None:
            raise OdooError(
                "protocol", f"{source}: JSON-2 signs in with an API key, not a password"
            )
        return config


class OdooRpc(Protocol):
    """The port: one Odoo user on one database, over one protocol."""

    config: OdooConfig

    @property
    def protocol(self) -> Wire: ...

    def authenticate(self) -> int:
        """Check the credentials; the user's id. Raises OdooError."""
        ...

    def call(
        self, model: str, method: str, /, *, ids: list[int] | None = None, **kwargs: Any
    ) -> Any:
        """``model.method(**kwargs)`` on the records ``ids`` (a record method) or on the model
        (``ids`` None), as the configured user. Raises OdooError."""
        ...

    def close(self) -> None: ...


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())[:limit]


def _last_line(text: str) -> str:
    """An application error carries a server traceback: keep only its last line, the exception
    (``ValueError: Invalid field ...``), as both protocols give it."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[-1] if lines else "Odoo reported an error")[:500]


_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
# an unknown model: "Object x doesn't exist" (XML-RPC), "the model 'x' does not exist" (JSON-2)
_NO_MODEL = re.compile(r"^(?:Object (\S+) doesn't exist|the model '([^']+)' does not exist)$")


def _no_model(message: str) -> OdooError | None:
    found = _NO_MODEL.match(message)
    if found is None:
        return None
    return OdooError("user", f"Odoo has no model {found.group(1) or found.group(2)!r}")


def _refused_login(config: OdooConfig) -> OdooError:
    return OdooError(
        "auth",
        f"Odoo refused the login {config.username!r} on database {config.db!r} "
        "(wrong user, key or database)",
    )


def _no_database(config: OdooConfig) -> OdooError:
    return OdooError("database", f"Odoo at {config.url} has no database {config.db!r}")


def _unreachable(config: OdooConfig, exc: Exception) -> OdooError:
    return OdooError("unreachable", f"Odoo at {config.url} is unreachable ({exc})")


@contextmanager
def _hiding_secrets(config: OdooConfig) -> Iterator[None]:
    """An error's line with the configured password and API key hidden by value: an Odoo (or
    something in front of it) may quote the credential it refused."""
    try:
        yield
    except OdooError as exc:
        secrets = [s.get_secret_value() for s in (config.password, config.api_key) if s]
        message = redact_known_text(exc.message, secrets, config.username)
        raise OdooError(exc.kind, message) from None


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


class _SignsIn:
    """The user id a client signs in as: asked of Odoo on first use (``authenticate``, which
    sets ``_uid``), then kept."""

    _uid: int | None = None

    def authenticate(self) -> int:
        raise NotImplementedError

    @property
    def uid(self) -> int:
        return self._uid if self._uid is not None else self.authenticate()


class XmlRpcClient(_SignsIn):
    """``/xmlrpc/2`` (Odoo 18 and earlier). Thread-safe (calls are serialised)."""

    protocol: Wire = "xmlrpc"

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

    def _guarded(self, function: Any, *args: Any) -> Any:
        with _hiding_secrets(self.config):
            return self._translated(function, *args)

    def _translated(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except xmlrpc.client.Fault as fault:
            text = str(fault.faultString or "")
            code = fault.faultCode
            if code == FAULT_ACCESS_ERROR:
                raise OdooError("access", _one_line(text)) from None
            if code == FAULT_ACCESS_DENIED:
                raise _refused_login(self.config) from None
            if code == FAULT_USER_ERROR:
                raise _no_model(_one_line(text)) or OdooError("user", _one_line(text)) from None
            if _NO_DATABASE.search(text):
                raise _no_database(self.config) from None
            raise OdooError("application", _last_line(text)) from None
        except xmlrpc.client.ProtocolError as exc:
            raise OdooError("protocol", f"Odoo answered HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            raise _unreachable(self.config, exc) from None

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
                raise _refused_login(self.config)
            self._uid = int(uid)
            return self._uid

    def call(
        self, model: str, method: str, /, *, ids: list[int] | None = None, **kwargs: Any
    ) -> Any:
        """``execute_kw`` as the configured user: the records first, every other argument by
        name (as JSON-2 takes them); raises OdooError."""
        uid = self.uid
        with self._lock:
            return self._guarded(
                self._object.execute_kw,
                self.config.db,
                uid,
                self.config.secret,
                model,
                method,
                [list(ids)] if ids is not None else [],
                kwargs,
            )

    def close(self) -> None:
        for proxy in (self._common, self._object):
            proxy("close")()


class Json2Client(_SignsIn):
    """JSON-2 (Odoo 19 and later): an API key as bearer token, the database in a header,
    named arguments. Thread-safe: calls are serialised, as on XML-RPC, so that the guard's
    background calls (policy poll, audit flush, catalog report) reach Odoo one at a time."""

    protocol: Wire = "json2"

    def __init__(self, config: OdooConfig):
        if config.api_key is None:
            raise OdooError(
                "auth", "JSON-2 signs in with an API key (ODOO_API_KEY), not a password"
            )
        self.config = config
        self._http = httpx.Client(
            base_url=config.url.rstrip("/"),
            headers={
                "Authorization": f"bearer {config.api_key.get_secret_value()}",
                "X-Odoo-Database": config.db,
                "User-Agent": "odoo-mcp-guard",
            },
            timeout=config.timeout,
            verify=config.verify_ssl,
            trust_env=False,
        )
        self._lock = threading.Lock()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        with _hiding_secrets(self.config):
            return self._answer(path, body)

    def _answer(self, path: str, body: dict[str, Any]) -> Any:
        try:
            answer = self._http.post(path, json=body)
        except httpx.TransportError as exc:  # connection refused, reset, timeouts
            raise _unreachable(self.config, exc) from None
        if answer.status_code == 200:
            try:
                return answer.json()
            except ValueError:
                raise OdooError("protocol", "Odoo answered 200 without JSON") from None
        raise self._error(answer)

    def _error(self, answer: httpx.Response) -> OdooError:
        """Odoo's error answer (``odoo.http.serialize_exception``: name, message, debug) as
        the same kind and line XML-RPC gives."""
        status = answer.status_code
        try:
            body = answer.json()
        except ValueError:
            body = None
        if status == 401:
            return _refused_login(self.config)
        if not isinstance(body, dict) or "name" not in body:
            if status == 404 and "database" in answer.text.lower():
                return _no_database(self.config)
            if status in (301, 302, 303, 307, 308, 404):  # Odoo 18 redirects to its login
                return OdooError(
                    "protocol",
                    f"Odoo at {self.config.url} does not serve JSON-2 (HTTP {status}); Odoo 18 "
                    "and earlier speak XML-RPC (ODOO_PROTOCOL=xmlrpc, or leave it unset)",
                )
            return OdooError("protocol", f"Odoo answered HTTP {status} {answer.reason_phrase}")
        name = str(body.get("name") or "")
        message = str(body.get("message") or "")
        debug = str(body.get("debug") or "")
        short = name.rsplit(".", 1)[-1]
        if short == "AccessDenied":
            return _refused_login(self.config)
        if short == "AccessError":
            return OdooError("access", _one_line(message))
        if name.startswith("odoo.exceptions."):  # UserError, MissingError, ValidationError...
            return OdooError("user", _one_line(message))
        if _NO_DATABASE.search(debug or message):
            return _no_database(self.config)
        if name.startswith("werkzeug.exceptions."):  # NotFound (model, method), bad arguments
            line = _one_line(message)
            return _no_model(line) or OdooError("application", line or f"HTTP {status}")
        return OdooError("application", _last_line(debug or f"{short}: {message}"))

    def authenticate(self) -> int:
        """Who the key belongs to (``res.users.context_get``); it must be the configured login,
        as XML-RPC's ``authenticate`` checks."""
        with self._lock:
            context = self._post("/json/2/res.users/context_get", {})
            uid = context.get("uid") if isinstance(context, dict) else None
            if not isinstance(uid, int):
                raise OdooError("protocol", "Odoo did not say whose API key this is")
            rows = self._post("/json/2/res.users/read", {"ids": [uid], "fields": ["login"]})
            login = rows[0].get("login") if isinstance(rows, list) and rows else None
            if login != self.config.username:
                raise _refused_login(self.config)
            self._uid = uid
            return uid

    def call(
        self, model: str, method: str, /, *, ids: list[int] | None = None, **kwargs: Any
    ) -> Any:
        """``POST /json/2/<model>/<method>``; raises OdooError."""
        if self._uid is None:
            self.authenticate()
        body = dict(kwargs)
        if ids is not None:
            body["ids"] = list(ids)
        with self._lock:
            return self._post(f"/json/2/{model}/{method}", body)

    def close(self) -> None:
        self._http.close()


def detect_protocol(config: OdooConfig) -> Wire:
    """Ask the server its series: ``GET /web/version`` answers ``version_info`` on Odoo 19 and
    later (JSON-2), and is unknown to 18 and earlier (XML-RPC). Raises OdooError when Odoo
    cannot be reached (nothing is decided then)."""
    try:
        answer = httpx.get(
            f"{config.url.rstrip('/')}/web/version",
            timeout=config.timeout,
            verify=config.verify_ssl,
            trust_env=False,
        )
    except httpx.TransportError as exc:
        raise _unreachable(config, exc) from None
    if answer.status_code == 200:
        try:
            major = answer.json()["version_info"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            major = None
        if isinstance(major, int) and major >= JSON2_SINCE:
            return "json2"
    return "xmlrpc"


class OdooClient:
    """The guard's Odoo client (implements :class:`OdooRpc`): the configured protocol, or the
    one the server's series calls for, found once on the first call (and asked again after a
    failure to reach the server)."""

    def __init__(self, config: OdooConfig):
        self.config = config
        self._impl: XmlRpcClient | Json2Client | None = None
        self._lock = threading.Lock()

    def _client(self) -> XmlRpcClient | Json2Client:
        impl = self._impl
        if impl is not None:
            return impl
        with self._lock:
            if self._impl is None:
                wire = self.config.protocol
                if wire == "auto":
                    wire = detect_protocol(self.config)
                    if wire == "json2" and self.config.api_key is None:
                        log.warning(
                            "Odoo at %s serves JSON-2, which takes an API key: with a password "
                            "the guard stays on XML-RPC (deprecated there)",
                            self.config.url,
                        )
                        wire = "xmlrpc"
                self._impl = (
                    Json2Client(self.config) if wire == "json2" else XmlRpcClient(self.config)
                )
            return self._impl

    @property
    def protocol(self) -> Wire:
        return self._client().protocol

    def authenticate(self) -> int:
        return self._client().authenticate()

    @property
    def uid(self) -> int:
        return self._client().uid

    def call(
        self, model: str, method: str, /, *, ids: list[int] | None = None, **kwargs: Any
    ) -> Any:
        return self._client().call(model, method, ids=ids, **kwargs)

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
