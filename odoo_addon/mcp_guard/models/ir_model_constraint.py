from odoo import models

from .ir_model import MODULE, is_guard_model, loader_running, refuse_schema_change


class IrModelConstraint(models.Model):
    """Unlinking a constraint row drops the PostgreSQL constraint (a unique alias, a foreign
    key): the add-on's are dropped only by the module loader (see ir_model.py)."""

    _inherit = "ir.model.constraint"

    def _check_mcp_guard_constraint(self):
        if loader_running(self.env):
            return
        for rec in self:
            if rec.module.name == MODULE or is_guard_model(self.env, rec.model.model):
                refuse_schema_change(self.env, self.env._("Constraint %s", rec.name))

    def unlink(self):
        self._check_mcp_guard_constraint()
        return super().unlink()

    def write(self, vals):
        self._check_mcp_guard_constraint()
        return super().write(vals)
