from datetime import timedelta

from psycopg2 import errors

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.mcp_guard.models.agent_access import DECIDING_AGENTS_SQL
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


@tagged("post_install", "-at_install")
class TestAgentApartConcurrency(TransactionCase):
    """Outside tester, HIGH: nobody is both an Agent and an approver, also when two transactions
    each pass their own check: T1 puts the administrator (an approver, through Settings) in a
    group X, T2 makes X imply the Agent group. Both cannot commit: the second fails with a
    serialization error (which Odoo's RPC layer retries), and its retry is refused."""

    def setUp(self):
        super().setUp()
        self.admin_id = self.env.ref("base.user_admin").id
        self.agent_id = self.env.ref("mcp_guard.group_mcp_agent").id
        Users = self.env["res.users"]
        self.groups_field = "group_ids" if "group_ids" in Users._fields else "groups_id"  # 19.0 / 18.0
        with self.env.registry.cursor() as cr:
            group = api.Environment(cr, SUPERUSER_ID, {})["res.groups"].create({"name": "MCP skew"})
            # two real transactions must see the group: committed here, removed in _cleanup
            cr.commit()  # pylint: disable=invalid-commit
        self.group_id = group.id
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.env.registry.cursor() as cr:
            # whatever got committed, the administrator is no Agent afterwards (18.0 stores the
            # implied groups of a user's groups as memberships)
            cr.execute("DELETE FROM res_groups_users_rel WHERE gid=%s OR (gid=%s AND uid=%s)",
                       (self.group_id, self.agent_id, self.admin_id))
            cr.execute("DELETE FROM res_groups_implied_rel WHERE gid=%s OR hid=%s", (self.group_id, self.group_id))
            cr.execute("DELETE FROM res_groups WHERE id=%s", (self.group_id,))
            cr.commit()  # pylint: disable=invalid-commit
        self.env.registry.clear_cache()

    def _deciding_agents(self, cr):
        cr.execute(DECIDING_AGENTS_SQL, {"agent": self.agent_id,
                                         "approver": self.env.ref("mcp_guard.group_mcp_approver").id})
        return [row[0] for row in cr.fetchall()]

    def _imply_agent(self, env):
        env["res.groups"].browse(self.group_id).write({"implied_ids": [Command.link(self.agent_id)]})

    def test_member_and_implication_cannot_both_commit(self):
        with self.env.registry.cursor() as cr1, self.env.registry.cursor() as cr2:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            env2 = api.Environment(cr2, SUPERUSER_ID, {})
            # both transactions have their snapshot before either changes anything
            self.assertFalse(self._deciding_agents(cr1))
            self.assertFalse(self._deciding_agents(cr2))
            # T1: the administrator joins X (X implies nothing, as T1 sees it)
            env1["res.users"].browse(self.admin_id).write({self.groups_field: [Command.link(self.group_id)]})
            cr1.commit()  # pylint: disable=invalid-commit
            # T2: X implies the Agent group (X has no member, as T2 sees it)
            with self.assertRaises(errors.SerializationFailure), mute_logger("odoo.sql_db"):
                self._imply_agent(env2)
            # what a concurrent RPC sees; Odoo retries it and the retry sees T1's member
            cr2.rollback()
            env2.invalidate_all()
            with self.assertRaises(ValidationError) as caught:
                self._imply_agent(env2)
            self.assertIn("cannot be both an MCP Guard Agent and an approver", str(caught.exception))
            self.assertIn(env2["res.users"].browse(self.admin_id).name, str(caught.exception))
            cr2.rollback()
        with self.env.registry.cursor() as cr:
            self.assertFalse(self._deciding_agents(cr))


