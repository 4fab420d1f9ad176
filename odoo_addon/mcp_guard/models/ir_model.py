"""The add-on's schema (its models, columns, constraints, tables, selection values) is changed
only by the module loader: an install, an upgrade, an uninstall, which run while the registry is
being built (``registry.ready`` is False). A call from a client (RPC, UI) always meets a ready
registry; whatever its context says (``_force_unlink`` included), it cannot drop a table or a
column of the add-on: that would end or replace connections and erase evidence without an
approved request (DESIGN.md invariants 5 and 14)."""

from odoo import models
from odoo.exceptions import UserError

MODULE = "mcp_guard"


def loader_running(env):
    """True only while the module loader builds the registry (install, upgrade, uninstall);
    never a client's call, which only ever meets a ready registry. Not a context key."""
    return not env.registry.ready


def is_guard_model(env, model_name):
    """The model is defined by the add-on (its wizards included)."""
    model = env.registry.get(model_name)
    return model is not None and getattr(model, "_original_module", None) == MODULE


def is_guard_field(env, model_name, field_name):
    """A column of an add-on model (inherited ones too) or one the add-on adds to another model."""
    if is_guard_model(env, model_name):
        return True
    model = env.registry.get(model_name)
    field = model._fields.get(field_name) if model is not None else None
    return field is not None and getattr(field, "_module", None) == MODULE


def refuse_schema_change(env, what):
    raise UserError(env._(
        "MCP Guard: %(what)s belongs to the MCP Guard add-on and is changed only by installing, "
        "upgrading or uninstalling the module, whatever the context of the call.",
        what=what,
    ))


class IrModel(models.Model):
    _inherit = "ir.model"

    def _check_mcp_guard_model(self):
        if loader_running(self.env):
            return
        for rec in self:
            if is_guard_model(self.env, rec.model):
                refuse_schema_change(self.env, self.env._("Model %s", rec.model))

    def unlink(self):
        self._check_mcp_guard_model()
        return super().unlink()

    def write(self, vals):
        # field_id commands (2/3/5/6) unlink or detach columns: ir.model.fields.unlink checks those;
        # the model's own storage keys are refused here even where Odoo refuses them too
        if set(vals) & {"model", "state", "transient", "field_id", "order", "inherited_model_ids"}:
            self._check_mcp_guard_model()
        return super().write(vals)
