# One-time set-up, run by an administrator inside Odoo's shell (see README "Run with Docker"):
#
#   docker compose -f docker/docker-compose.yml run --rm -T odoo -- shell -d odoo --no-http \
#       < docker/create-agent.py
#
# Creates (or finds) the Agent user the guard signs in as, in the group mcp_guard.group_mcp_agent
# only, and prints a new RPC API key for it on the last line: put it in docker/.env as
# ODOO_API_KEY. The login is ODOO_USERNAME (pass it with -e ODOO_USERNAME=... if not mcp-agent).
# `env` is provided by `odoo shell`.
import os

from odoo.fields import Command

login = os.environ.get("ODOO_USERNAME") or "mcp-agent"
agent_group = env.ref("mcp_guard.group_mcp_agent")  # noqa: F821
agent = env["res.users"].with_context(active_test=False).search([("login", "=", login)])  # noqa: F821
if not agent:
    # the user's groups are groups_id on Odoo 18.0, group_ids on 19.0
    groups = "group_ids" if "group_ids" in env["res.users"]._fields else "groups_id"  # noqa: F821
    agent = env["res.users"].create(  # noqa: F821
        {"name": "MCP Agent", "login": login, groups: [Command.set([agent_group.id])]}
    )
key = env["res.users.apikeys"].with_user(agent).sudo()._generate("rpc", "odoo-mcp-guard", None)  # noqa: F821
env.cr.commit()  # noqa: F821
print(f"ODOO_USERNAME={login}")
print(f"ODOO_API_KEY={key}")
