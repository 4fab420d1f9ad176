from odoo import api, models
from odoo.exceptions import AccessError

from .mcp_guard_common import TRAIL_MODELS, is_mail_delivery, is_trusted_message, mail_delivery

# What a client may still write on a message of a trail (an allow-list: everything else is what
# the entry says, who wrote it, whom it reached, what it carries: its body, author, attachments,
# recipients, From, subject, Message-Id, internal flag, ...): whether it is starred, a flag of
# the reader's own (Odoo's toggle_message_starred writes it, as superuser). Not pinned_at: Odoo
# pins only a channel's messages, and by SQL, so nothing of Odoo writes it on a trail; a pin
# would lift one entry above the others. Read, done, needaction are mail.notification's.
CLIENT_WRITABLE_FIELDS = frozenset({"starred_partner_ids"})
# What Odoo's delivery of a trail message by e-mail writes onto it (mail.mail inherits
# mail.message): the e-mail's subject when it is queued, its Message-Id once sent
DELIVERY_FIELDS = frozenset({"subject", "message_id"})


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
        model = vals.get("model")
        if not is_trusted_message() and (
                (isinstance(model, str) and model in TRAIL_MODELS) or self._on_trail()):
            allowed = CLIENT_WRITABLE_FIELDS | (DELIVERY_FIELDS if is_mail_delivery() else frozenset())
            if set(vals) - allowed:
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

    @api.depends_context("lang", "uid")
    @api.depends(lambda self: ("model", self._rec_name) if self._rec_name else ("model",))
    def _compute_display_name(self):
        # Odoo shows a many2one's name as superuser, whoever reads the row that points to the
        # message (a mail.notification, a reaction, a link preview): a trail message's subject or
        # record name ("Olga Owner asks to remove connection prod1 (...)") is for MCP Guard's
        # users only (attack 17, finding 10)
        super()._compute_display_name()
        user = self.env.user
        if user._is_superuser() or user.has_group("mcp_guard.group_mcp_user") or user.has_group(
                "mcp_guard.group_mcp_agent"):
            return
        for message in self:
            if message.sudo().model in TRAIL_MODELS:
                message.display_name = self.env._("MCP Guard message")


class MailMail(models.Model):
    """An e-mail of a trail message writes its Message-Id onto that message once sent
    (``mail.mail`` inherits ``mail.message``): the one field ``_send`` may write there."""

    _inherit = "mail.mail"

    def _send(self, *args, **kwargs):
        with mail_delivery():
            return super()._send(*args, **kwargs)
