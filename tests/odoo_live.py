"""A live Odoo (18 or 19) with ``mcp_guard`` for the front-end's integration tests and benchmarks.

One database with the add-on, an Agent technical user with an API key (what the front-end
logs in as), an Approver, a Manager, a plain data user with an API key (the connection the data
tools use), 80 partners, and an Odoo HTTP server that can be stopped and started again.

The test side speaks to Odoo the way that series wants to be spoken to, independently of the
guard's own client: XML-RPC on 18, JSON-2 (every user has an API key) on 19, where Odoo logs a
deprecation warning for every /xmlrpc or /jsonrpc call (:meth:`LiveOdoo.deprecation_warnings`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import odoo_harness as harness
from mcp import Client, StdioServerParameters
from support.guard import guard_env

from odoo_mcp_guard.identity import check_approver, same_person

# The users, created the documented way (README, docker/create-agent.py) on both series.
SETUP_SCRIPT = """
import json
from odoo import Command
# the user's groups are groups_id on Odoo 18.0, group_ids on 19.0
groups = "group_ids" if "group_ids" in env["res.users"]._fields else "groups_id"
agent_group = env.ref("mcp_guard.group_mcp_agent")
approver_group = env.ref("mcp_guard.group_mcp_approver")
Users = env["res.users"].with_context(no_reset_password=True, mail_create_nolog=True)
agent = Users.create({"name": "MCP Agent", "login": "mcp-agent", "password": "agent-pw-1234",
                      groups: [Command.set([agent_group.id])]})
approver = Users.create({"name": "Alice Approver", "login": "alice", "password": "alice-pw-1234",
                         groups: [Command.set([approver_group.id])]})
owner = Users.create({"name": "Olga Owner", "login": "olga", "password": "olga-pw-1234",
                      groups: [Command.set([env.ref("mcp_guard.group_mcp_user").id])]})
manager = Users.create({"name": "Mia Manager", "login": "mia", "password": "mia-pw-1234",
                        groups: [Command.set([env.ref("mcp_guard.group_mcp_manager").id])]})
data_user = Users.create({"name": "Data User", "login": "data", "password": "data-pw-1234",
                          groups: [Command.set([env.ref("base.group_user").id])]})
Keys = env["res.users.apikeys"]
# sudo: a technical key without expiry, created once by an administrator
agent_key = Keys.with_user(agent).sudo()._generate("rpc", "odoo-mcp-guard", None)
data_key = Keys.with_user(data_user).sudo()._generate("rpc", "data tools", None)
# the test side's own keys (JSON-2 takes no password)
keys = {user.login: Keys.with_user(user).sudo()._generate("rpc", "tests", None)
        for user in (env.ref("base.user_admin"), agent, approver, owner, manager, data_user)}
env["res.partner"].create([{"name": f"Bench Partner {i:03d}", "email": f"p{i}@example.com",
                            "city": "Gent"} for i in range(80)])
