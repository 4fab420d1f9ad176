from odoo import models
from odoo.exceptions import AccessError

from .mcp_guard_common import TRAIL_MODELS, is_trusted_message


class IrAttachment(models.Model):
    """A file on a trail (attached to a record of TRAIL_MODELS, or to a message of one) is part
    of it: what a commenter showed stays as it was shown. Nobody rewrites or deletes it, neither
    the record's owner (Odoo gives them the attachment's write access) nor an administrator
    (attack 17, finding 9). Anyone may still add files (a comment with attachments)."""

    _inherit = "ir.attachment"

    def _trail_ids(self):
        """The ids among these attachments that are on a trail."""
        ids = [i for i in self.ids if isinstance(i, int)]
        if not ids:
            return set()
        self.flush_model(["res_model"])
        self.env["mail.message"].flush_model(["model", "attachment_ids"])
        self.env.cr.execute(
            """SELECT id FROM ir_attachment WHERE id = ANY(%s) AND res_model = ANY(%s)
               UNION
               SELECT rel.attachment_id FROM message_attachment_rel rel
                 JOIN mail_message msg ON msg.id = rel.message_id
                WHERE rel.attachment_id = ANY(%s) AND msg.model = ANY(%s)""",
            (ids, list(TRAIL_MODELS), ids, list(TRAIL_MODELS)),
        )
        return {row[0] for row in self.env.cr.fetchall()}

    def _refuse_on_trail(self):
        if not is_trusted_message() and self._trail_ids():
            raise AccessError(self.env._(
                "The files of MCP Guard's records and of their messages are part of their trail: "
                "they cannot be changed or deleted."))

    def write(self, vals):
        # sudo: Odoo's own bookkeeping (an upload linked to the message it was posted with, an
        # access token for a share link); a client's write over RPC never runs as superuser
        if not self.env.su:
            self._refuse_on_trail()
        return super().write(vals)

    def unlink(self):
        if not self.env.su:  # in unlink itself: _force_unlink skips @api.ondelete (invariant 14)
            self._refuse_on_trail()  # pylint: disable=no-raise-unlink
        return super().unlink()

    def _delete_and_notify(self, message=None):
        # the chatter's "remove" of a file (/mail/attachment/delete deletes it as superuser on 19)
        self._refuse_on_trail()
        return super()._delete_and_notify(message)
