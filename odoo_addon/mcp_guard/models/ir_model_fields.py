from odoo import api, models
from odoo.exceptions import UserError

from .ir_model import is_guard_field, is_guard_model, loader_running, refuse_schema_change

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

    @api.model
    def _mcp_guard_path_problem(self, model_name, path):
        """The add-on's model that the dotted ``path`` from ``model_name`` passes through, or
        None (resolved in the registry; a part it cannot resolve ends the walk)."""
        for part in (path or "").split("."):
            model = self.env.registry.get(model_name)
            field = model._fields.get(part.strip()) if model is not None else None
            comodel = getattr(field, "comodel_name", None) if field is not None else None
            if not comodel:
                return None
            if is_guard_model(self.env, comodel):
                return comodel
            model_name = comodel
        return None

    @api.model
    def _mcp_guard_tables(self):
        """The tables of the add-on's models and of its many2many fields (on any model)."""
        tables = set()
        for name in self.env.registry:
            model = self.env.registry[name]
            guard_model = is_guard_model(self.env, name)
            if guard_model and not model._abstract:
                tables.add(model._table)
            for field in model._fields.values():
                if field.type == "many2many" and (guard_model or getattr(field, "_module", None) == "mcp_guard"):
                    tables.add(field.relation)
        return tables

    @api.model
    def _check_mcp_guard_manual(self, vals):
        """A manual field (an administrator's: Settings > Technical, or RPC) runs its compute in
        the add-on's own writes (states, decisions, ending a connection) and reads the add-on's
        columns as superuser: none may live on the add-on's models, point to one, or depend or
        relate through one (outside round, administrator). Only the module loader adds them."""
        if loader_running(self.env) or vals.get("state", "manual") != "manual":
            return
        model_name = vals.get("model")
        if not model_name and vals.get("model_id"):
            model_name = self.env["ir.model"].sudo().browse(vals["model_id"]).model
        name = vals.get("name")
        what = self.env._("Field %(model)s.%(field)s", model=model_name, field=name)
        if model_name and is_guard_model(self.env, model_name):
            refuse_schema_change(self.env, what)
        through = vals.get("relation") if vals.get("relation") and is_guard_model(self.env, vals["relation"]) else None
        if vals.get("relation_table") and vals["relation_table"] in self._mcp_guard_tables():
            # a many2many through the add-on's own table writes and deletes its rows (outside
            # round 33: connections deleted, votes forged, audit rows erased)
            through = vals["relation_table"]
        for path in [*(vals.get("depends") or "").split(","), vals.get("related") or ""]:
            through = through or self._mcp_guard_path_problem(model_name, path)
        if through:
            raise UserError(self.env._(
                "MCP Guard: %(what)s would point to, depend on or relate through %(model)s, a model of the "
                "MCP Guard add-on: only installing or upgrading the module adds such a field.",
                what=what, model=through))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_mcp_guard_manual(vals)
        return super().create(vals_list)

    def unlink(self):
        self._check_mcp_guard_fields()
        return super().unlink()

    def write(self, vals):
        if set(vals) & STORAGE_KEYS:
            self._check_mcp_guard_fields()
            for rec in self:
                self._check_mcp_guard_manual({
                    **{key: rec[key] for key in ("name", "model", "relation", "relation_table", "depends", "related",
                                                 "state")},
                    **{key: value for key, value in vals.items() if key != "model_id"},
                    **({"model": self.env["ir.model"].sudo().browse(vals["model_id"]).model}
                       if vals.get("model_id") else {}),
                })
        return super().write(vals)
