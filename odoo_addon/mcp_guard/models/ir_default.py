from odoo import api, models
from odoo.exceptions import UserError

from .ir_model import is_guard_field, is_guard_model, loader_running


class IrDefault(models.Model):
    """No user default (``ir.default``: Settings > Technical, ``ir.default.set`` over RPC, by
    any user for themselves) on the add-on's fields: ``create`` would take it as a value, and a
    request filed by an agent was born approved, "decided" by an approver who never saw it
    (outside round 33). Defaults come from the add-on's code alone."""

    _inherit = "ir.default"

    @api.model
    def _check_mcp_guard_default(self, field_id):
        if loader_running(self.env) or not field_id:
            return
        field = self.env["ir.model.fields"].sudo().browse(field_id)
        if field.exists() and is_guard_field(self.env, field.model, field.name):
            raise UserError(self.env._(
                "MCP Guard: no default value may be set on %(model)s.%(field)s, a field of the MCP "
                "Guard add-on.", model=field.model, field=field.name))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_mcp_guard_default(vals.get("field_id"))
        return super().create(vals_list)

    def write(self, vals):
        for default in self:
            self._check_mcp_guard_default(default.field_id.id)
        self._check_mcp_guard_default(vals.get("field_id"))
        return super().write(vals)

    @api.model
    def _get_model_defaults(self, model_name, condition=False):
        # one set before the add-on was installed, or in SQL, is not taken either
        if is_guard_model(self.env, model_name):
            return {}
        defaults = super()._get_model_defaults(model_name, condition)
        return {name: value for name, value in defaults.items()
                if not is_guard_field(self.env, model_name, name)}
