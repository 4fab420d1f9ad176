from odoo import models
from odoo.exceptions import AccessError, UserError

from .mcp_guard_common import is_trusted_message, mail_delivery, own_messages, thread_message

# what a person (or the agent) may set when posting on a trail: a message of their own; the
# other fields of a message (its date, a guest author, tracking values, ...) are the trail's
CLIENT_MESSAGE_KEYS = frozenset({
    "body", "subject", "message_type", "parent_id", "subtype_xmlid", "subtype_id", "partner_ids",
    "attachments", "attachment_ids", "body_is_html", "email_add_signature", "author_id", "email_from",
})


class McpGuardChatter(models.AbstractModel):
    """The chatter of the add-on's models (TRAIL_MODELS, which inherit this instead of
    mail.thread: their overrides then come before every other module's) is their trail: who filed, approved,
    rejected, consumed a request; who changed or ended a connection; who accepted a tool's
    definition. A person (or the agent) may comment there, as themselves, but not write the
    trail's own entries: a message authored by someone else, with the model's own subtypes
    (filed, approved, rejected), as a notification, or with tracking values.

    Only the add-on's own code posts those (``own_messages()`` or ``internal_write()``: flags
    set in Python, which no client and no context key can set); Odoo's own creation and
    tracking messages are posted inside them. ``sudo()`` is no such flag: Odoo's chatter
    route posts a client's message, its type and subtype included, as superuser. A message
    reaches the database only through here (``mail.message`` refuses any other way in)."""

    _name = "mcp.guard.chatter"
    _description = "MCP Guard trail (chatter)"
    # mcp.guard.values before mail.thread: a value is checked before the chatter reads it
    _inherit = ["mcp.guard.values", "mail.thread"]

    def _post_own(self, **kwargs):
        """message_post for the add-on's own entries in the trail."""
        with own_messages():
            return self.message_post(**kwargs)

    def _message_track(self, *args, **kwargs):
        # the tracking of a field change (a request's state: subtype approved / rejected) is
        # the trail's own
        with own_messages():
            return super()._message_track(*args, **kwargs)

    def _message_create(self, values_list):
        # reached from message_post / message_notify (checked below) and _message_log (server
        # code only): the one way a message of a trail model is created
        with thread_message():
            return super()._message_create(values_list)

    def _message_update_content(self, message, *args, **kwargs):  # pylint: disable=method-required-super
        # the chatter's "edit" and "delete" of a comment (/mail/message/update_content, which
        # lets an administrator edit anyone's): a comment on a trail stays as it was posted, for
        # its author and administrators too; a correction is a new comment
        raise UserError(self.env._(
            "Messages on %s are its trail: they cannot be edited or deleted, by their author or an "
            "administrator; post a new comment instead.", self._description))

    def _notify_thread(self, message, *args, **kwargs):
        # Odoo's e-mail of a trail message (mail.mail) writes its subject onto the message
        with mail_delivery():
            return super()._notify_thread(message, *args, **kwargs)

    def _check_client_author(self, author_id, email_from):
        partner = self.env.user.partner_id
        if author_id not in (None, False, partner.id) or (
                email_from not in (None, False) and email_from not in (partner.email, partner.email_formatted)):
            raise AccessError(self.env._("You can only post on %s as yourself.", self._description))

    def _check_mcp_recipients(self, partner_ids):
        """Only MCP Guard's users are mentioned on or follow a trail: a person outside its groups,
        or a contact (e-mailed), would receive what the trail says, e.g. which connection is to
        be removed, of which URL and database (attack 17, finding 10)."""
        if not partner_ids:
            return
        if not isinstance(partner_ids, (list, tuple)) or not all(
                isinstance(pid, int) and not isinstance(pid, bool) for pid in partner_ids):
            raise UserError(self.env._("partner_ids must be a list of partner ids."))
        partners = self.env["res.partner"].sudo().browse(partner_ids).exists()
        outside = partners.filtered(lambda partner: not any(
            user.has_group("mcp_guard.group_mcp_user") or user.has_group("mcp_guard.group_mcp_agent")
            for user in partner.user_ids))
        if outside:
            raise UserError(self.env._(
                "%(names)s cannot be notified on %(model)s: only MCP Guard's users are mentioned on "
                "or follow its trail.", names=", ".join(outside.mapped("display_name")), model=self._description))

    def message_subscribe(self, partner_ids=None, subtype_ids=None):
        if not is_trusted_message():
            self._check_mcp_recipients(partner_ids)
        return super().message_subscribe(partner_ids=partner_ids, subtype_ids=subtype_ids)

    def message_post(self, **kwargs):
        if is_trusted_message():
            return super().message_post(**kwargs)
        self._check_client_author(kwargs.get("author_id"), kwargs.get("email_from"))
        self._check_mcp_recipients(kwargs.get("partner_ids"))
        fields = self.env["mail.message"]._fields
        extra = sorted(key for key in kwargs if key in fields and key not in CLIENT_MESSAGE_KEYS)
        if extra:
            raise AccessError(self.env._(
                "A message on %(model)s cannot set %(fields)s: that is its own trail.",
                model=self._description, fields=", ".join(extra)))
        kwargs.setdefault("message_type", "comment")
        if kwargs["message_type"] != "comment":
            raise AccessError(self.env._(
                "Only comments can be posted on %s; its notifications are its own trail.", self._description))
        subtype = self.env["mail.message.subtype"]
        if kwargs.get("subtype_xmlid"):
            subtype = self.env.ref(kwargs["subtype_xmlid"], raise_if_not_found=False) or subtype
        elif kwargs.get("subtype_id"):
            subtype = subtype.browse(kwargs["subtype_id"])
        if subtype and subtype._name == "mail.message.subtype" and subtype.sudo().res_model == self._name:
            raise AccessError(self.env._(
                "The subtype %s is the trail's own (filed, approved, rejected): use a comment or a note.",
                subtype.sudo().name))
        return super().message_post(**kwargs)

    def message_notify(self, **kwargs):
        if not is_trusted_message():
            self._check_client_author(kwargs.get("author_id"), kwargs.get("email_from"))
            self._check_mcp_recipients(kwargs.get("partner_ids"))
        return super().message_notify(**kwargs)
