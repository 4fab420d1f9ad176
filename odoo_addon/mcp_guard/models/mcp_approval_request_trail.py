from odoo import models
from odoo.exceptions import AccessError

from .mcp_guard_common import is_internal_write, is_own_message, own_messages

# what a person (or the agent) may set when posting on a request: a message of their own; the
# other fields of a message (its date, a guest author, tracking values, ...) are the trail's
CLIENT_MESSAGE_KEYS = frozenset({
    "body", "subject", "message_type", "parent_id", "subtype_xmlid", "subtype_id", "partner_ids",
    "attachments", "attachment_ids", "body_is_html", "email_add_signature", "author_id", "email_from",
})


class McpApprovalRequestTrail(models.Model):
    """The chatter of a request is its trail: who filed, approved, rejected, consumed. The
    requester (and the connection's owner) may comment on it, as themselves, but not write the
    trail's own entries: a message authored by someone else, with the add-on's subtypes
    (filed, approved, rejected), as a notification, or with tracking values.

    Only the add-on's own code posts those (``own_messages()`` or ``internal_write()``: flags
    set in Python, which no client and no context key can set); Odoo's own creation and
    tracking messages are posted inside them. ``sudo()`` is no such flag: Odoo's chatter
    route posts a client's message, its type and subtype included, as superuser."""

    # its own file, beside the request's model, as the target preview is
    _inherit = "mcp.approval.request"  # pylint: disable=consider-merging-classes-inherited

    def _post_own(self, **kwargs):
        """message_post for the add-on's own entries in the trail."""
        with own_messages():
            return self.message_post(**kwargs)

    def _message_track(self, *args, **kwargs):
        # the tracking of a state change (subtype approved / rejected) is the trail's own
        with own_messages():
            return super()._message_track(*args, **kwargs)

    def _check_client_author(self, author_id, email_from):
        partner = self.env.user.partner_id
        if author_id not in (None, False, partner.id) or (
                email_from not in (None, False) and email_from not in (partner.email, partner.email_formatted)):
            raise AccessError(self.env._("You can only post on an approval request as yourself."))

    def message_post(self, **kwargs):
        if is_own_message() or is_internal_write():
            return super().message_post(**kwargs)
        self._check_client_author(kwargs.get("author_id"), kwargs.get("email_from"))
        fields = self.env["mail.message"]._fields
        extra = sorted(key for key in kwargs if key in fields and key not in CLIENT_MESSAGE_KEYS)
        if extra:
            raise AccessError(self.env._(
                "A message on an approval request cannot set %s: that is the request's own trail.",
                ", ".join(extra)))
        kwargs.setdefault("message_type", "comment")
        if kwargs["message_type"] != "comment":
            raise AccessError(self.env._(
                "Only comments can be posted on an approval request; its notifications are its own trail."))
        subtype = self.env["mail.message.subtype"]
        if kwargs.get("subtype_xmlid"):
            subtype = self.env.ref(kwargs["subtype_xmlid"], raise_if_not_found=False) or subtype
        elif kwargs.get("subtype_id"):
            subtype = subtype.browse(kwargs["subtype_id"])
        if subtype and subtype._name == "mail.message.subtype" and subtype.sudo().res_model == self._name:
            raise AccessError(self.env._(
                "The subtype %s is the request's own trail (filed, approved, rejected): use a comment or a note.",
                subtype.sudo().name))
        return super().message_post(**kwargs)

    def message_notify(self, **kwargs):
        if not (is_own_message() or is_internal_write()):
            self._check_client_author(kwargs.get("author_id"), kwargs.get("email_from"))
        return super().message_notify(**kwargs)
