from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..models.mcp_connection import PROTOCOLS


class McpConnectionChangeWizard(models.TransientModel):
    """New values for a connection an agent uses: a replacement, filed for approval."""

    _name = "mcp.connection.change.wizard"
    _description = "Request a change of an MCP connection"

    connection_id = fields.Many2one("mcp.connection", required=True, readonly=True, ondelete="cascade")
    url = fields.Char("URL", required=True)
    db = fields.Char("Database", required=True)
    login = fields.Char(required=True)
    protocol = fields.Selection(PROTOCOLS, required=True)
    password = fields.Char(help="Leave empty to keep the current one.")
    api_key = fields.Char("API key", help="Leave empty to keep the current one.")
    reason = fields.Text()

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        conn = self.env["mcp.connection"].browse(values.get("connection_id")).exists()
        if conn:
            conn.check_access("read")
            for name in ("url", "db", "login", "protocol"):
                values.setdefault(name, conn[name])
        return values

    def action_confirm(self):
        self.ensure_one()
        conn = self.connection_id
        conn.check_access("write")
        if not conn.can_edit:
            raise AccessError(self.env._("Only the owner or a manager can change connection %s.", conn.alias))
        if not conn.active or conn.state != "connected":
            raise UserError(self.env._("Connection %s is not in use: nothing to change.", conn.alias))
        new = {name: self[name] for name in ("url", "db", "login", "protocol")}
        secrets = {name: self[name] for name in ("password", "api_key") if self[name]}
        if all(conn[name] == value for name, value in new.items()) and not secrets:
            raise UserError(self.env._("These are the values connection %s already has.", conn.alias))
        request = self.env["mcp.approval.request"]._file_change(conn, new, secrets, self.reason or "")
        return {
            "type": "ir.actions.act_window",
            "res_model": "mcp.approval.request",
            "view_mode": "form",
            "res_id": request.id,
        }
