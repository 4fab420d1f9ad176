import uuid
from datetime import datetime, timedelta, timezone

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import McpGuardCase


# an hour ago: well inside the bounds of an event time (30 days back, 5 minutes ahead)
RECENT = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=123456)
RECENT_ISO = RECENT.isoformat().replace("+00:00", "Z")


def event(**kw):
    values = {
        "uuid": str(uuid.uuid4()), "time": RECENT_ISO, "principal": "agent:test",
        "tool": "odoo_disconnect", "arguments_hash": "a" * 64, "outcome": "approval_pending",
        "detail": "filed", "request_ref": "MCPR/2026/00001",
    }
    values.update(kw)
    return values


@tagged("post_install", "-at_install")
class TestAudit(McpGuardCase):

    def test_record_batch_idempotent(self):
        events = [event(), event(outcome="allowed", request_ref=None), event(detail="")]
        del events[2]["request_ref"]
        self.assertEqual(self.Audit.with_user(self.agent).record_batch(events), 3)
        self.assertEqual(self.Audit.with_user(self.agent).record_batch(events), 0)
        self.assertEqual(self.Audit.with_user(self.agent).record_batch(events + [event()]), 1)
        logs = self.Audit.search([("uuid", "in", [e["uuid"] for e in events])])
        self.assertEqual(len(logs), 3)
        first = logs.filtered(lambda r: r.uuid == events[0]["uuid"])
        # microseconds kept for ordering
        self.assertEqual(str(first.event_time), RECENT.replace(tzinfo=None).isoformat(sep=" "))
        self.assertEqual(first.outcome, "approval_pending")
        self.assertEqual(first.sender_id, self.agent)
        # approvers can read the trail
        self.assertEqual(len(self.Audit.with_user(self.approver).search([("id", "in", logs.ids)])), 3)

    def test_record_batch_redacts_every_text(self):
        """Outside tester, MEDIUM: only the detail was redacted; a principal, tool or request
        reference the agent sent with a secret in it was stored as sent."""
        sent = event(principal="password=hunter2xyz", tool="odoo_search api_key=sk-live-abcdef123456",
                     request_ref="https://bob:hunter2xyz@example.com/x", detail="token=hunter2xyz")
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([sent]), 1)
        log = self.Audit.search([("uuid", "=", sent["uuid"])])
        self.assertEqual(len(log), 1)
        for field in ("principal", "tool", "request_ref", "detail"):
            with self.subTest(field=field):
                self.assertNotIn("hunter2xyz", log[field])
                self.assertNotIn("sk-live-abcdef123456", log[field])
        self.assertTrue(log.principal.startswith("password="))
        self.assertTrue(log.tool.startswith("odoo_search "))
        # what carries no secret is kept as sent
        plain = event()
        self.Audit.with_user(self.agent).record_batch([plain])
        log = self.Audit.search([("uuid", "=", plain["uuid"])])
        self.assertEqual((log.principal, log.tool, log.request_ref), ("agent:test", "odoo_disconnect", "MCPR/2026/00001"))

    def test_record_batch_redacts_the_uuid(self):
        """Outside tester, MEDIUM: principal, tool and request reference were redacted, the
        uuid (shown as the row's name) was stored as sent."""
        sent = event(uuid="password=hunter2xyz", principal="agent:test")
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([sent]), 1)
        log = self.Audit.search([("sender_id", "=", self.agent.id), ("uuid", "=like", "password=%")])
        self.assertEqual(len(log), 1)
        self.assertNotIn("hunter2xyz", log.uuid)
        self.assertNotIn("hunter2xyz", log.display_name)
        # idempotent on the stored uuid: the same event again is no new row
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([sent]), 0)
        # a front-end's uuid is kept as sent
        plain = event()
        self.Audit.with_user(self.agent).record_batch([plain])
        self.assertEqual(len(self.Audit.search([("uuid", "=", plain["uuid"])])), 1)

    def test_record_batch_validation(self):
        for bad in (event(outcome="maybe"), event(time="yesterday"), event(uuid=""), event(colour="red"),
                    event(time=RECENT_ISO[:-1]), event(time="2019-01-01T00:00:00Z")):
            with self.assertRaises(UserError):
                self.Audit.with_user(self.agent).record_batch([event(), bad])
        self.assertEqual(self.Audit.search_count([("principal", "=", "agent:test")]), 0)
        for user in (self.user, self.plain):
            with self.assertRaises(AccessError):
                self.Audit.with_user(user).record_batch([event()])

    def test_append_only_for_everyone(self):
        self.Audit.with_user(self.agent).record_batch([event()])
        log = self.Audit.search([], limit=1)
        for user in (self.manager, self.admin):
            with self.assertRaises(AccessError):
                log.with_user(user).write({"outcome": "allowed"})
            with self.assertRaises(AccessError):
                log.with_user(user).unlink()
        with self.assertRaises(AccessError):
            log.sudo().write({"detail": "tampered"})
        with self.assertRaises(AccessError):
            log.sudo().with_context(module_uninstall=True).unlink()
        with self.assertRaises(AccessError):  # the agent appends but cannot read back
            log.with_user(self.agent).read(["detail"])
        self.assertTrue(log.exists())

    def test_duplicate_uuid_in_one_batch(self):
        one = event()
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([one, dict(one), event()]), 2)
        self.assertEqual(self.Audit.search_count([("uuid", "=", one["uuid"])]), 1)

    def test_sender_recorded_and_uuids_per_sender(self):
        """The row names the Odoo user who sent it; one agent's uuid never drops another's event."""
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        other = new_test_user(self.env, "mcp_agent_b", "mcp_guard.group_mcp_agent", context=ctx)
        shared = event(principal="agent:b")
        self.assertEqual(self.Audit.with_user(self.agent).record_batch([shared]), 1)
        self.assertEqual(self.Audit.with_user(other).record_batch([dict(shared, detail="b's own")]), 1)
        self.assertEqual(self.Audit.with_user(other).record_batch([shared]), 0)  # a replay of its own
        logs = self.Audit.search([("uuid", "=", shared["uuid"])])
        self.assertEqual(sorted(logs.mapped("sender_id").ids), sorted((self.agent | other).ids))
        self.assertEqual(logs.filtered(lambda r: r.sender_id == other).detail, "b's own")
        # a sender given by the client is refused by record_batch; a plain create is refused
        with self.assertRaises(UserError):
            self.Audit.with_user(other).record_batch([dict(event(), sender_id=self.agent.id)])
        with self.assertRaises(AccessError):
            self.Audit.with_user(other).create({
                "uuid": "x-1", "event_time": "2026-11-25 01:02:03", "principal": "p", "tool": "t",
                "outcome": "allowed", "sender_id": self.agent.id,
            })
