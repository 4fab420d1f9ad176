from datetime import timedelta

from psycopg2 import errors

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mcp_guard.models.mcp_guard_common import arguments_hash, internal_write

from .common import SERVER


@tagged("post_install", "-at_install")
class TestConsumeConcurrency(TransactionCase):
    """Two transactions consume the same approval: exactly one may succeed."""

    def setUp(self):
        super().setUp()
        self.admin_id = self.env.ref("base.user_admin").id
        # requested by the superuser, approved by the administrator: four eyes hold at consumption
        self.requester_id = SUPERUSER_ID
        self.digest = arguments_hash({"alias": "race"})
        # committed data, visible to two independent cursors
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            conn = env["mcp.connection"].create({
                "alias": "race", "url": "https://race.example.com", "db": "race", "login": "bot",
                "owner_id": self.requester_id,
            })
            with internal_write():
                req = env["mcp.approval.request"].create({
                    "tool": "odoo_disconnect", "arguments": "{}", "arguments_hash": self.digest,
                    "principal": "race", "server": SERVER, "requester_id": self.requester_id, "connection_id": conn.id,
                    "connection_alias": "race", "connection_url": "https://race.example.com",
                    "connection_db": "race", "connection_login": "bot", "state": "approved", "approver_id": self.admin_id,
                    "expires_at": fields.Datetime.now() + timedelta(hours=1),
                })
            # two real transactions must see the data: committed here, removed in _cleanup
            cr.commit()  # pylint: disable=invalid-commit
        self.conn_id, self.req_id = conn.id, req.id
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.env.registry.cursor() as cr:
            for model, table, rec_id in (("mcp.approval.request", "mcp_approval_request", self.req_id),
                                         ("mcp.connection", "mcp_connection", self.conn_id)):
                cr.execute("DELETE FROM mail_message WHERE model=%s AND res_id=%s", (model, rec_id))
                cr.execute("DELETE FROM mail_followers WHERE res_model=%s AND res_id=%s", (model, rec_id))
                cr.execute("DELETE FROM %s WHERE id=%%s" % table, (rec_id,))  # pylint: disable=sql-injection
            cr.commit()  # pylint: disable=invalid-commit

    def _consume(self, env):
        return env["mcp.approval.request"].consume(self.req_id, "odoo_disconnect", self.digest, server=SERVER)

    def test_two_cursors_one_success(self):
        with self.env.registry.cursor() as cr1, self.env.registry.cursor() as cr2:
            env1 = api.Environment(cr1, self.requester_id, {})
            env2 = api.Environment(cr2, self.requester_id, {})
            # both transactions have seen the approval before either consumes it
            self.assertEqual(env1["mcp.approval.request"].browse(self.req_id).state, "approved")
            self.assertEqual(env2["mcp.approval.request"].browse(self.req_id).state, "approved")
            first = self._consume(env1)
            self.assertTrue(first["ok"], first)
            cr1.commit()  # pylint: disable=invalid-commit
            try:
                with mute_logger("odoo.sql_db"):
                    second = self._consume(env2)
            except errors.SerializationFailure:
                # what a concurrent RPC sees; Odoo retries it and the retry sees "done"
                cr2.rollback()
                env2.invalidate_all()
                second = self._consume(env2)
            self.assertFalse(second["ok"], second)
            self.assertEqual(second["state"], "done")
            cr2.rollback()
        with self.env.registry.cursor() as cr:
            cr.execute("SELECT state FROM mcp_approval_request WHERE id=%s", (self.req_id,))
            self.assertEqual(cr.fetchone()[0], "done")
            # ended once: archived and disconnected, not erased
            cr.execute("SELECT active, state FROM mcp_connection WHERE id=%s", (self.conn_id,))
            self.assertEqual(cr.fetchone(), (False, "disconnected"))
