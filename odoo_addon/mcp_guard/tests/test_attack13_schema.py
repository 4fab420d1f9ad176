"""Attack 13 (found on live Odoo 18 and 19): an administrator over RPC sent ``_force_unlink``
(Odoo's uninstall flag) with ``ir.model.fields.unlink`` of mcp.connection.url: Odoo dropped the
column and every connection lost its URL, no request filed. The add-on's schema (models,
columns, selection values, constraints, relation tables) changes only under the module loader:
no context key lifts it (DESIGN.md invariant 14)."""

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import McpGuardCase

# context keys a client can send; none of them makes a client the module loader
CONTEXTS = [
    {},
    {"_force_unlink": True},
    {"_force_unlink": True, "module": "mcp_guard", "install_mode": True, "install_module": "mcp_guard",
     "update_custom_fields": True, "mcp_guard_privileged": True},
]
# columns whose loss ends or replaces a connection or erases evidence
COLUMNS = [
    ("mcp.connection", "url"), ("mcp.connection", "state"), ("mcp.connection", "agent_user_ids"),
    ("mcp.approval.request", "state"), ("mcp.approval.vote", "request_id"),
    ("mcp.approval.request", "arguments_hash"), ("mcp.audit.log", "tool"), ("mcp.audit.log", "outcome"),
    ("mcp.tool", "name"), ("mcp.tool.rule", "name"),
    ("res.users", "mcp_principals"),
]
MODELS = ["mcp.connection", "mcp.approval.request", "mcp.approval.vote", "mcp.audit.log", "mcp.tool",
          "mcp.tool.rule", "mcp.tool.server"]


@tagged("post_install", "-at_install")
class TestAttack13Schema(McpGuardCase):
    def setUp(self):
        super().setUp()
        self.assertTrue(self.env.registry.ready, "post_install tests meet a ready registry, as a client does")
        self.sys = self.env(user=self.admin)  # an administrator, as over RPC

    def _field(self, model, name):
        field = self.sys["ir.model.fields"].search([("model", "=", model), ("name", "=", name)])
        self.assertEqual(len(field), 1, f"{model}.{name}")
        return field

    def _column_exists(self, table, column):
        self.env.cr.execute("SELECT 1 FROM information_schema.columns WHERE table_name=%s AND column_name=%s",
                            [table, column])
        return bool(self.env.cr.fetchone())

    def _table_exists(self, table):
        self.env.cr.execute("SELECT 1 FROM information_schema.tables WHERE table_name=%s", [table])
        return bool(self.env.cr.fetchone())

    def test_force_unlink_of_a_column_is_refused(self):
        for model, name in COLUMNS:
            field = self._field(model, name)
            for ctx in CONTEXTS:
                with self.subTest(field=f"{model}.{name}", ctx=ctx):
                    with self.assertRaises(UserError):
                        field.with_context(**ctx).unlink()
        self.assertTrue(self._column_exists("mcp_connection", "url"))
        self.prod.invalidate_recordset()
        self.assertEqual(self.prod.url, "https://erp.example.com")
        listed = self.Connection.with_user(self.agent).list_for_agent()
        self.assertIn("prod", [c["alias"] for c in listed])

    def test_the_refusal_names_the_field(self):
        with self.assertRaisesRegex(UserError, r"mcp\.connection\.url"):
            self._field("mcp.connection", "url").with_context(_force_unlink=True).unlink()

    def test_removing_a_column_through_its_model_is_refused(self):
        url = self._field("mcp.connection", "url")
        model = self.sys["ir.model"]._get("mcp.connection")
        for ctx in CONTEXTS:
            for command in ([(2, url.id)], [(3, url.id)], [(5, 0, 0)], [(6, 0, [])]):
                with self.subTest(ctx=ctx, command=command), self.assertRaises(UserError):
                    model.with_context(**ctx).write({"field_id": command})
        self.assertTrue(self._column_exists("mcp_connection", "url"))

    def test_altering_a_column_is_refused(self):
        url = self._field("mcp.connection", "url")
        for ctx in CONTEXTS:
            for vals in ({"name": "x_url"}, {"ttype": "text"}, {"store": False}, {"related": "alias"},
                         {"state": "manual"}, {"model_id": self.sys["ir.model"]._get_id("res.partner")}):
                with self.subTest(ctx=ctx, vals=vals), self.assertRaises(UserError):
                    url.with_context(**ctx).write(vals)
        self.assertTrue(self._column_exists("mcp_connection", "url"))

    def test_force_unlink_of_a_model_is_refused(self):
        for name in MODELS:
            model = self.sys["ir.model"]._get(name)
            for ctx in CONTEXTS:
                with self.subTest(model=name, ctx=ctx), self.assertRaises(UserError):
                    model.with_context(**ctx).unlink()
            self.assertTrue(self._table_exists(self.env[name]._table))
        with self.assertRaisesRegex(UserError, r"mcp\.connection"):
            self.sys["ir.model"]._get("mcp.connection").with_context(_force_unlink=True).unlink()

    def test_removing_a_selection_value_is_refused(self):
        values = self.sys["ir.model.fields.selection"].search([
            ("field_id", "in", (self._field("mcp.connection", "state") | self._field("mcp.approval.request", "state")).ids)])
        self.assertTrue(values)
        for ctx in CONTEXTS:
            with self.subTest(ctx=ctx):
                with self.assertRaises(UserError):
                    values.with_context(**ctx).unlink()
                with self.assertRaises(UserError):
                    values[:1].with_context(**ctx).write({"value": "renamed"})
        self.assertEqual(self.prod.state, self.prod.state)  # still readable

    def test_dropping_a_constraint_or_relation_table_is_refused(self):
        module = self.env.ref("base.module_mcp_guard")
        constraints = self.sys["ir.model.constraint"].search([("module", "=", module.id)])
        relations = self.sys["ir.model.relation"].search([("module", "=", module.id)])
        self.assertTrue(constraints)
        self.assertTrue(relations)
        for ctx in CONTEXTS:
            with self.subTest(ctx=ctx):
                for constraint in constraints:
                    with self.assertRaises(UserError):
                        constraint.with_context(**ctx).unlink()
                with self.assertRaises(UserError):
                    constraints[:1].with_context(**ctx).write({"name": "renamed"})
                for relation in relations:
                    with self.assertRaises(UserError):
                        relation.with_context(**ctx).unlink()
        self.env.cr.execute("SELECT count(*) FROM pg_constraint WHERE conname = ANY(%s)", [constraints.mapped("name")])
        self.assertTrue(self.env.cr.fetchone()[0])
        for relation in relations:
            self.assertTrue(self._table_exists(relation.name))

    def test_translations_of_labels_and_other_models_stay_editable(self):
        url = self._field("mcp.connection", "url")
        url.write({"field_description": "Server URL", "help": "The server's address"})
        self.assertEqual(url.field_description, "Server URL")
        # another model's column is Odoo's business, not the add-on's: Odoo's own refusal applies
        with self.assertRaises(UserError):
            self._field("res.partner", "name").unlink()

    def test_schema_external_ids_cannot_be_repointed_or_removed(self):
        xmlids = self.sys["ir.model.data"].search([
            ("module", "=", "mcp_guard"), ("model", "in", ["ir.model", "ir.model.fields", "ir.model.constraint"])])
        self.assertTrue(xmlids)
        for ctx in CONTEXTS:
            with self.subTest(ctx=ctx):
                with self.assertRaises(UserError):
                    xmlids[:1].with_context(**ctx).write({"module": "base"})
                with self.assertRaises(UserError):
                    xmlids.with_context(**ctx).unlink()
