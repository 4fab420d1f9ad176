from odoo import api, fields, models

from .agent_access import archived_by, keeping_agents_apart, touches_access


class ResUsers(models.Model):
    _inherit = "res.users"

    # who an MCP principal is, when it is not spelled like the person's login, name or email:
    # set by a Manager (a user cannot write it, so cannot rename themselves out of it); an
    # approver whose list matches a request's principal cannot decide that request
    mcp_principals = fields.Char(
        "MCP principals this person acts as",
        groups="mcp_guard.group_mcp_manager",
        help="Comma-separated MCP principals (as the front-end names agents, e.g. http:alice) "
        "that are this person: requests filed under them are this person's own.",
    )

    # nobody who decides is an Agent (agent_access.py), whatever groups a new user is given
    @api.model_create_multi
    def create(self, vals_list):
        create = super().create
        return keeping_agents_apart(self.env, lambda: create(vals_list))

    # no change of a user takes a connection from an agent, or makes an agent a person who
    # decides (agent_access.py)
    def write(self, vals):
        if not touches_access(vals):
            return super().write(vals)
        write = super().write
        Connection = self.env["mcp.connection"]
        return keeping_agents_apart(self.env, lambda: Connection._keeping_agent_views(lambda: write(vals), users=self))

    def _write_multi(self, vals_list):
        # an archive through the low-level write; write()'s own reaches here with the user
        # already inactive in the cache (and checked)
        archived = archived_by(self, vals_list)
        if archived:
            Connection = self.env["mcp.connection"]
            Connection._refuse_taking_away(Connection._agent_views(archived))
        return super()._write_multi(vals_list)

    def unlink(self):
        Connection = self.env["mcp.connection"]
        Connection._refuse_taking_away(Connection._agent_views(self))
        return super().unlink()
