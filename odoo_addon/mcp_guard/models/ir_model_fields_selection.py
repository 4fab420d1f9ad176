from odoo import models

from .ir_model import is_guard_field, loader_running, refuse_schema_change


class IrModelFieldsSelection(models.Model):
    """Removing a selection value of an add-on field rewrites every record holding it (a
    connection's state, a request's decision): only the module loader does it (see ir_model.py)."""

    _inherit = "ir.model.fields.selection"

    def _check_mcp_guard_selection(self):
        if loader_running(self.env):
            return
        for rec in self:
            field = rec.field_id
            if field.state != "manual" and is_guard_field(self.env, field.model, field.name):
                refuse_schema_change(self.env, self.env._(
                    "Value %(value)s of field %(model)s.%(field)s", value=rec.value, model=field.model, field=field.name))

    def unlink(self):
        self._check_mcp_guard_selection()
        return super().unlink()

    def write(self, vals):
        if set(vals) & {"value", "field_id"}:
            self._check_mcp_guard_selection()
        return super().write(vals)
