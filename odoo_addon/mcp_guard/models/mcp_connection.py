from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .compat import Constraint
from .mcp_guard_common import (
    URL_CREDENTIALS_MESSAGE,
    is_internal_write,
    removal_allowed_ids,
    url_has_credentials,
)
from .mcp_guard_context import trusted

PROTOCOLS = [("xmlrpc", "XML-RPC"), ("jsonrpc", "JSON-RPC"), ("json2", "JSON-2")]
AGENT_KEYS = {"alias", "url", "db", "login", "password", "api_key", "protocol"}
# only the Agent reads secrets (to connect); Managers and owners set them write-only
SECRET_GROUPS = "mcp_guard.group_mcp_agent"
SECRET_FIELDS = ("password", "api_key")


class McpConnection(models.Model):
    _name = "mcp.connection"
    _description = "MCP Odoo Connection"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "alias, id"
    _rec_name = "alias"
    _check_company_auto = True

    alias = fields.Char(required=True, tracking=True, index=True)
    url = fields.Char("URL", required=True, tracking=True)
    db = fields.Char("Database", required=True, tracking=True)
    login = fields.Char(required=True, tracking=True)
    protocol = fields.Selection(PROTOCOLS, required=True, default="xmlrpc", tracking=True)
    # secrets: only the Agent group reads them; never tracked (chatter), never exported,
    # never copied
    password = fields.Char(groups=SECRET_GROUPS, copy=False, exportable=False)
    api_key = fields.Char("API key", groups=SECRET_GROUPS, copy=False, exportable=False)
    # write-only doors to the secrets for Managers and owners: never read back
    new_password = fields.Char(
        "New password", compute="_compute_new_secrets", inverse="_inverse_new_password", exportable=False
    )
    new_api_key = fields.Char(
        "New API key", compute="_compute_new_secrets", inverse="_inverse_new_api_key", exportable=False
    )
    owner_id = fields.Many2one(
        "res.users",
        required=True,
        default=lambda self: self.env.user,
        ondelete="restrict",
        tracking=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, ondelete="restrict"
    )
    state = fields.Selection(
        [("connected", "Connected"), ("disconnect_pending", "Disconnect pending")],
        default="connected",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    active = fields.Boolean(default=True, tracking=True)
    request_ids = fields.One2many("mcp.approval.request", "connection_id", "Requests")
    request_count = fields.Integer(compute="_compute_request_count")

    _alias_owner_unique = Constraint("UNIQUE (owner_id, alias)", "This owner already has a connection with this alias.")

    @api.depends("request_ids")
    def _compute_request_count(self):
        counts = dict(
            self.env["mcp.approval.request"]._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for conn in self:
            conn.request_count = counts.get(conn, 0)

    def _compute_new_secrets(self):
        for conn in self:
            conn.new_password = False
            conn.new_api_key = False

    def _inverse_new_password(self):
        self._set_secret("password", "new_password")

    def _inverse_new_api_key(self):
        self._set_secret("api_key", "new_api_key")

    def _set_secret(self, secret, door):
        # sudo: the caller may write the record (checked by write) but not read the secret field
        for conn in self.filtered(door):
            conn.sudo()[secret] = conn[door]

    @api.model
    def _check_url(self, vals):
        url = vals.get("url")
        if isinstance(url, str) and url_has_credentials(url):
            # the front-end's message, word for word (policy_core)
            raise UserError(URL_CREDENTIALS_MESSAGE)

    @api.model
    def _check_protected(self, vals):
        """Ending a connection (archive, state change) happens only inside the add-on's own
        methods (consume), which set an in-process flag; checked in write and _write_multi."""
        if is_internal_write():
            return
        if "state" in vals:
            raise UserError(self.env._("The state of a connection cannot be written directly."))
        if "active" in vals and not vals["active"]:
            raise UserError(self.env._("A connection can only be ended by consuming an approved disconnect request."))

    def _write_multi(self, vals_list):
        # the ORM's low-level write (also reached by _write from server-action code)
        for vals in vals_list:
            self._check_protected(vals)
        return super()._write_multi(vals_list)

    def export_data(self, fields_to_export):
        if any(path.split("/")[0] in SECRET_FIELDS for path in fields_to_export):
            raise AccessError(self.env._("Connection passwords and API keys cannot be exported."))
        return super().export_data(fields_to_export)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_url(vals)
            if not is_internal_write():
                # a connection always starts connected, whatever the client sends
                vals.pop("state", None)
        # no default_state / default_owner_id from the client's context, and a chatter trail
        return super(McpConnection, trusted(self)).create(vals_list)

    def write(self, vals):
        self._check_protected(vals)
        self._check_url(vals)
        if "owner_id" in vals and not self.env.user.has_group("mcp_guard.group_mcp_manager"):
            # handing a connection to the agent decides what it will use: managers only
            raise AccessError(self.env._("Only MCP Guard managers can change the owner of a connection."))
        # tracked whatever the context says: a changed alias, URL, database or login
        # stays visible in the chatter (and voids the requests filed before it)
        res = super(McpConnection, trusted(self)).write(vals)
        if is_internal_write():
            # the state reaches the table now, while the flag is set (see _write_multi)
            self.flush_recordset()
        return res

    def unlink(self):
        # Here and not in @api.ondelete: Odoo skips those under the context key _force_unlink.
        # Only consume() of an approved request puts ids in the in-process allowance.
        if not set(self.ids) <= removal_allowed_ids():
            raise UserError(  # pylint: disable=no-raise-unlink
                self.env._("A connection can only be removed by consuming an approved disconnect request.")
            )
        return super(McpConnection, trusted(self)).unlink()

    def action_view_requests(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Requests"),
            "res_model": "mcp.approval.request",
            "view_mode": "list,form",
            "domain": [("connection_id", "=", self.id)],
            "context": {"default_connection_id": self.id},
        }

    # ------------------------------------------------------------------
    # RPC contract
    # ------------------------------------------------------------------
    @api.model
    def _is_agent(self):
        return self.env.user.has_group("mcp_guard.group_mcp_agent")

    @api.model
    def list_for_agent(self):
        """Connections the caller may use; secrets only for the Agent group."""
        self.check_access("read")
        # record rules apply; a connection with a pending disconnect is still usable
        connections = self.search([])  # pylint: disable=no-search-all
        with_secrets = self._is_agent()
        result = []
        for conn in connections:
            item = {
                "alias": conn.alias,
                "url": conn.url,
                "db": conn.db,
                "login": conn.login,
                "protocol": conn.protocol,
            }
            if with_secrets:
                item["password"] = conn.password or ""
                item["api_key"] = conn.api_key or ""
            result.append(item)
        return result

    @api.model
    def upsert_from_agent(self, values):
        """Register a new connection for the caller; an existing alias is refused."""
        return self._create_for_agent(values)

    @api.model
    def _create_for_agent(self, values):
        """Create the caller's connection from RPC ``values``; an existing alias is refused
        (an approved replacement removes the old one first, inside consume)."""
        if not (self._is_agent() or self.env.user.has_group("mcp_guard.group_mcp_user")):
            raise AccessError(self.env._("Only the MCP agent or MCP users can register connections."))
        if not isinstance(values, dict):
            raise UserError(self.env._("values must be an object"))
        unknown = set(values) - AGENT_KEYS
        if unknown:
            raise UserError(self.env._("Unknown connection keys: %s", ", ".join(sorted(unknown))))
        alias = values.get("alias")
        if not alias or not isinstance(alias, str):
            raise UserError(self.env._("A connection needs an alias."))
        protocol = (values.get("protocol") or "xmlrpc").lower()
        if protocol not in dict(PROTOCOLS):
            raise UserError(
                self.env._("Unknown protocol %(p)s (use %(allowed)s)", p=protocol, allowed=", ".join(dict(PROTOCOLS)))
            )
        existing = self.sudo().with_context(active_test=False).search(
            [("alias", "=", alias), ("owner_id", "=", self.env.uid)], limit=1
        )
        if existing:
            raise UserError(
                self.env._("The alias %s already exists: replacing it needs an approved odoo_connect request.", alias)
            )
        vals = {
            "alias": alias,
            "url": values.get("url"),
            "db": values.get("db"),
            "login": values.get("login"),
            "protocol": protocol,
            "owner_id": self.env.uid,
            "company_id": self.env.company.id,
        }
        for secret in ("password", "api_key"):
            if values.get(secret):
                vals[secret] = values[secret]
        self.create(vals)
        return {"alias": alias, "created": True}
