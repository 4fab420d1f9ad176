from odoo import api, models
from odoo.exceptions import AccessError

from .mcp_guard_common import TRAIL_MODELS, is_trusted_message

# what makes a message an entry of a trail: who wrote it, as what, about which record, when;
# its tracking values; and what it says
# (not its subject: Odoo's notification e-mail of a comment writes it through mail.mail)
TRAIL_FIELDS = frozenset({
    "author_id", "author_guest_id", "subtype_id", "message_type", "model", "res_id", "date",
    "tracking_value_ids", "body", "create_uid", "create_date",
})


class MailMessage(models.Model):
    """A message of a trail model (TRAIL_MODELS) is written only by ``mail.thread`` (after its
    checks: a client's own comment) or by the add-on: a message created, rewritten, moved or
    deleted directly would forge the trail ("Request approved" signed by an approver on a
    request still pending)."""

    _inherit = "mail.message"

    def _trail_refusal(self):
        return AccessError(self.env._(
            "The messages of MCP Guard's records are their trail: post a comment in the chatter; "
            "they cannot be created, changed or deleted directly."))

    @api.model_create_multi
    def create(self, vals_list):
        if not is_trusted_message() and any(vals.get("model") in TRAIL_MODELS for vals in vals_list):
            raise self._trail_refusal()
        return super().create(vals_list)

    def write(self, vals):
        if not is_trusted_message() and TRAIL_FIELDS & set(vals) and (
                vals.get("model") in TRAIL_MODELS or self._on_trail()):
            raise self._trail_refusal()
        return super().write(vals)

    def unlink(self):
        # sudo: Odoo's own cleanup (a record's messages go with it, an uninstall); a client's
        # unlink over RPC never runs as superuser
        if not self.env.su and not is_trusted_message() and self._on_trail():
            # in unlink itself, not @api.ondelete: _force_unlink skips those (invariant 14)
            raise self._trail_refusal()  # pylint: disable=no-raise-unlink
        return super().unlink()

    def _on_trail(self):
        return any(model in TRAIL_MODELS for model in self.sudo().mapped("model"))
