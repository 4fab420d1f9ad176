from odoo import models

from .mcp_guard_common import own_messages

REQUEST_MODEL = "mcp.approval.request"


class MailActivity(models.Model):
    """The approvers' to-dos on a request are theirs: neither the requester (an agent or a
    person, who may post on its request) nor anyone else rewrites, postpones or deletes them.

    Odoo 19 lets only the assigned user (or its creator) or who may write the document change an
    activity; Odoo 18 lets whoever may post on the document (a request's requester and owner,
    ``_mail_post_access = "read"``) do so, and the creator of a person's to-dos is that person
    (they are scheduled as the requester). Here both series answer alike for the activities on
    a request: only the assigned user changes or deletes one (nobody writes a request, so on
    Odoo 19 nobody else could either); the add-on's own code works as the system (closing the
    to-dos at a decision)."""

    _inherit = "mail.activity"

    def _check_access(self, operation):
        result = super()._check_access(operation)
        if operation not in ("write", "unlink") or not self or self.env.su:
            return result
        ours = self.sudo().filtered(lambda activity: activity.res_model == REQUEST_MODEL)
        if not ours:
            return result
        forbidden = self.browse(ours.filtered(lambda activity: activity.user_id != self.env.user).ids)
        if not forbidden:
            return result
        if result:
            return (result[0] | forbidden, result[1])
        return (forbidden, lambda: forbidden._make_access_error(operation))

    def _action_done(self, *args, **kwargs):
        # Odoo's own "activity done" message on the document (posted as the system, with the
        # activities subtype): an own message of the add-on's models, not a client's post
        with own_messages():
            return super()._action_done(*args, **kwargs)
