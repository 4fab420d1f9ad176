from odoo import models
from odoo.exceptions import UserError

MODULE = "mcp_guard"


class IrModuleModule(models.Model):
    """Uninstalling the add-on drops every connection with its tables: no path ends a
    connection but an approved disconnect (DESIGN.md invariant 5), so an uninstall waits until
    none is left in use. Checked in both steps (marking and removing), whatever the context."""

    _inherit = "ir.module.module"

    def _check_mcp_guard_uninstall(self, modules):
        if MODULE not in modules.mapped("name"):
            return
        Connection = self.env["mcp.connection"].sudo().with_context(active_test=False)
        live = Connection.search([("state", "!=", "disconnected")])
        if live:
            names = ", ".join(live[:10].mapped("alias")) + (", ..." if len(live) > 10 else "")
            raise UserError(self.env._(
                "MCP Guard cannot be uninstalled while %(count)s connection(s) are not ended (%(names)s): "
                "uninstalling would remove them without approval. End each one first: \"Request disconnect\" "
                "on the connection, approved by another person (or the agent's odoo_disconnect); then uninstall.",
                count=len(live), names=names,
            ))

    def button_uninstall(self):
        self._check_mcp_guard_uninstall(self | self.downstream_dependencies())
        return super().button_uninstall()

    def module_uninstall(self):
        self._check_mcp_guard_uninstall(self)
        return super().module_uninstall()
