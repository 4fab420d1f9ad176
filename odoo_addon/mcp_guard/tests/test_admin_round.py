"""Outside tester, as the Odoo administrator (18 and 19).

HIGH-1: a manual field made by the administrator (on an add-on model, pointing to one, or
depending through one) ran inside the add-on's internal-write window: its compute ended another
connection, approved a request as somebody else, or copied the password into a readable column.
The add-on's schema, manual fields included, is changed only by the module loader.

HIGH-2: a server action on another model called the private ``_carry_out`` of an approved
request: the connection was ended without consume's checks. Only consume and an approval in Odoo
may carry a request out (an in-process allowance, as for ``_end``).

MEDIUM: aliases folded alike (PROD, Prod, p.rod next to prod) could all be shared with one agent.

LOW: a change request whose database or login is the password showed the password to others."""

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import SERVER, McpGuardCase

VALUES = {"url": "https://erp.example.com", "db": "erp", "login": "bot"}


@tagged("post_install", "-at_install")
class TestAdminManualFields(McpGuardCase):
    def field(self, model, name, **vals):
        return self.env["ir.model.fields"].with_user(self.admin).create({
            "model_id": self.env["ir.model"]._get_id(model), "name": name, "field_description": name,
            "ttype": "char", "state": "manual", **vals})

    def test_no_manual_field_on_the_addons_models(self):
        victim = self.Connection.with_user(self.user).create({"alias": "victim", **VALUES})
        evil = ("for r in self:\n r['x_evil'] = r.state\n if r.state == 'disconnect_pending':\n"
                f"  r.env['mcp.connection'].sudo().browse({victim.id}).write({{'active': False, 'state': 'disconnected'}})")
        with mute_logger("odoo.sql_db"):
            with self.assertRaisesRegex(UserError, "x_evil"):
                self.field("mcp.connection", "x_evil", store=True, depends="state", compute=evil)
            with self.assertRaisesRegex(UserError, "x_auto"):
                self.field("mcp.approval.request", "x_auto", store=True, depends="state",
                           compute="for r in self:\n r['x_auto'] = r.state")
            with self.assertRaisesRegex(UserError, "x_pw2"):
                self.field("mcp.connection", "x_pw2", store=True, compute="for r in self:\n r['x_pw2'] = r.sudo().password")
            with self.assertRaisesRegex(UserError, "x_note"):
                self.field("mcp.tool.rule", "x_note")
            # a field of another model that points to one of the add-on's
            with self.assertRaisesRegex(UserError, "x_conn"):
                self.field("res.partner", "x_conn", ttype="many2one", relation="mcp.connection")
            with self.assertRaisesRegex(UserError, "x_reqs"):
                self.field("res.partner", "x_reqs", ttype="many2many", relation="mcp.approval.request")
        self.assertFalse(self.env["ir.model.fields"].search([("name", "in", ("x_evil", "x_auto", "x_pw2", "x_conn"))]))
        # the owner's disconnect request leaves the victim alone
        other = self.Connection.with_user(self.user).create({"alias": "other", **VALUES})
        other.with_user(self.user).action_request_disconnect()
        victim.invalidate_recordset()
        self.assertTrue(victim.active)
        self.assertEqual(victim.state, "connected")

    def test_a_field_elsewhere_stays_possible_but_not_turned_into_one_of_ours(self):
        note = self.field("res.partner", "x_mcp_note")
        self.assertTrue(note.exists())
        other = self.field("res.partner", "x_other", ttype="many2one", relation="res.partner")
        with mute_logger("odoo.sql_db"), self.assertRaisesRegex(UserError, "x_other"):
            other.with_user(self.admin).write({"relation": "mcp.connection"})
        self.assertEqual(other.relation, "res.partner")


