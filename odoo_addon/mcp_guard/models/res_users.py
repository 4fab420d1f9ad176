from odoo import fields, models


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
