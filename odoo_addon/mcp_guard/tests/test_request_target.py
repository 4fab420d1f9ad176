from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import McpGuardCase


@tagged("post_install", "-at_install")
class TestRequestTarget(McpGuardCase):
    """An approver knows what they approve: a data tool's request names the model, the records
    and, for odoo_write, each field's current value beside the proposed one."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the agent's connection to this very database
        cls.here = cls.Connection.with_user(cls.agent).create({
            "alias": "here", "url": "http://localhost:8069", "db": cls.env.cr.dbname,
            "login": "bot", "password": "pw-here",
        })
        cls.partner = cls.env["res.partner"].create({
            "name": "Acme Old Name", "website": "https://bob:hunter2@shop.example.com",
        })

    def request(self, tool, arguments):
        res = self.file(self.agent, tool=tool, arguments=arguments)
        return self.Request.browse(res["id"])

    def test_write_shows_records_and_current_beside_proposed(self):
        req = self.request("odoo_write", {
            "alias": "here", "model": "res.partner", "ids": [self.partner.id],
            "values": {"name": "Acme New Name", "website": "https://shop.example.com"},
        })
        seen = req.with_user(self.approver)
        self.assertEqual(seen.summary, "agent-test asks to change 1 res.partner record(s)")
        self.assertEqual(seen.risk_class, "write")
        self.assertEqual(seen.target_model, "res.partner")
        self.assertIn("this database", seen.target_location)
        self.assertEqual(seen.target_records, f"Acme Old Name (#{self.partner.id})")
        table = str(seen.target_changes)
        self.assertIn("Acme Old Name", table)
        self.assertIn("Acme New Name", table)
        self.assertLess(table.index("Acme Old Name</td>"), table.index("Acme New Name"))
        # the current value passes the one redaction rule: no password from a URL
        self.assertNotIn("hunter2", table)
        self.assertIn("bob:***@shop.example.com", table)

    def test_secrets_proposed_and_current_are_redacted(self):
        req = self.request("odoo_write", {
            "alias": "here", "model": "res.users", "ids": [self.user.id],
            "values": {"password": "n3w-s3cret", "api_key": "k-n3w"},
        })
        table = str(req.with_user(self.approver).target_changes)
        self.assertNotIn("n3w-s3cret", table)
        self.assertNotIn("k-n3w", table)
        self.assertIn("***", table)
        self.assertNotIn("n3w-s3cret", str(req.with_user(self.manager).target_changes))

    def test_names_of_records_the_approver_cannot_read_and_nothing_more(self):
        param = self.env["ir.config_parameter"].sudo().create({"key": "mcp.test.secret", "value": "v4lue-x"})
        req = self.request("odoo_write", {
            "alias": "here", "model": "ir.config_parameter", "ids": [param.id, 999999999],
            "values": {"value": "other"},
        })
        seen = req.with_user(self.approver)
        # the approver cannot read system parameters: not even their names (ACLs hold)
        self.assertIn(f"#{param.id} (not readable by you)", seen.target_records)
        self.assertNotIn("mcp.test.secret", seen.target_records)
        self.assertIn("#999999999 (no such record)", seen.target_records)
        self.assertNotIn("v4lue-x", str(seen.target_changes))
        self.assertIn("(not readable by you)", str(seen.target_changes))
        # the requesting agent cannot use its request to read names
        with self.assertRaises(AccessError):
            req.with_user(self.agent).read(["target_records"])

    def test_unlink_lists_records_create_lists_values(self):
        req = self.request("odoo_unlink", {"alias": "here", "model": "res.partner", "ids": [self.partner.id]})
        self.assertEqual(req.with_user(self.approver).target_records, f"Acme Old Name (#{self.partner.id})")
        self.assertFalse(req.with_user(self.approver).target_changes)
        self.assertEqual(req.risk_class, "destructive")
        self.assertNotIn("Acme", req.with_user(self.agent).summary)
        req = self.request("odoo_create", {"alias": "here", "model": "res.partner", "values": {"name": "Brand New"}})
        self.assertIn("new record", str(req.with_user(self.approver).target_changes))
        self.assertIn("Brand New", str(req.with_user(self.approver).target_changes))

    def test_another_odoo_is_not_read_from_here(self):
        req = self.request("odoo_write", {
            "alias": "prod", "model": "res.partner", "ids": [self.partner.id], "values": {"name": "X"},
        })
        seen = req.with_user(self.approver)
        self.assertEqual(seen.target_model, "res.partner")
        self.assertIn("another Odoo", seen.target_location)
        self.assertFalse(seen.target_records)
        self.assertFalse(seen.target_changes)
        req = self.request("odoo_unlink", {"alias": "here", "model": "no.such.model", "ids": [1]})
        self.assertIn("not installed", req.with_user(self.approver).target_records)

    def test_form_shows_the_section(self):
        req = self.request("odoo_write", {
            "alias": "here", "model": "res.partner", "ids": [self.partner.id], "values": {"name": "Acme New Name"},
        })
        arch = self.Request.with_user(self.approver).get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="target_changes"', arch)
        self.assertTrue(req.with_user(self.approver).can_decide)
