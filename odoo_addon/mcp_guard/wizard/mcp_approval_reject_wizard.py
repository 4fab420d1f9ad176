from odoo import fields, models

from ..models.mcp_guard_common import ensure_one


class McpApprovalRejectWizard(models.TransientModel):
    _name = "mcp.approval.reject.wizard"
    _inherit = ["mcp.guard.values"]
    _description = "Reject MCP Approval Request"

    request_ids = fields.Many2many("mcp.approval.request", string="Requests")
    note = fields.Text(required=True)

    def action_confirm(self):
        ensure_one(self)
        # the request method checks approver rights and four eyes again
        self.request_ids.action_reject(note=self.note)
        return {"type": "ir.actions.act_window_close"}
