from odoo import models

from .mcp_guard_common import refuse_trail_author_change, trail_authors


class ResPartner(models.Model):
    _inherit = "res.partner"

    def unlink(self):
        # in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14); the
        # author of a trail message is kept, not set to nobody (mail.message.author_id is
        # ondelete="set null")
        refuse_trail_author_change(self.env, trail_authors(self.env, self))
        return super().unlink()
