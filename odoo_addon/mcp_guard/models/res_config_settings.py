from odoo import api, fields, models

from .mcp_guard_common import ACTION_SELECTION


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # the policy's "default" (tools no rule names): stored where the policy document reads it,
    # set through the same method as the policy wizard (Managers only)
    mcp_guard_default_action = fields.Selection(
        ACTION_SELECTION, "Default action",
        help="What the MCP front-ends do with a tool that no rule names. Deny is the safe choice.",
    )

    @api.model
    def get_values(self):
        res = super().get_values()
        res["mcp_guard_default_action"] = self.env["mcp.tool.rule"]._get_default_action()
        return res

    def set_values(self):
        res = super().set_values()
        Rule = self.env["mcp.tool.rule"]
        if self.mcp_guard_default_action and self.mcp_guard_default_action != Rule._get_default_action():
            Rule._set_default_action(self.mcp_guard_default_action)
        return res
