"""Outside round 17 (add-on): the trail rewritten through Odoo's own edit route, a trail entry's
other fields, a trail's files; trail subjects read by people outside MCP Guard; a URL that is
no string or hides its credentials behind a fullwidth "@"; bad input answered with a traceback."""

import base64
import json

from odoo import release
from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mcp_guard.models.mcp_guard_common import TRAIL_MODELS, URL_CREDENTIALS_MESSAGE

from .common import McpGuardCase

SERIES = release.version_info[0]
ENTRY_FIELDS = ["attachment_ids", "email_from", "subject", "message_id", "partner_ids", "is_internal", "pinned_at",
                "reply_to"]


class TrailCase(McpGuardCase):

    def setUp(self):
        super().setUp()
        self.conn = self.Connection.with_user(self.user).create({
            "alias": "t17", "url": "https://erp.example.com", "db": "x", "login": "u"})
        self.req = self.Request.browse(self.conn.with_user(self.user).action_request_disconnect()["res_id"])
        self.env.flush_all()
        self.env.cr.precommit.run()  # as at the end of the filing's transaction


@tagged("post_install", "-at_install")
class TestNobodyEditsTheTrail(TrailCase, HttpCase):
    """F3: /mail/message/update_content lets an administrator edit (or empty) anyone's comment,
    and an author their own: on a trail, nobody does."""

    def update_content(self, login, password, message, body):
        self.authenticate(login, password)
        params = ({"message_id": message.id, "body": body, "attachment_ids": []} if SERIES < 19
                  else {"message_id": message.id, "update_data": {"body": body, "attachment_ids": []}})
        response = self.url_open("/mail/message/update_content", data=json.dumps(
            {"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}),
            headers={"Content-Type": "application/json"})
        return response.json()

    @mute_logger("odoo.http")
    def test_an_administrator_or_the_author_cannot_rewrite_or_empty_a_comment(self):
        for record in (self.req, self.conn):
            comment = record.with_user(self.user).message_post(
                body="I object, do not approve.", message_type="comment", subtype_xmlid="mail.mt_note")
            before = str(comment.sudo().body)
            for login, password in (("admin", "admin"), (self.user.login, self.user.login)):
                for body in ("mcp_user: I APPROVE this request.", ""):
                    answer = self.update_content(login, password, comment, body)
                    self.assertIn("error", answer, f"{record._name} {login} {body!r}: {answer}")
                    self.assertIn("trail", answer["error"]["data"]["message"])
                    comment.invalidate_recordset()
                    self.assertEqual(str(comment.sudo().body), before, f"{record._name} {login} {body!r}")
                    self.assertEqual(comment.sudo().author_id, self.user.partner_id)

    def test_the_method_refuses_everyone(self):
        comment = self.conn.with_user(self.user).message_post(body="first")
        for user in (self.user, self.admin):
            with self.assertRaisesRegex(UserError, "cannot be edited or deleted"):
                self.conn.with_user(user)._message_update_content(comment, body="second")
            with self.assertRaisesRegex(UserError, "trail"):
                comment.with_user(user).write({"body": "second"})
        self.assertIn("first", str(comment.sudo().body))


@tagged("post_install", "-at_install")
class TestATrailEntryKeepsEveryField(TrailCase):
    """F4: the author of a trail entry (the requester, for "created") wrote its attachments,
    From, subject, Message-Id, recipients, internal flag or pin over plain RPC."""

    def test_only_the_starred_flag_is_written(self):
        created = self.req.sudo().message_ids.filtered(lambda m: m.author_id == self.user.partner_id)[-1:]
        self.assertTrue(created, self.req.sudo().message_ids.mapped("body"))
        forged = [
            {"attachment_ids": [(0, 0, {"name": "signed-approval-by-mia.pdf", "datas": "JVBERi0="})]},
            {"email_from": '"Mia Manager" <mia@example.com>'},
            {"subject": "Approved by Mia"},
            {"message_id": "<forged-approval@example.com>"},
            {"partner_ids": [(4, self.approver.partner_id.id)]},
            {"is_internal": True},
            {"pinned_at": "2026-01-01 00:00:00"},
            {"reply_to": "mia@example.com"},
        ]
        comment = self.conn.with_user(self.user).message_post(body="mine")
        for message in (created, comment):
            before = message.sudo().read(ENTRY_FIELDS)
            for user in (self.user, self.admin):
                for values in forged:
                    with self.assertRaises(UserError, msg=f"{user.login} {values}"):
                        message.with_user(user).write(values)
            message.invalidate_recordset()
            self.assertEqual(message.sudo().read(ENTRY_FIELDS), before)
            # a reader's own flag stays theirs to set
            message.with_user(self.approver).toggle_message_starred()
            self.assertIn(self.approver.partner_id, message.sudo().starred_partner_ids)


@tagged("post_install", "-at_install")
class TestATrailsFilesStay(TrailCase):
    """F9: the connection's owner rewrote, then deleted, a file another person posted on its trail."""

    def test_nobody_rewrites_or_deletes_a_file_of_the_trail(self):
        posted = self.conn.with_user(self.manager).message_post(
            body="see evidence", attachments=[("mia-evidence.txt", b"mia: keep it")])
        on_message = posted.sudo().attachment_ids
        self.assertTrue(on_message)
        on_record = self.env["ir.attachment"].with_user(self.manager).create({
            "name": "record.txt", "raw": b"keep", "res_model": self.conn._name, "res_id": self.conn.id})
        for attachment in (on_message, on_record):
            for user in (self.user, self.manager, self.admin):
                with self.assertRaisesRegex(UserError, "trail", msg=user.login):
                    attachment.with_user(user).write({"datas": base64.b64encode(b"DELETE it").decode()})
                with self.assertRaisesRegex(UserError, "trail", msg=user.login):
                    attachment.with_user(user).write({"res_model": "res.partner", "res_id": user.partner_id.id})
                with self.assertRaisesRegex(UserError, "trail", msg=user.login):
                    attachment.with_user(user).unlink()
                with self.assertRaisesRegex(UserError, "trail", msg=user.login):
                    attachment.with_user(user).sudo()._delete_and_notify()
            self.assertTrue(attachment.exists())
        self.assertEqual(on_message.sudo().raw, b"mia: keep it")
        # elsewhere, files are as Odoo keeps them
        other = self.env["ir.attachment"].with_user(self.user).create({"name": "own.txt", "raw": b"x"})
        other.with_user(self.user).write({"raw": b"y"})
        other.with_user(self.user).unlink()


@tagged("post_install", "-at_install")
class TestTrailStaysWithMcpUsers(TrailCase):
    """F10: any internal user read every mail.notification, with its message's subject or record
    name ("Olga Owner asks to remove connection prod1 (...)")."""

    def test_a_plain_user_reads_no_notification_of_a_trail(self):
        self.req.with_user(self.user).message_post(
            body="please look", partner_ids=self.approver.partner_id.ids, message_type="comment",
            subtype_xmlid="mail.mt_comment")
        Notification = self.env["mail.notification"]
        trail = Notification.sudo().search([("mail_message_id.model", "in", list(TRAIL_MODELS))])
        self.assertTrue(trail)
        rows = Notification.with_user(self.plain).search_read([], ["mail_message_id"])
        self.assertFalse({row["id"] for row in rows} & set(trail.ids), rows)
        self.assertFalse([row for row in rows if "t17" in str(row["mail_message_id"])])
        # MCP Guard's users still read them (the approver, their own; the manager, all)
        self.assertTrue(Notification.with_user(self.approver).search([("id", "in", trail.ids)]))
        self.assertEqual(Notification.with_user(self.manager).search([("id", "in", trail.ids)]), trail)

    def test_a_plain_user_reads_no_name_of_a_trail_message(self):
        # named by its subject (19: the approvers' to-do notice) or its record's name (18)
        messages = self.env["mail.message"].sudo().search([("model", "=", self.req._name), ("res_id", "=", self.req.id)])
        named = messages.filtered(lambda m: m.with_user(self.manager).sudo().display_name)
        self.assertTrue(named)
        self.assertTrue(any("MCPR" in m.with_user(self.manager).sudo().display_name for m in named))
        # as a many2one pointing to it is read (mail.notification, a reaction): as superuser
        for message in named:
            self.assertEqual(message.with_user(self.plain).sudo().display_name, "MCP Guard message")

    def test_nobody_outside_mcp_guard_is_mentioned_or_follows(self):
        outsider = self.env["res.partner"].create({"name": "Outside Contact", "email": "out@example.com"})
        for partner in (self.plain.partner_id, outsider):
            for record in (self.req, self.conn):
                with self.assertRaisesRegex(UserError, "only MCP Guard's users"):
                    record.with_user(self.user).message_post(body="fyi", partner_ids=partner.ids)
                with self.assertRaisesRegex(UserError, "only MCP Guard's users"):
                    record.with_user(self.user).message_subscribe(partner_ids=partner.ids)
                self.assertNotIn(partner, record.sudo().message_partner_ids)
        self.conn.with_user(self.user).message_subscribe(partner_ids=self.approver.partner_id.ids)
        self.conn.with_user(self.user).message_post(body="fyi", partner_ids=self.approver.partner_id.ids)


@tagged("post_install", "-at_install")
class TestConnectionTextIsText(McpGuardCase):
    """F1: a URL sent as a list was stored as its printed form, credentials included; a fullwidth
    "@" hid the userinfo from the check."""

    def test_url_db_login_must_be_strings(self):
        secret = "Hunter2pw"
        base = {"alias": "t17a", "url": "https://h.example", "db": "d", "login": "l"}
        for name, value in (("url", [f"http://bob:{secret}@h.example"]), ("db", ["d"]), ("login", 5)):
            with self.assertRaisesRegex(UserError, f"^{name} must be a string"):
                self.Connection.with_user(self.agent).upsert_from_agent(dict(base, **{name: value}))
            with self.assertRaisesRegex(UserError, f"^{name} must be a string"):
                self.Connection.with_user(self.user).create(dict(base, **{name: value}))
        conn = self.Connection.with_user(self.user).create(base)
        with self.assertRaisesRegex(UserError, "^url must be a string"):
            conn.with_user(self.user).write({"url": [f"http://bob:{secret}@h.example"]})
        self.assertFalse(self.Connection.sudo().search([("url", "ilike", secret)]))

    def test_a_fullwidth_at_still_shows_credentials(self):
        for url in ("http://u:Pw1x\uff20h.example", "http://u:Pw1x\ufe6bh.example"):
            with self.assertRaisesRegex(UserError, URL_CREDENTIALS_MESSAGE.split(" (")[0]):
                self.Connection.with_user(self.agent).upsert_from_agent(
                    {"alias": "t17f", "url": url, "db": "d", "login": "l"})
            with self.assertRaisesRegex(UserError, URL_CREDENTIALS_MESSAGE.split(" (")[0]):
                self.Connection.with_user(self.user).create({"alias": "t17g", "url": url, "db": "d", "login": "l"})
        self.assertFalse(self.Connection.sudo().search([("alias", "in", ["t17f", "t17g"])]))


@tagged("post_install", "-at_install")
class TestBadInputIsOneLine(McpGuardCase):
    """F2: bad input to the RPC contract gave an Odoo traceback, not one line."""

    def test_agent_methods(self):
        with self.assertRaisesRegex(UserError, "Unknown protocol 5"):
            self.Connection.with_user(self.agent).upsert_from_agent(
                {"alias": "p5", "url": "http://a.example", "db": "x", "login": "l", "protocol": 5})
        Request = self.Request.with_user(self.agent)
        with self.assertRaisesRegex(UserError, "Unknown state"):
            Request.list_for_agent(state=["x"])
        with self.assertRaisesRegex(UserError, "ref must be a request reference"):
            Request.list_for_agent(ref="MCPR\x00")

    def test_actions_take_one_record(self):
        conn = self.Connection.with_user(self.user).create({
            "alias": "t17s", "url": "https://erp.example.com", "db": "x", "login": "u"})
        other = self.Connection.with_user(self.user).create({
            "alias": "t17t", "url": "https://erp.example.com", "db": "y", "login": "u"})
        for records in (conn.browse(), conn | other):
            with self.assertRaisesRegex(UserError, f"exactly one .*record, not {len(records)}"):
                records.with_user(self.user).action_request_disconnect()
            with self.assertRaisesRegex(UserError, "exactly one"):
                records.with_user(self.user).action_view_requests()
        requests = self.Request.browse([
            self.Request.browse(c.with_user(self.user).action_request_disconnect()["res_id"]).id
            for c in (conn, other)])
        with self.assertRaisesRegex(UserError, "exactly one"):
            requests.with_user(self.approver).action_view_connection()