@tagged("post_install", "-at_install")
class TestTakeAwayConcurrency(TransactionCase):
    """Outside tester, HIGH: olga shares her connection X (company C2) with the Agent user while
    an administrator takes C2 from the agent, or takes the agent out of the Agent group. Each
    write alone passes its own check (the share sees the agent in C2 and in the group; the
    removal sees no connection of the agent's to take away), but both committed leave X shared
    with an agent that cannot find it: a connection taken from the agent without an approved
    disconnect (DESIGN.md invariant 5). Both take the same lock (agent_access.lock_agent_group),
    so whichever commits second fails with a serialization error, which Odoo's RPC layer
    retries, and its retry sees the other's change and is refused."""

    def setUp(self):
        super().setUp()
        self.groups_field = "group_ids" if "group_ids" in self.env["res.users"]._fields else "groups_id"
        self.agent_group_id = self.env.ref("mcp_guard.group_mcp_agent").id
        ctx = {"mail_create_nolog": True, "no_reset_password": True}
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            main = env.ref("base.main_company")
            c2 = env["res.company"].create({"name": "MCP Race Co"})
            olga = new_test_user(env, "race_olga", "mcp_guard.group_mcp_user", context=ctx, name="Race Olga",
                                 email="race.olga@example.com", company_id=c2.id,
                                 company_ids=[Command.set([main.id, c2.id])])
            agent = new_test_user(env, "race_agent", "base.group_user,mcp_guard.group_mcp_agent", context=ctx,
                                  name="Race Agent", email="race.agent@example.com", company_id=main.id,
                                  company_ids=[Command.set([main.id, c2.id])])
            conn = env["mcp.connection"].with_user(olga).create({
                "alias": "race-x", "url": "https://race-x.example.com", "db": "race", "login": "bot",
                "company_id": c2.id,
            })
            # two real transactions must see the data: committed here, removed in _cleanup
            cr.commit()  # pylint: disable=invalid-commit
        self.c2_id, self.olga_id, self.agent_id, self.conn_id = c2.id, olga.id, agent.id, conn.id
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        with self.env.registry.cursor() as cr:
            cr.execute("DELETE FROM mail_message WHERE model='mcp.connection' AND res_id=%s", (self.conn_id,))
            cr.execute("DELETE FROM mail_followers WHERE res_model='mcp.connection' AND res_id=%s", (self.conn_id,))
            cr.execute("DELETE FROM mcp_connection WHERE id=%s", (self.conn_id,))
            env = api.Environment(cr, SUPERUSER_ID, {})
            users = env["res.users"].with_context(active_test=False).browse([self.olga_id, self.agent_id])
            partners = users.partner_id
            users.unlink()
            partners.unlink()
            env["res.company"].browse(self.c2_id).unlink()
            cr.commit()  # pylint: disable=invalid-commit
        self.env.registry.clear_cache()

    def _share(self, env):
        env["mcp.connection"].browse(self.conn_id).write({"agent_user_ids": [Command.link(self.agent_id)]})

    def _take_company(self, env):
        env["res.users"].browse(self.agent_id).write({"company_ids": [Command.unlink(self.c2_id)]})

    def _take_group(self, env):
        env["res.users"].browse(self.agent_id).write({self.groups_field: [Command.unlink(self.agent_group_id)]})

    def _state(self, cr):
        """(X shared with the agent, the agent in C2, the agent an Agent), as committed."""
        cr.execute("SELECT 1 FROM mcp_connection_agent_user_rel WHERE connection_id=%s AND user_id=%s",
                   (self.conn_id, self.agent_id))
        shared = bool(cr.fetchall())
        cr.execute("SELECT 1 FROM res_company_users_rel WHERE cid=%s AND user_id=%s", (self.c2_id, self.agent_id))
        in_c2 = bool(cr.fetchall())
        cr.execute("SELECT 1 FROM res_groups_users_rel WHERE gid=%s AND uid=%s", (self.agent_group_id, self.agent_id))
        return shared, in_c2, bool(cr.fetchall())

    def _race(self, first, second, refused):
        """``first`` and ``second`` (each a function of an environment) run in two transactions
        that both have their snapshot before either writes; ``first`` commits; ``second`` must
        fail with a serialization error, and its retry be refused with ``refused``."""
        with self.env.registry.cursor() as cr1, self.env.registry.cursor() as cr2:
            env1 = api.Environment(cr1, first[0], {})
            env2 = api.Environment(cr2, second[0], {})
            # both transactions have their snapshot before either changes anything
            self.assertEqual(self._state(cr1), (False, True, True))
            self.assertEqual(self._state(cr2), (False, True, True))
            first[1](env1)
            cr1.commit()  # pylint: disable=invalid-commit
            with self.assertRaises(errors.SerializationFailure), mute_logger("odoo.sql_db"):
                second[1](env2)
            # what a concurrent RPC sees; Odoo retries it and the retry sees the first's change
            cr2.rollback()
            env2.invalidate_all()
            self.env.registry.clear_cache()
            with self.assertRaises(refused[0]) as caught:
                second[1](env2)
            self.assertIn(refused[1], str(caught.exception))
            cr2.rollback()
        self.env.registry.clear_cache()
        with self.env.registry.cursor() as cr:
            state = self._state(cr)
            # what the agent finds: X as long as it is shared with it (nothing taken away)
            agent_env = api.Environment(cr, self.agent_id, {})
            found = [item["alias"] for item in agent_env["mcp.connection"].list_for_agent()] if state[2] else []
            cr.rollback()
        return state, found

    def test_share_then_company_removal(self):
        state, found = self._race((self.olga_id, self._share), (SUPERUSER_ID, self._take_company),
                                  (UserError, "uses connection(s) race-x"))
        self.assertEqual(state, (True, True, True))
        self.assertEqual(found, ["race-x"])

    def test_company_removal_then_share(self):
        state, found = self._race((SUPERUSER_ID, self._take_company), (self.olga_id, self._share),
                                  (ValidationError, "has no access to company MCP Race Co"))
        self.assertEqual(state, (False, False, True))
        self.assertEqual(found, [])

    def test_share_then_group_removal(self):
        state, found = self._race((self.olga_id, self._share), (SUPERUSER_ID, self._take_group),
                                  (UserError, "uses connection(s) race-x"))
        self.assertEqual(state, (True, True, True))
        self.assertEqual(found, ["race-x"])

    def test_group_removal_then_share(self):
        state, _found = self._race((SUPERUSER_ID, self._take_group), (self.olga_id, self._share),
                                   (ValidationError, "is not an MCP Guard Agent user"))
        self.assertEqual(state, (False, True, False))
