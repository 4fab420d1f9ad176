import json

from odoo import api, fields, models

from ..models.mcp_guard_common import ACTION_SELECTION, ensure_one


class McpPolicyWizard(models.TransientModel):
    _name = "mcp.policy.wizard"
    _inherit = ["mcp.guard.values"]
    _description = "MCP Guard Policy Import/Export"

    default_action = fields.Selection(ACTION_SELECTION, required=True, default=lambda self: self._default_action())
    document = fields.Text(
        "Policy document (JSON)", default=lambda self: self._default_document(),
        help="The policy exported in the JSON format the MCP front-end reads. Edit and import to replace it.",
    )
    etag = fields.Char(readonly=True, default=lambda self: self._default_etag())

    @api.model
    def _default_action(self):
        return self.env["mcp.tool.rule"]._get_default_action()

    @api.model
    def _default_document(self):
        doc = self.env["mcp.tool.rule"].get_policy_document()["policy"]
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)

    @api.model
    def _default_etag(self):
        return self.env["mcp.tool.rule"].get_policy_document()["etag"]

    def action_set_default(self):
        ensure_one(self)
        self.env["mcp.tool.rule"]._set_default_action(self.default_action)
        return self._notify(self.env._("Default action set to %s.", self.default_action))

    def action_import(self):
        ensure_one(self)
        result = self.env["mcp.tool.rule"].import_policy_document(self.document or "")
        return self._notify(self.env._("Policy imported (etag %s).", result["etag"][:12]))

    def _notify(self, message):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": message,
                "type": "success",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
