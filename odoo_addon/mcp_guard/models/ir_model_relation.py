from odoo import models

from .ir_model import MODULE, is_guard_model, loader_running, refuse_schema_change


class IrModelRelation(models.Model):
    """The rows that own the add-on's many2many tables are changed only by the module loader
    (see ir_model.py)."""

    _inherit = "ir.model.relation"

    def _check_mcp_guard_relation(self):
        if loader_running(self.env):
            return
        for rec in self:
            if rec.module.name == MODULE or is_guard_model(self.env, rec.model.model):
                refuse_schema_change(self.env, self.env._("Relation table %s", rec.name))

    def unlink(self):
        self._check_mcp_guard_relation()
        return super().unlink()

    def write(self, vals):
        self._check_mcp_guard_relation()
        return super().write(vals)
