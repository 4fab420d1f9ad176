from odoo import api, fields, models
from odoo.exceptions import AccessError

from .compat import Constraint
from .mcp_guard_common import is_internal_write


class McpApprovalVote(models.Model):
    """One approver's approval of one request. A request is approved once the votes of its
    quorum of different approvers are in (``mcp.approval.request.action_approve``); a vote is
    written only by that method, never by a client, and never changes."""

    _name = "mcp.approval.vote"
    _inherit = ["mcp.guard.values"]
    _description = "MCP Approval Vote"
    _order = "create_date, id"
    _check_company_auto = True

    request_id = fields.Many2one(
        "mcp.approval.request", required=True, readonly=True, index=True, ondelete="cascade"
    )
    user_id = fields.Many2one("res.users", "Approver", required=True, readonly=True, ondelete="restrict")
    company_id = fields.Many2one(related="request_id.company_id", store=True)
    note = fields.Char(readonly=True)

    _request_user_unique = Constraint(
        "UNIQUE (request_id, user_id)", "An approver approves a request once."
    )

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal_write():
            raise AccessError(self.env._("Approvals are given with the request's Approve action."))
        return super().create(vals_list)

    def write(self, vals):  # pylint: disable=method-required-super
        raise AccessError(self.env._("An approval, once given, is not changed."))

    def unlink(self):  # pylint: disable=method-required-super
        # refused in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14);
        # the table goes only with the module, dropped whole
        raise AccessError(self.env._("An approval, once given, is kept with its request."))  # pylint: disable=no-raise-unlink
