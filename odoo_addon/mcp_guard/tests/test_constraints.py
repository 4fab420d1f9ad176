from psycopg2 import IntegrityError
from psycopg2.errors import UniqueViolation

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import McpGuardCase

# model -> (constraint name without the table prefix, definition as PostgreSQL prints it);
# declared through models/compat.py, which 19.0 must not silently drop like _sql_constraints
UNIQUE = {
    "mcp.tool.rule": ("name_unique", "UNIQUE (name)"),
    "mcp.audit.log": ("sender_uuid_unique", "UNIQUE (sender_id, uuid)"),
    "mcp.tool.server": ("name_unique", "UNIQUE (name)"),
    "mcp.tool": ("catalog_entry_unique", "UNIQUE (server_id, name)"),
}


@tagged("post_install", "-at_install")
class TestConstraints(McpGuardCase):

    def test_unique_constraints_exist_in_the_database(self):
        for model, (name, definition) in UNIQUE.items():
            table = self.env[model]._table
            self.env.cr.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
                (table, f"{table}_{name}"),
            )
            self.assertEqual(self.env.cr.fetchall(), [(definition,)], f"{model}: {table}_{name}")

    def test_duplicate_rule_name_is_refused(self):
        rule = self.Rule.with_user(self.manager).create({"name": "dup_tool", "action": "allow"})
        # refused before the constraint, in one line naming the tool (outside tester, LOW)
        with self.assertRaisesRegex(ValidationError, "^There is already a rule for dup_tool: "):
            self.Rule.with_user(self.manager).create({"name": "dup_tool", "action": "deny"})
        # and by the constraint itself, for SQL that no check of the ORM reads
        self.env.flush_all()
        with mute_logger("odoo.sql_db"), self.assertRaises(UniqueViolation), self.env.cr.savepoint():
            self.env.cr.execute(
                "INSERT INTO mcp_tool_rule (name, action, sequence, active) SELECT name, 'deny', sequence, active "
                "FROM mcp_tool_rule WHERE id = %s", (rule.id,))

    def test_duplicate_alias_of_one_owner_is_refused(self):
        # unique among the connections in use: an ended (archived) one frees its alias
        self.env.cr.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'mcp_connection_alias_owner_active_uniq'")
        self.assertEqual(self.env.cr.fetchall(), [(
            "CREATE UNIQUE INDEX mcp_connection_alias_owner_active_uniq ON public.mcp_connection "
            "USING btree (owner_id, alias) WHERE active",
        )])
        vals = {"alias": "prod", "url": "https://other.example.com", "db": "other", "login": "bot"}
        # refused before the index, in one line naming the alias (outside tester, LOW 2)
        with self.assertRaisesRegex(ValidationError, "^The alias prod is already used by another connection of "):
            self.Connection.with_user(self.agent).create(vals)
        # and by the index itself, for SQL that no check of the ORM reads
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.env.cr.execute(
                "INSERT INTO mcp_connection (alias, url, db, login, protocol, owner_id, company_id, state, active) "
                "SELECT alias, url, db, login, protocol, owner_id, company_id, state, active FROM mcp_connection "
                "WHERE id = %s", (self.prod.id,))
        # another owner may use the same alias
        self.Connection.with_user(self.agent2).create(vals)
        self.env.flush_all()
