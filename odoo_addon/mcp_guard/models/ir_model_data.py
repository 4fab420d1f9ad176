from odoo import models

from .ir_model import MODULE, loader_running, refuse_schema_change

# the records that own the add-on's schema: re-pointing or removing their external ids would let
# another module's uninstall drop the add-on's tables and columns, or orphan them
SCHEMA_MODELS = frozenset({
    "ir.model", "ir.model.fields", "ir.model.fields.selection", "ir.model.constraint", "ir.model.relation",
})


class IrModelData(models.Model):
    """The external ids of the add-on's schema are changed only by the module loader (see
    ir_model.py)."""

    _inherit = "ir.model.data"

    def _check_mcp_guard_schema_xmlids(self):
        if loader_running(self.env):
            return
        for rec in self:
            if rec.module == MODULE and rec.model in SCHEMA_MODELS:
                refuse_schema_change(self.env, self.env._("External id %s", rec.complete_name))

    def unlink(self):
        self._check_mcp_guard_schema_xmlids()
        return super().unlink()

    def write(self, vals):
        self._check_mcp_guard_schema_xmlids()
        return super().write(vals)