@tagged("post_install", "-at_install")
class TestAdminCarryOut(McpGuardCase):
    def server_action(self, code):
        return self.env["ir.actions.server"].create({
            "name": "admin carry out", "model_id": self.env["ir.model"]._get_id("res.partner"),
            "state": "code", "code": code,
        })

    def test_carry_out_outside_consume_is_refused(self):
        res = self.approved(arguments={"alias": "prod"})
        req = self.Request.browse(res["id"])
        self.assertEqual(req.state, "approved")
        action = self.server_action(
            f"req = env['mcp.approval.request'].sudo().browse({req.id})\n"
            "req._carry_out(req.tool, req.arguments_hash)")
        partner = self.admin.partner_id
        with self.assertRaisesRegex(UserError, "consum"):
            action.with_user(self.admin).with_context(
                active_model="res.partner", active_id=partner.id, active_ids=partner.ids).run()
        with self.assertRaisesRegex(UserError, "consum"):
            req.sudo()._carry_out(req.tool, req.sudo().arguments_hash)
        req.invalidate_recordset()
        self.prod.invalidate_recordset()
        self.assertEqual(req.state, "approved")
        self.assertTrue(self.prod.active)
        # the agent's consume still carries it out
        out = self.Request.with_user(self.agent).consume(req.id, "odoo_disconnect", self.digest({"alias": "prod"}),
                                                         server=SERVER)
        self.assertTrue(out["ok"], out)
        self.assertEnded(self.prod)

    def test_approval_in_odoo_still_carries_out_a_persons_request(self):
        conn = self.Connection.with_user(self.user).create({"alias": "mine", **VALUES,
                                                            "agent_user_ids": [(6, 0, self.agent.ids)]})
        action = conn.with_user(self.user).action_request_disconnect()
        self.Request.browse(action["res_id"]).with_user(self.approver).action_approve()
        self.assertEnded(conn)


@tagged("post_install", "-at_install")
class TestFoldedAliasPerAgent(McpGuardCase):
    def test_aliases_folded_alike_are_not_shared_with_one_agent(self):
        shared = {**VALUES, "agent_user_ids": [(6, 0, self.agent.ids)]}
        for user, alias in ((self.user, "PROD"), (self.manager, "Prod"), (self.user, "p.rod")):
            with self.assertRaisesRegex(ValidationError, "already used"), self.env.cr.savepoint():
                self.Connection.with_user(user).create({"alias": alias, **shared})
        with self.assertRaisesRegex(UserError, "already exists"):
            self.Connection.with_user(self.agent).upsert_from_agent({"alias": "p.rod", **VALUES})
        # write: a new alias, or sharing a connection whose alias is folded alike
        # (renaming a connection an agent uses is a replacement, refused on its own: test_attack8)
        crm = self.Connection.with_user(self.user).create({"alias": "crm", **VALUES})
        crm.with_user(self.user).write({"alias": "PROD"})
        with self.assertRaisesRegex(ValidationError, "already used"), self.env.cr.savepoint():
            crm.with_user(self.user).write({"agent_user_ids": [(4, self.agent.id)]})
        crm.invalidate_recordset()
        aliases = [item["alias"] for item in self.Connection.with_user(self.agent).list_for_agent()]
        self.assertEqual(aliases, ["prod"])
        # somebody else's Prod, not shared with the agent, stays possible
        self.Connection.with_user(self.user2).create({"alias": "Prod", **VALUES})


