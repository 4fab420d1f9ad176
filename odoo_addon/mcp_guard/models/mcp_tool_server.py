from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

from .compat import Constraint
from .mcp_guard_common import (
    committed_param,
    DEFAULT_RISK_APPROVAL,
    RISK_CLASSES,
    is_internal_write,
    sort_classes,
    valid_server_name,
)

RISK_APPROVAL_PARAM = "mcp_guard.risk_require_approval"
# "none" is stored for an explicitly empty list: an empty or unknown value means the default
NO_CLASS_TOKEN = "none"
# per-server setting -> the classes that need approval (inherit: the global list)
SERVER_APPROVAL_CLASSES = {
    "destructive_critical": ("destructive", "critical"),
    "critical": ("critical",),
    "all_changes": ("write", "destructive", "critical"),
    "none": (),
}
RISK_APPROVAL_SELECTION = [
    ("inherit", "As the global setting"),
    ("destructive_critical", "Destructive and critical tools"),
    ("critical", "Critical tools only"),
    ("all_changes", "Every change (write, destructive, critical)"),
    ("none", "No approval by risk"),
]


class McpToolServer(models.Model):
    """A front-end server name under which tools are reported, with its risk setting."""

    _name = "mcp.tool.server"
    _description = "MCP Tool Server"
    _inherit = ["mail.thread"]
    _order = "name, id"

    name = fields.Char("Server", required=True, readonly=True, tracking=True)
    risk_approval = fields.Selection(
        RISK_APPROVAL_SELECTION,
        "Approval by risk",
        required=True,
        default="inherit",
        tracking=True,
        help="Which risk classes of this server's tools need an approval when no exact-name rule names the tool.",
    )
    tool_ids = fields.One2many("mcp.tool", "server_id", string="Tools")
    tool_count = fields.Integer(compute="_compute_tool_count")

    _name_unique = Constraint("UNIQUE (name)", "There is already a catalog server with this name.")

    @api.constrains("name")
    def _check_name(self):
        for server in self:
            if not valid_server_name(server.name):
                raise ValidationError(self.env._("A server name is 1 to 200 printable characters."))

    @api.depends("tool_ids")
    def _compute_tool_count(self):
        counts = dict(self.env["mcp.tool"]._read_group(
            [("server_id", "in", self.ids)], ["server_id"], ["__count"]
        ))
        for server in self:
            server.tool_count = counts.get(server, 0)

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal_write():
            self.env["mcp.tool.rule"]._check_manager()
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal_write():
            self.env["mcp.tool.rule"]._check_manager()
            if "name" in vals:
                raise AccessError(self.env._("A catalog server keeps the name its front-end reports."))
        return super().write(vals)

    # ------------------------------------------------------------------
    # Risk settings (policy document, "risk" key)
    # ------------------------------------------------------------------
    @api.model
    def _get_global_require_approval(self):
        """The global classes needing approval; anything unreadable means the default."""
        value = committed_param(self.env, RISK_APPROVAL_PARAM) or ""
        tokens = [token.strip() for token in value.split(",")]
        if tokens == [NO_CLASS_TOKEN]:
            return []
        if not value.strip() or any(token not in RISK_CLASSES for token in tokens):
            # an unknown stored value must never weaken the policy
            return list(DEFAULT_RISK_APPROVAL)
        return sort_classes(tokens)

    @api.model
    def _set_global_require_approval(self, classes):
        self.env["mcp.tool.rule"]._check_manager()
        classes = sort_classes(classes)
        value = ",".join(classes) if classes else NO_CLASS_TOKEN
        self.env["ir.config_parameter"].sudo().set_param(RISK_APPROVAL_PARAM, value)

    def _require_approval_classes(self, global_classes=None):
        """Classes needing approval for this server (the global list when inheriting)."""
        self.ensure_one()
        if self.risk_approval in SERVER_APPROVAL_CLASSES:
            return list(SERVER_APPROVAL_CLASSES[self.risk_approval])
        if global_classes is None:
            global_classes = self._get_global_require_approval()
        return list(global_classes)

    @api.model
    def _setting_for_classes(self, classes):
        """The risk_approval value for a list of classes, or None when it has none."""
        wanted = tuple(sort_classes(classes))
        for setting, listed in SERVER_APPROVAL_CLASSES.items():
            if listed == wanted:
                return setting
        return None

    @api.model
    def _build_risk(self):
        """The ``risk`` key of the policy document, sorted for a stable etag."""
        servers = self.sudo().search([("risk_approval", "!=", "inherit")], order="name")
        overrides = []
        tools = self.env["mcp.tool"].sudo().search([("risk_override", "!=", False)])
        for tool in tools.sorted(lambda t: (t.server, t.name)):
            entry = {"server": tool.server, "tool": tool.name, "class": tool.risk_override}
            if tool.risk_override_reason:
                entry["reason"] = tool.risk_override_reason
            overrides.append(entry)
        return {
            "require_approval": self._get_global_require_approval(),
            "servers": {
                server.name: {"require_approval": server._require_approval_classes()} for server in servers
            },
            "overrides": overrides,
        }
