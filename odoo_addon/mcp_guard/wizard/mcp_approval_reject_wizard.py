from odoo import api, fields, models

from ..models.mcp_guard_common import check_many2many_ids, ensure_one


class McpApprovalRejectWizard(models.TransientModel):
    _name = "mcp.approval.reject.wizard"
    _description = "Reject MCP Approval Request"

    request_ids = fields.Many2many("mcp.approval.request", string="Requests")
    note = fields.Text(required=True)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            check_many2many_ids(self, vals, "request_ids")  # [(6, 0, ["x"])]: one line
        return super().create(vals_list)

    def action_confirm(self):
        ensure_one(self)
        # the request method checks approver rights and four eyes again
        self.request_ids.action_reject(note=self.note)
        return {"type": "ir.actions.act_window_close"}
