from odoo import fields, models

from ..models.mcp_guard_common import ensure_one


class McpToolRateLimitWizard(models.TransientModel):
    _name = "mcp.tool.rate.limit.wizard"
    _inherit = ["mcp.guard.values"]
    _description = "Rate limit a catalog tool"

    tool_ids = fields.Many2many("mcp.tool", string="Tools")
    rate_limit_max = fields.Integer("Calls", required=True, default=60)
    rate_limit_window = fields.Integer("Window (s)", required=True, default=60)

    def action_confirm(self):
        ensure_one(self)
        # the tool method checks the Manager group again
        self.tool_ids._set_rate_limit(self.rate_limit_max, self.rate_limit_window)
        return {"type": "ir.actions.act_window_close"}