@tagged("post_install", "-at_install")
class TestSecretAsText(McpGuardCase):
    def test_a_change_with_the_password_as_db_or_login_is_refused(self):
        Wizard = self.env["mcp.connection.change.wizard"].with_user(self.manager)
        base = {"connection_id": self.prod.id, "url": "https://erp.example.com", "db": "prod", "login": "bot",
                "protocol": "xmlrpc"}
        for vals in ({"db": "n3w-Passw0rd", "password": "n3w-Passw0rd"}, {"login": "n3w-Passw0rd", "api_key": "n3w-Passw0rd"},
                     {"db": "s3cret-pw"}, {"login": "k-123"}):
            wizard = Wizard.create({**base, **vals})
            with self.assertRaisesRegex(UserError, "password|API key"):
                wizard.action_confirm()
        self.assertFalse(self.Request.search([("connection_id", "=", self.prod.id), ("tool", "=", "odoo_connect")]))

    def test_a_connection_with_the_password_as_db_or_login_is_refused(self):
        with self.assertRaisesRegex(UserError, "password|API key"):
            self.Connection.with_user(self.user).create({**VALUES, "alias": "x1", "db": "pw-x1-long", "new_password": "pw-x1-long"})
        with self.assertRaisesRegex(UserError, "password|API key"):
            self.Connection.with_user(self.agent).upsert_from_agent({**VALUES, "alias": "x2", "login": "ak-x2", "api_key": "ak-x2"})
        conn = self.Connection.with_user(self.user).create({**VALUES, "alias": "x3", "new_password": "pw-x3-long"})
        with self.assertRaisesRegex(UserError, "password|API key"):
            conn.with_user(self.user).write({"login": "pw-x3-long"})


@tagged("post_install", "-at_install")
class TestAdminDefaultsAndTables(McpGuardCase):
    """Outside round 33. HIGH: the agent set its own user defaults (``ir.default.set``) for a
    request's state and approver: its ``file_request`` was born approved, "decided" by an
    approver who never saw it, and consume ended the connection. HIGH: an administrator's
    many2many on another model whose ``relation_table`` was one of the add-on's tables deleted
    connections and audit rows and forged votes."""

    def test_no_user_default_on_the_addons_fields(self):
        Default = self.env["ir.default"]
        for user, field, value in [
            (self.agent, "state", "approved"), (self.agent, "approver_id", self.approver.id),
            (self.user, "state", "approved"), (self.admin, "state", "approved"),
        ]:
            with self.assertRaisesRegex(UserError, f"mcp.approval.request.{field}"):
                Default.with_user(user).set("mcp.approval.request", field, value, user_id=True)
        with self.assertRaisesRegex(UserError, "mcp.connection.state"):
            Default.with_user(self.admin).set("mcp.connection", "state", "disconnected")
        # one written around the check (SQL, or before the add-on) is not taken
        field = self.env["ir.model.fields"]._get("mcp.approval.request", "state")
        self.env.cr.execute(
            "INSERT INTO ir_default (field_id, user_id, json_value) VALUES (%s, %s, %s)",
            (field.id, self.agent.id, '"approved"'))
        self.env.registry.clear_cache()
        res = self.file(self.agent)
        request = self.Request.browse(res["id"])
        self.assertEqual(request.state, "pending")
        self.assertFalse(request.approver_id)

    def test_no_manual_many2many_through_the_addons_tables(self):
        fields = self.env["ir.model.fields"].with_user(self.admin)
        model_id = self.env["ir.model"]._get_id("res.users")
        for table, column1, column2 in [
            ("mcp_connection", "owner_id", "company_id"),
            ("mcp_connection_agent_user_rel", "user_id", "connection_id"),
            ("mcp_approval_vote", "user_id", "request_id"),
            ("mcp_audit_log", "sender_id", "company_id"),
        ]:
            if table not in fields._mcp_guard_tables():
                continue  # a table of another name on this series: nothing to refuse
            with mute_logger("odoo.sql_db"), self.assertRaisesRegex(UserError, table):
                fields.create({
                    "model_id": model_id, "name": "x_through", "field_description": "x",
                    "ttype": "many2many", "state": "manual", "relation": "res.company",
                    "relation_table": table, "column1": column1, "column2": column2})
        self.assertIn("mcp_connection", fields._mcp_guard_tables())
        self.assertIn("mcp_audit_log", fields._mcp_guard_tables())
        self.prod.invalidate_recordset()
        self.assertTrue(self.prod.active)
