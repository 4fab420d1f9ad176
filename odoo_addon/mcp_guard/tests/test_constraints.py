from psycopg2 import IntegrityError

from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import McpGuardCase

# model -> (constraint name without the table prefix, definition as PostgreSQL prints it);
# declared through models/compat.py, which 19.0 must not silently drop like _sql_constraints
UNIQUE = {
    "mcp.tool.rule": ("name_unique", "UNIQUE (name)"),
    "mcp.connection": ("alias_owner_unique", "UNIQUE (owner_id, alias)"),
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
        self.Rule.with_user(self.manager).create({"name": "dup_tool", "action": "allow"})
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.Rule.with_user(self.manager).create({"name": "dup_tool", "action": "deny"})
            self.env.flush_all()

    def test_duplicate_alias_of_one_owner_is_refused(self):
        vals = {"alias": "prod", "url": "https://other.example.com", "db": "other", "login": "bot"}
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.Connection.with_user(self.agent).create(vals)
            self.env.flush_all()
        # another owner may use the same alias
        self.Connection.with_user(self.agent2).create(vals)
        self.env.flush_all()
