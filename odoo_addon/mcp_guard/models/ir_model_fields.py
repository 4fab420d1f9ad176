from odoo import models

from .ir_model import is_guard_field, loader_running, refuse_schema_change

# keys of ir.model.fields that change how or where a column is stored (or whether it exists)
STORAGE_KEYS = frozenset({
    "name", "model", "model_id", "ttype", "store", "relation", "relation_field", "relation_table",
    "column1", "column2", "related", "compute", "depends", "state", "required", "index", "copied",
    "on_delete", "selection_ids", "translate", "size", "readonly",
})


class IrModelFields(models.Model):
    """A column of the add-on is dropped or altered only by the module loader (see ir_model.py):
    ``_force_unlink`` from a client no longer drops mcp_connection.url."""

    _inherit = "ir.model.fields"

    def _check_mcp_guard_fields(self):
        if loader_running(self.env):
            return
        for rec in self:
            if rec.state != "manual" and is_guard_field(self.env, rec.model, rec.name):
                refuse_schema_change(self.env, self.env._("Field %(model)s.%(field)s", model=rec.model, field=rec.name))

    def unlink(self):
        self._check_mcp_guard_fields()
        return super().unlink()

    def write(self, vals):
        if set(vals) & STORAGE_KEYS:
            self._check_mcp_guard_fields()
        return super().write(vals)
