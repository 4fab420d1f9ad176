import uuid

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import McpGuardCase


def event(**kw):
    values = {
        "uuid": str(uuid.uuid4()), "time": "2026-11-25T01:02:03.123456Z", "principal": "agent:test",
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
        self.assertEqual(str(first.event_time), "2026-11-25 01:02:03.123456")  # microseconds kept for ordering
        self.assertEqual(first.outcome, "approval_pending")
        self.assertEqual(first.create_uid, self.agent)
        # approvers can read the trail
        self.assertEqual(len(self.Audit.with_user(self.approver).search([("id", "in", logs.ids)])), 3)

    def test_record_batch_validation(self):
        for bad in (event(outcome="maybe"), event(time="yesterday"), event(uuid=""), event(colour="red"),
                    event(time="2026-11-25T01:02:03")):
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
