from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .compat import Constraint
from .mcp_guard_common import is_internal_write, removal_allowed_ids
from .mcp_guard_context import trusted

PROTOCOLS = [("xmlrpc", "XML-RPC"), ("jsonrpc", "JSON-RPC"), ("json2", "JSON-2")]
AGENT_KEYS = {"alias", "url", "db", "login", "password", "api_key", "protocol"}
SECRET_GROUPS = "mcp_guard.group_mcp_manager,mcp_guard.group_mcp_agent"


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
    # secrets: only Managers and the Agent group may read or write them; never
    # tracked (chatter), never exported, never copied
    password = fields.Char(groups=SECRET_GROUPS, copy=False, exportable=False)
    api_key = fields.Char("API key", groups=SECRET_GROUPS, copy=False, exportable=False)
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

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if not is_internal_write():
                # a connection always starts connected, whatever the client sends
                vals.pop("state", None)
        # no default_state / default_owner_id from the client's context, and a chatter trail
        return super(McpConnection, trusted(self)).create(vals_list)

    def write(self, vals):
        # Ending a connection (archive, state change) is only possible through
        # the consumption of an approved request, which sets an in-process flag.
        if not is_internal_write():
            if "state" in vals:
                raise UserError(self.env._("The state of a connection cannot be written directly."))
            if "active" in vals and not vals["active"] and any(self.mapped("active")):
                raise UserError(
                    self.env._("A connection can only be ended by consuming an approved disconnect request.")
                )
        if "owner_id" in vals and not self.env.user.has_group("mcp_guard.group_mcp_manager"):
            # handing a connection to the agent decides what it will use: managers only
            raise AccessError(self.env._("Only MCP Guard managers can change the owner of a connection."))
        # tracked whatever the context says: a changed alias, URL, database or login
        # stays visible in the chatter (and voids the requests filed before it)
        return super(McpConnection, trusted(self)).write(vals)

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
