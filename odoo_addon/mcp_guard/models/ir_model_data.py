from odoo import api, models

from .ir_model import MODULE, loader_running, refuse_schema_change

# the records that own the add-on's schema: re-pointing or removing their external ids would let
# another module's uninstall drop the add-on's tables and columns, or orphan them
SCHEMA_MODELS = frozenset({
    "ir.model", "ir.model.fields", "ir.model.fields.selection", "ir.model.constraint", "ir.model.relation",
})
# the records the add-on's checks find by external id (its groups above all: env.ref of a removed
# group_mcp_agent lifted "the agent keeps its connections", outside round 19): removing or
# re-pointing their ids, or the records themselves (whose unlink removes the id), would switch a
# check off
SECURITY_MODELS = frozenset({
    "res.groups", "res.groups.privilege", "ir.module.category", "ir.model.access", "ir.rule",
    "mail.activity.type", "mail.message.subtype", "ir.cron",
})
PROTECTED_MODELS = SCHEMA_MODELS | SECURITY_MODELS


class IrModelData(models.Model):
    """The external ids of the add-on's schema are changed only by the module loader (see
    ir_model.py)."""

    _inherit = "ir.model.data"

    def _check_mcp_guard_schema_xmlids(self):
        if loader_running(self.env):
            return
        for rec in self:
            if rec.module == MODULE and rec.model in PROTECTED_MODELS:
                refuse_schema_change(self.env, self.env._("External id %s", rec.complete_name))

    def _check_mcp_guard_namespace(self, vals_list):
        """Nobody but the module loader makes an id in the add-on's namespace, or moves one into
        it: env.ref("mcp_guard....") must find what the module made."""
        if loader_running(self.env):
            return
        for vals in vals_list:
            if vals.get("module") == MODULE:
                # the id made outside the call: babel's extraction of a translated term fails on
                # an f-string among its arguments (the file's later terms left out of the .pot)
                xmlid = f"{MODULE}.{vals.get('name')}"
                refuse_schema_change(self.env, self.env._("External id %(xmlid)s", xmlid=xmlid))

    @api.model_create_multi
    def create(self, vals_list):
        self._check_mcp_guard_namespace(vals_list)
        return super().create(vals_list)

    def unlink(self):
        self._check_mcp_guard_schema_xmlids()
        return super().unlink()

    def write(self, vals):
        self._check_mcp_guard_schema_xmlids()
        self._check_mcp_guard_namespace([vals])
        return super().write(vals)
