from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import SERVER, McpGuardCase

# our own flags under guessable names, and every key by which Odoo's ORM or mail skips a
# check or a trail (odoo/models.py, odoo/addons/base/models/ir_model.py MODULE_UNINSTALL_FLAG,
# mail/models/mail_thread.py): none may end a connection or approve a request
TRICK_CONTEXTS = [
    {"mcp_guard_allow_disconnect": True},
    {"mcp_guard_internal_write": True},
    {"allow_connection_removal": True},
    {"_force_unlink": True},
    {"_force_unlink": True, "active_test": False, "install_mode": True, "module_uninstall": True,
     "tracking_disable": True, "mail_notrack": True, "mail_create_nolog": True, "force_delete": True},
    {"default_state": "approved", "default_active": False},
]


@tagged("post_install", "-at_install")
class TestConnection(McpGuardCase):

    def test_list_for_agent_secrets_only_for_agent(self):
        listed = self.Connection.with_user(self.agent).list_for_agent()
        self.assertEqual(listed, [{
            "alias": "prod", "url": "https://erp.example.com", "db": "prod", "login": "bot",
            "protocol": "xmlrpc", "password": "s3cret-pw", "api_key": "k-123",
        }])
        # exactly the caller's own and shared ones: a manager sees every connection, uses none
        self.assertEqual(self.Connection.with_user(self.manager).list_for_agent(), [])
        mine = self.Connection.with_user(self.manager).create(
            {"alias": "m", "url": "u", "db": "d", "login": "l", "new_password": "pw-m"})
        as_manager = self.Connection.with_user(self.manager).list_for_agent()
        self.assertEqual([c["alias"] for c in as_manager], ["m"])
        self.assertNotIn("password", as_manager[0])
        self.assertNotIn("api_key", as_manager[0])
        self.assertEqual(mine.sudo().password, "pw-m")
        # a pending disconnect does not hide it: it exists until the approval is consumed
        self.Request.with_user(self.agent).file_request("odoo_disconnect", {"alias": "prod"}, "a", "", server=SERVER)
        self.assertEqual(self.prod.state, "disconnect_pending")
        self.assertEqual(len(self.Connection.with_user(self.agent).list_for_agent()), 1)
        # another agent (other company) sees none of them
        self.assertEqual(self.Connection.with_user(self.agent2).list_for_agent(), [])

    def test_upsert_from_agent(self):
        res = self.Connection.with_user(self.agent).upsert_from_agent({
            "alias": "staging", "url": "https://staging.example.com", "db": "stg",
            "login": "bot", "api_key": "abc", "protocol": "jsonrpc",
        })
        self.assertEqual(res, {"alias": "staging", "created": True})
        conn = self.Connection.search([("alias", "=", "staging")])
        self.assertEqual(conn.owner_id, self.agent)
        self.assertEqual(conn.sudo().api_key, "abc")
        with self.assertRaises(UserError):  # replacing goes through approval
            self.Connection.with_user(self.agent).upsert_from_agent({
                "alias": "prod", "url": "https://evil.example.com", "db": "x", "login": "y", "protocol": "xmlrpc",
            })
        self.assertEqual(self.prod.url, "https://erp.example.com")
        with self.assertRaises(UserError):
            self.Connection.with_user(self.agent).upsert_from_agent({"alias": "x", "state": "connected"})
        with self.assertRaises(AccessError):
            self.Connection.with_user(self.plain).upsert_from_agent({"alias": "z"})

    def test_no_unlink_whoever_asks(self):
        """Neither manager, admin, superuser nor a context key can delete a connection."""
        for user in (self.manager, self.admin):
            with self.assertRaises(UserError):
                self.prod.with_user(user).unlink()
        with self.assertRaises(UserError):
            self.prod.sudo().unlink()
        for ctx in TRICK_CONTEXTS:
            with self.assertRaises(UserError):
                self.prod.with_user(self.manager).with_context(**ctx).unlink()
            with self.assertRaises(UserError):
                self.prod.sudo().with_context(**ctx).unlink()
        with self.assertRaises(UserError):  # the agent neither (no group has the unlink right)
            self.prod.with_user(self.agent).unlink()
        self.assertTrue(self.prod.exists())

    def test_no_archive_no_state_write(self):
        for vals in ({"active": False}, {"state": "disconnect_pending"}):
            for ctx in [{}] + TRICK_CONTEXTS:
                for user in (self.manager, self.admin):
                    with self.assertRaises(UserError):
                        self.prod.with_user(user).with_context(**ctx).write(vals)
                with self.assertRaises(UserError):
                    self.prod.sudo().with_context(**ctx).write(vals)
                with self.assertRaises(UserError):  # AccessError is a UserError too
                    self.prod.with_user(self.agent).with_context(**ctx).write(vals)
        with self.assertRaises(UserError):
            self.prod.sudo().action_archive()
        self.assertTrue(self.prod.active)
        self.assertEqual(self.prod.state, "connected")
        # ordinary fields of a connection no agent uses stay editable by the manager
        mine = self.Connection.with_user(self.user).create({"alias": "m", "url": "u", "db": "d", "login": "l"})
        mine.with_user(self.manager).write({"url": "https://erp2.example.com"})
        self.assertEqual(mine.url, "https://erp2.example.com")
        # a create cannot smuggle a state in either
        conn = self.Connection.with_user(self.user).create({
            "alias": "mine", "url": "u", "db": "d", "login": "l", "state": "disconnect_pending",
        })
        self.assertEqual(conn.state, "connected")

    def test_secrets_restricted(self):
        for user in (self.user, self.approver, self.manager):
            with self.assertRaises(AccessError):
                self.prod.with_user(user).read(["password"])
            with self.assertRaises(AccessError):
                self.prod.with_user(user).read(["api_key"])
        self.assertEqual(self.prod.with_user(self.agent).password, "s3cret-pw")
        fields_info = self.Connection.with_user(self.agent).fields_get(["password", "api_key"], ["exportable"])
        self.assertFalse(fields_info["password"]["exportable"])
        self.assertFalse(fields_info["api_key"]["exportable"])
        doors = self.Connection.with_user(self.manager).fields_get(["new_password", "new_api_key"], ["exportable"])
        self.assertFalse(doors["new_password"]["exportable"] or doors["new_api_key"]["exportable"])
        with self.assertRaises(AccessError):
            self.prod.with_user(self.admin).export_data(["alias", "password"])
        # not tracked: the chatter never carries them
        mine = self.Connection.with_user(self.user).create({"alias": "m", "url": "u", "db": "d", "login": "l"})
        mine.with_user(self.user).write({"new_password": "changed-pw"})
        self.assertEqual(mine.sudo().password, "changed-pw")
        mine.with_user(self.manager).write({"new_password": "changed-pw2"})
        self.assertEqual(mine.sudo().password, "changed-pw2")
        mine.invalidate_recordset()  # as a later request would read it
        self.assertFalse(mine.with_user(self.manager).new_password)
        self.env.flush_all()
        messages = mine.sudo().message_ids
        bodies = " ".join(str(m.body) for m in messages)
        values = " ".join(str(v.old_value_char) + str(v.new_value_char) for v in messages.tracking_value_ids)
        self.assertNotIn("pw", bodies + values)
        # list view does not show secrets
        arch = self.Connection.with_user(self.manager).get_view(view_type="list")["arch"]
        self.assertNotIn("password", arch)
        self.assertNotIn("api_key", arch)

    def test_record_rules_own_company_all(self):
        mine = self.Connection.with_user(self.user).create({"alias": "u1", "url": "u", "db": "d", "login": "l"})
        other_co = self.Connection.with_user(self.agent2).create({"alias": "c2", "url": "u", "db": "d", "login": "l"})
        self.assertEqual(self.Connection.with_user(self.user).search([]), mine)
        self.assertEqual(self.Connection.with_user(self.user2).search([]), self.Connection.browse())
        approver_sees = self.Connection.with_user(self.approver).search([])
        self.assertIn(mine, approver_sees)
        self.assertIn(self.prod, approver_sees)
        self.assertNotIn(other_co, approver_sees)
        with self.assertRaises(AccessError):  # only managers hand connections to someone else
            mine.with_user(self.user).write({"owner_id": self.agent.id})
        mine.with_user(self.manager).write({"owner_id": self.user2.id})
        self.assertEqual(self.Connection.with_user(self.user2).search([]), mine)
        # approvers read their company's connections but edit only their own
        with self.assertRaises(AccessError):
            mine.with_user(self.approver).write({"url": "x"})
        self.manager.company_ids |= self.company2
        manager_sees = self.Connection.with_user(self.manager).with_context(
            allowed_company_ids=[self.company.id, self.company2.id]
        ).search([])
        self.assertIn(other_co, manager_sees)
        self.assertIn(mine, manager_sees)

    def test_force_unlink_as_admin_orm_and_server_action(self):
        """Odoo skips @api.ondelete under _force_unlink: the refusal lives in unlink() itself."""
        for user in (self.admin, self.manager):
            with self.assertRaises(UserError):
                self.prod.with_user(user).with_context(_force_unlink=True).unlink()
        with self.assertRaises(UserError):
            self.prod.sudo().with_context(_force_unlink=True, active_test=False).unlink()
        model = self.env["ir.model"]._get("mcp.connection")
        for code in (
            "records.with_context(_force_unlink=True).unlink()",
            "records.sudo().with_context(_force_unlink=True).unlink()",
            "records.sudo().with_context(_force_unlink=True).action_archive()",
            "records.sudo().with_context(_force_unlink=True, tracking_disable=True).write({'active': False})",
        ):
            action = self.env["ir.actions.server"].create(
                {"name": "end it", "model_id": model.id, "state": "code", "code": code}
            )
            with self.assertRaises(UserError):
                action.with_user(self.admin).with_context(
                    active_model="mcp.connection", active_id=self.prod.id, active_ids=self.prod.ids
                ).run()
        self.assertTrue(self.prod.exists())
        self.assertTrue(self.prod.active)
        # nobody holds the unlink right: the UI offers no Delete, whoever is logged in
        for user in (self.user, self.approver, self.manager, self.admin, self.agent):
            self.assertFalse(self.Connection.with_user(user).has_access("unlink"))

    def test_context_fills_no_state(self):
        """default_* keys of the client's context never set a protected field at create."""
        conn = self.Connection.with_user(self.user).with_context(default_state="disconnect_pending").create(
            {"alias": "mine", "url": "u", "db": "d", "login": "l"}
        )
        self.assertEqual(conn.state, "connected")

    def test_changes_tracked_whatever_the_context(self):
        """A rename or a new URL/database/login by the owner stays in the chatter trail."""
        conn = self.Connection.with_user(self.user).create({"alias": "mine", "url": "u", "db": "d", "login": "l"})
        self.env.cr.precommit.run()  # the create's own commit: tracking starts after it
        conn.with_user(self.user).with_context(tracking_disable=True, mail_notrack=True).write(
            {"alias": "mine2", "url": "https://other.example.com", "db": "d2", "login": "l2"}
        )
        self.env.flush_all()
        self.env.cr.precommit.run()  # mail writes its tracking values at commit
        tracked = conn.sudo().message_ids.tracking_value_ids
        changes = {(v.field_id.name, v.old_value_char, v.new_value_char) for v in tracked}
        self.assertLessEqual(
            {("alias", "mine", "mine2"), ("url", "u", "https://other.example.com"), ("db", "d", "d2"),
             ("login", "l", "l2")},
            changes,
        )
