from odoo import api, models

from .mcp_guard_common import is_trusted_message


class MailTrackingValue(models.Model):
    """A tracking value ("State: Pending → Approved") of a trail message is written only with
    its message (``mail.message`` guards that): never added, changed or removed on its own."""

    _inherit = "mail.tracking.value"

    def _guard_trail(self, message_ids):
        messages = self.env["mail.message"].sudo().browse(message_ids).exists()
        if not is_trusted_message() and messages._on_trail():
            raise messages._trail_refusal()

    @api.model_create_multi
    def create(self, vals_list):
        self._guard_trail([vals["mail_message_id"] for vals in vals_list if vals.get("mail_message_id")])
        return super().create(vals_list)

    def write(self, vals):
        ids = self.sudo().mapped("mail_message_id").ids
        if vals.get("mail_message_id"):
            ids.append(vals["mail_message_id"])
        self._guard_trail(ids)
        return super().write(vals)

    def unlink(self):
        if not self.env.su:  # in unlink itself: _force_unlink skips @api.ondelete (invariant 14)
            self._guard_trail(self.sudo().mapped("mail_message_id").ids)  # pylint: disable=no-raise-unlink
        return super().unlink()
