from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..models.mcp_connection import PROTOCOLS, SECRET_FIELDS, SECRET_GROUPS
from ..models.identity import secret_problem
from ..models.mcp_guard_common import check_field_values, ensure_one


KEEP_HELP = "Leave empty to keep the current one (a new URL, database or login forgets it)."


class McpConnectionChangeWizard(models.TransientModel):
    """New values for a connection an agent uses: a replacement, filed for approval."""

    _name = "mcp.connection.change.wizard"
    _inherit = ["mcp.guard.values"]
    _description = "Request a change of an MCP connection"

    connection_id = fields.Many2one("mcp.connection", required=True, readonly=True, ondelete="cascade")
    url = fields.Char("URL", required=True)
    db = fields.Char("Database", required=True)
    login = fields.Char(required=True)
    protocol = fields.Selection(PROTOCOLS, required=True)
    # write-only boxes, as on the connection: the value goes to a field only the Agent group
    # reads (never approvers, managers or other users), is handed to the request and wiped
    password = fields.Char(compute="_compute_secret_boxes", inverse="_inverse_password",
                           help=KEEP_HELP)
    api_key = fields.Char("API key", compute="_compute_secret_boxes", inverse="_inverse_api_key",
                          help=KEEP_HELP)
    stored_password = fields.Char(groups=SECRET_GROUPS, copy=False, exportable=False)
    stored_api_key = fields.Char(groups=SECRET_GROUPS, copy=False, exportable=False)
    reason = fields.Text()

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        check_field_values(self, values, ("connection_id",))  # a default_connection_id that is no id
        conn = self.env["mcp.connection"].browse(values.get("connection_id")).exists()
        if conn:
            conn.check_access("read")
            for name in ("url", "db", "login", "protocol"):
                values.setdefault(name, conn[name])
        return values

    def _check_connection_readable(self, vals_list):
        """What one cannot read, one cannot point a wizard at (and read its alias back); a
        value that is no connection id or no protocol is refused in one line."""
        for vals in vals_list:
            check_field_values(self, vals, ("connection_id", "protocol"))
        ids = {vals["connection_id"] for vals in vals_list if vals.get("connection_id")}
        self.env["mcp.connection"].browse(ids).check_access("read")

    @api.model_create_multi
    def create(self, vals_list):
        self._check_connection_readable(vals_list)
        return super().create(vals_list)

    def write(self, vals):
        self._check_connection_readable([vals])
        return super().write(vals)

    def _compute_secret_boxes(self):
        for wizard in self:
            wizard.password = False
            wizard.api_key = False

    def _store_secret(self, name):
        for wizard in self:
            if wizard.create_uid and wizard.create_uid != self.env.user:
                raise AccessError(self.env._("Only who opened this change sets its secrets."))
            if wizard[name]:
                if problem := secret_problem(wizard[name], name):
                    raise UserError(problem)
                wizard.sudo()[f"stored_{name}"] = wizard[name]

    def _inverse_password(self):
        self._store_secret("password")

    def _inverse_api_key(self):
        self._store_secret("api_key")

    def action_confirm(self):
        ensure_one(self)
        conn = self.connection_id
        conn.check_access("write")
        # decided from the stored row, never from a value put in the cache (outside round 27a)
        conn.invalidate_recordset(["state", "active", "owner_id", "can_edit"])
        if not conn.can_edit:
            raise AccessError(self.env._("Only the owner or a manager can change connection %s.", conn.alias))
        if not conn.active or conn.state != "connected":
            raise UserError(self.env._("Connection %s is not in use: nothing to change.", conn.alias))
        new = {name: self[name] for name in ("url", "db", "login", "protocol")}
        stored = self.sudo()
        secrets = {name: stored[f"stored_{name}"] for name in SECRET_FIELDS if stored[f"stored_{name}"]}
        # kept only by the request (Agent-only fields, wiped once carried out or closed)
        stored.write({f"stored_{name}": False for name in SECRET_FIELDS})
        if all(conn[name] == value for name, value in new.items()) and not secrets:
            raise UserError(self.env._("These are the values connection %s already has.", conn.alias))
        request = self.env["mcp.approval.request"]._file_change(conn, new, secrets, self.reason or "")
        return {
            "type": "ir.actions.act_window",
            "res_model": "mcp.approval.request",
            "view_mode": "form",
            "res_id": request.id,
        }
