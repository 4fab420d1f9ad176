"""A live Odoo 18 with ``mcp_guard`` for the front-end's integration tests and benchmarks.

One database with the add-on, an Agent technical user with an API key (what the front-end
logs in as), an Approver, a Manager, a plain data user with an API key (the connection the data
tools use), 80 partners, and an Odoo HTTP server that can be stopped and started again.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import odoo_harness as harness
from mcp import Client, StdioServerParameters
from support.guard import guard_env

SETUP_SCRIPT = """
import json
from odoo import Command
agent_group = env.ref("mcp_guard.group_mcp_agent")
approver_group = env.ref("mcp_guard.group_mcp_approver")
Users = env["res.users"].with_context(no_reset_password=True, mail_create_nolog=True)
agent = Users.create({"name": "MCP Agent", "login": "mcp-agent", "password": "agent-pw-1234",
                      "groups_id": [Command.set([agent_group.id])]})
approver = Users.create({"name": "Alice Approver", "login": "alice", "password": "alice-pw-1234",
                         "groups_id": [Command.set([approver_group.id])]})
manager = Users.create({"name": "Mia Manager", "login": "mia", "password": "mia-pw-1234",
                        "groups_id": [Command.set([env.ref("mcp_guard.group_mcp_manager").id])]})
data_user = Users.create({"name": "Data User", "login": "data", "password": "data-pw-1234",
                          "groups_id": [Command.set([env.ref("base.group_user").id])]})
Keys = env["res.users.apikeys"]
# sudo: a technical key without expiry, created once by an administrator
agent_key = Keys.with_user(agent).sudo()._generate("rpc", "odoo-mcp-guard", None)
data_key = Keys.with_user(data_user).sudo()._generate("rpc", "data tools", None)
env["res.partner"].create([{"name": f"Bench Partner {i:03d}", "email": f"p{i}@example.com",
                            "city": "Gent"} for i in range(80)])
env.cr.commit()
print("MCPG_SETUP=" + json.dumps({"agent_key": agent_key, "data_key": data_key}))
"""


@dataclass
class LiveOdoo:
    db: str
    agent_key: str
    data_key: str
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
        backend, polling the policy and flushing the audit every 0.5 s."""
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

    def rpc(self, login: str, password: str, model: str, method: str, *args, **kwargs):
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common", allow_none=True)
        uid = common.authenticate(self.db, login, password, {})
        assert uid, f"cannot log in as {login}"
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)
        return proxy.execute_kw(self.db, uid, password, model, method, list(args), kwargs)

    def admin(self, model: str, method: str, *args, **kwargs):
        return self.rpc("admin", "admin", model, method, *args, **kwargs)

    _stack: contextlib.ExitStack | None = field(default=None, repr=False)

    def start(self) -> None:
        """Serve the database over HTTP on ``port`` (the same port every time)."""
        assert self._stack is None, "already running"
        stack = contextlib.ExitStack()
        self.server = stack.enter_context(harness.odoo_server(self.db, port=self.port))
        self._stack = stack

    def stop(self) -> None:
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


def _shell(db: str, script: str) -> str:
    cmd = harness.find_odoo()
    assert cmd is not None
    params = harness.DbParams.from_env()
    proc = subprocess.run(
        [
            *cmd,
            "shell",
            "-d",
            db,
            *params.odoo_args(),
            f"--addons-path={harness.addons_path()}",
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
def live_odoo() -> Iterator[LiveOdoo]:
    """A fresh database with the add-on and the users above; dropped afterwards."""
    with harness.fresh_database() as db:
        out = _shell(db, SETUP_SCRIPT)
        line = next((ln for ln in out.splitlines() if ln.startswith("MCPG_SETUP=")), None)
        if line is None:
            raise RuntimeError(f"setup script printed no keys: {out[-2000:]}")
        keys = json.loads(line.removeprefix("MCPG_SETUP="))
        yield LiveOdoo(db=db, agent_key=keys["agent_key"], data_key=keys["data_key"])