env.cr.commit()
print("MCPG_SETUP=" + json.dumps({"agent_key": agent_key, "data_key": data_key, "keys": keys}))
"""

# Odoo 19's notice on every /xmlrpc, /xmlrpc/2 or /jsonrpc call (addons/rpc/controllers)
DEPRECATION_NOTICE = "endpoints are deprecated in Odoo 19"

# How the test side names the positional arguments of the methods it calls, for JSON-2
# (named arguments only; ``ids`` are the records of a record method).
_NAMED: dict[str, tuple[str, ...]] = {
    "search": ("domain",),
    "search_count": ("domain",),
    "search_read": ("domain", "fields"),
    "read": ("ids", "fields"),
    "write": ("ids", "vals"),
    "create": ("vals_list",),
    "unlink": ("ids",),
    "read_group": ("domain", "fields", "groupby"),
}


def series_params() -> list[Any]:
    """One pytest parameter per supported series; one that is not installed is skipped loudly
    (its harness reason says NOT RUN). Use as ``@pytest.fixture(params=series_params())``."""
    import pytest

    return [
        pytest.param(
            series,
            id=f"odoo{series.version.split('.')[0]}",
            marks=pytest.mark.skipif(
                harness.find_odoo(series) is None, reason=series.not_found_reason
            ),
        )
        for series in harness.SERIES
    ]


def check_no_deprecated_endpoint(request: Any) -> None:
    """After a test using the ``live`` fixture: on Odoo 19 nothing, neither the guard nor the
    test side, called /xmlrpc or /jsonrpc (Odoo logs each such call)."""
    if "live" in request.fixturenames:
        live: LiveOdoo = request.getfixturevalue("live")
        if live.json2:
            assert live.deprecation_warnings() == []


class OdooFault(Exception):
    """Odoo refused a call of the test side (an XML-RPC fault or a JSON-2 error answer)."""


def named_arguments(method: str, args: Sequence[Any]) -> dict[str, Any]:
    names = _NAMED.get(method) or (("ids",) if method.startswith(("action_", "button_")) else ())
    if len(args) > len(names):
        raise TypeError(f"name the arguments of {method} for JSON-2")
    return dict(zip(names, args, strict=False))


@dataclass
class LiveOdoo:
    db: str
    agent_key: str
    data_key: str
    keys: dict[str, str] = field(default_factory=dict)
    series: harness.Series = harness.ODOO18
    server: harness.OdooServer | None = None
    port: int = field(default_factory=harness.free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def guard_env(self) -> dict[str, str]:
        """What the front-end needs to use this Odoo as its backend."""
        return {
            "ODOO_URL": self.url,
            "ODOO_DB": self.db,
            "ODOO_USERNAME": "mcp-agent",
            "ODOO_API_KEY": self.agent_key,
        }

    def client(
        self,
        data_dir: Path,
        *,
        principal: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        mode: str = "auto",
        **kwargs: Any,
    ) -> Client:
        """An SDK client of a front-end (``serve``, or ``args``) on stdio with this Odoo as its
        backend, polling the policy and flushing the audit every 0.5 s. Its principal is
        claimed by olga (``claim``): a request under a principal nobody claims cannot be
        approved."""
        self.claim((env or {}).get("MCP_GUARD_PRINCIPAL", principal))
        settings = {
            "MCP_GUARD_PRINCIPAL": principal,
            "MCP_GUARD_POLICY_POLL": "0.5",
            "MCP_GUARD_AUDIT_FLUSH": "0.5",
            **self.guard_env(),
            **(env or {}),
        }
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "odoo_mcp_guard", *(args or ["serve", "--data-dir", str(data_dir)])],
            env=guard_env(data_dir, **settings),
        )
        return Client(params, mode=mode, read_timeout_seconds=60, **kwargs)

    @property
    def json2(self) -> bool:
        """Odoo 19 and later: the test side speaks JSON-2, as the guard does."""
        return self.series.version >= "19"

    @property
    def protocol(self) -> str:
        """What a connection record to this Odoo names its protocol."""
        return "json2" if self.json2 else "xmlrpc"

    def rpc(self, login: str, password: str, model: str, method: str, *args, **kwargs):
        """A call as ``login``; Odoo's refusal raises :class:`OdooFault`."""
        if self.json2:
            body = named_arguments(method, args) | kwargs
            answer = httpx2.post(
                f"{self.url}/json/2/{model}/{method}",
                json=body,
                headers={
                    "Authorization": f"bearer {self.keys[login]}",
                    "X-Odoo-Database": self.db,
                },
                timeout=120,
            )
            if answer.status_code != 200:
                raise OdooFault(answer.text)
            result = answer.json()
            if method == "create" and args and isinstance(args[0], dict):
                return result[0]  # one record: its id, as XML-RPC gives it
            return result
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common", allow_none=True)
        uid = common.authenticate(self.db, login, password, {})
        assert uid, f"cannot log in as {login}"
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)
        try:
            return proxy.execute_kw(self.db, uid, password, model, method, list(args), kwargs)
        except xmlrpc.client.Fault as fault:
            raise OdooFault(fault.faultString) from None

    def claim(self, principal: str, login: str = "olga") -> None:
        """Bind ``principal`` to its person, as a Manager does in Settings > Users > MCP
        principals: the user whose login or name it reads as (``ops/alice`` is alice's), else
        ``login`` (olga, who approves nothing); one claimed by somebody already is left."""
        claimed = self.admin(
            "res.users",
            "search_read",
            [("mcp_principals", "!=", False)],
            ["login", "mcp_principals"],
        )
        listed = {
            user["login"]: [p.strip() for p in user["mcp_principals"].split(",")]
            for user in claimed
        }
        if "," in principal or any(principal in names for names in listed.values()):
            return
        users = self.admin("res.users", "search_read", [("share", "=", False)], ["login", "name"])
        own = [
            user["login"]
            for user in users
            if check_approver(principal) is None
            and any(same_person(principal, user[key]) for key in ("login", "name"))
        ]
        login = own[0] if own else login
        [person] = self.admin("res.users", "search", [("login", "=", login)])
        names = [*listed.get(login, []), principal]
        self.admin("res.users", "write", [person], {"mcp_principals": ", ".join(names)})

    def deprecation_warnings(self) -> list[str]:
        """Lines of Odoo's logs (every start) that warn of a deprecated RPC endpoint."""
        found = list(self._deprecations)
        if self.server is not None:
            text = self.server.log_path.read_text(encoding="utf-8", errors="replace")
            found += [line for line in text.splitlines() if DEPRECATION_NOTICE in line]
        return found

    def admin(self, model: str, method: str, *args, **kwargs):
        return self.rpc("admin", "admin", model, method, *args, **kwargs)

    _stack: contextlib.ExitStack | None = field(default=None, repr=False)
    _deprecations: list[str] = field(default_factory=list, repr=False)

    def start(self) -> None:
        """Serve the database over HTTP on ``port`` (the same port every time)."""
        assert self._stack is None, "already running"
        stack = contextlib.ExitStack()
        self.server = stack.enter_context(
            harness.odoo_server(self.db, port=self.port, series=self.series)
        )
        self._stack = stack

    def stop(self) -> None:
        self._deprecations = self.deprecation_warnings()
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self.server = None

    @contextlib.contextmanager
    def running(self) -> Iterator[LiveOdoo]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _shell(db: str, script: str, series: harness.Series = harness.ODOO18) -> str:
    cmd = harness.find_odoo(series)
    assert cmd is not None
    params = harness.DbParams.from_env()
    proc = subprocess.run(
        [
            *cmd,
            "shell",
            "-d",
            db,
            *params.odoo_args(),
            f"--addons-path={harness.addons_path(series)}",
            "--no-http",
            "--log-level=warn",
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
        env=harness.odoo_environ(cmd),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"odoo shell failed: {proc.stderr[-2000:]}")
    return proc.stdout


@contextlib.contextmanager
def live_odoo(series: harness.Series = harness.ODOO18) -> Iterator[LiveOdoo]:
    """A fresh database with the add-on and the users above; dropped afterwards."""
    with harness.fresh_database(series=series) as db:
        out = _shell(db, SETUP_SCRIPT, series)
        line = next((ln for ln in out.splitlines() if ln.startswith("MCPG_SETUP=")), None)
        if line is None:
            raise RuntimeError(f"setup script printed no keys: {out[-2000:]}")
        keys = json.loads(line.removeprefix("MCPG_SETUP="))
        yield LiveOdoo(
            db=db,
            agent_key=keys["agent_key"],
            data_key=keys["data_key"],
            keys=keys["keys"],
            series=series,
        )
