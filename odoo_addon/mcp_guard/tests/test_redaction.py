import json

from odoo.tests import tagged

from .common import SERVER, McpGuardCase
from .test_audit import event

SECRETS = (
    "S3cr-nested", "S3cr-pwd", "S3cr-pass", "S3cr-auth", "S3cr-db", "S3cr-refresh", "S3cr-bearer",
    "S3cr-url", "S3cr-text", "S3cr-json", "S3cr-list", "S3cr-apikey",
)


def secret_arguments():
    return {
        "alias": "prod",
        "model": "res.users",
        "values": {
            "name": "Ann",
            "password": "S3cr-nested",
            "settings": {"pwd": "S3cr-pwd", "pass": "S3cr-pass", "auth": "S3cr-auth"},
            "db_password": "S3cr-db",
            "refresh_token": "S3cr-refresh",
            "headers": {"Authorization": "Bearer S3cr-bearer", "X-Api-Key": "S3cr-apikey"},
            "website": "https://ann:S3cr-url@erp.example.com/web",
            "comment": "use password=S3cr-text here",
            "payload": json.dumps({"credentials": {"pin": "S3cr-json"}}),
            "tags": ["a", {"access_token": "S3cr-list"}],
        },
    }


@tagged("post_install", "-at_install")
class TestRedaction(McpGuardCase):
    """What approvers see of a request, and the audit trail, never hold a secret (invariant 13)."""

    def assertNoSecret(self, text, where):
        leaked = [secret for secret in SECRETS if secret in text]
        self.assertFalse(leaked, "%s shows %s:\n%s" % (where, leaked, text))

    def test_request_shows_no_nested_variant_or_url_secret(self):
        args = secret_arguments()
        res = self.file(self.agent, tool="odoo_write", arguments=args)
        req = self.Request.with_user(self.approver).browse(res["id"])
        shown = req.read(["arguments", "display_name"])[0]
        self.assertNoSecret(json.dumps(shown), "the request as read by an approver")
        stored = json.loads(req.arguments)
        self.assertEqual(stored["values"]["name"], "Ann")  # what is not secret stays readable
        self.assertEqual(stored["values"]["website"], "https://ann:***@erp.example.com/web")
        self.assertEqual(stored["values"]["settings"], {"pwd": "***", "pass": "***", "auth": "***"})
        # the binding is to the real arguments, not to what is shown
        self.assertEqual(req.sudo().arguments_hash, self.digest(args))  # not shown to the approver
        changed = json.loads(json.dumps(args))
        changed["values"]["settings"]["pwd"] = "S3cr-other"
        other = self.file(self.agent, tool="odoo_write", arguments=changed)
        self.assertNotEqual(other["id"], res["id"])
        self.assertEqual(self.Request.browse(other["id"]).arguments, req.arguments)
        messages = self.env["mail.message"].sudo().search(
            [("model", "=", "mcp.approval.request"), ("res_id", "in", [res["id"], other["id"]])]
        )
        self.assertNoSecret(" ".join(str(body) for body in messages.mapped("body")), "the chatter")

    def test_audit_detail_is_redacted_when_stored(self):
        detail = "Odoo at https://bot:S3cr-url@erp.example.com is unreachable; token=S3cr-refresh"
        self.Audit.with_user(self.agent).record_batch([event(detail=detail)])
        log = self.Audit.with_user(self.approver).search([], order="id desc", limit=1)
        self.assertNoSecret(log.detail, "the audit detail")
        self.assertIn("https://bot:***@erp.example.com", log.detail)

    def test_audit_detail_hides_the_shapes_testers_found(self):
        detail = ("mdp=S3cr-text clave: S3cr-pwd cvv=S3cr-pass security_code=S3cr-auth "
                  "{&quot;password&quot;: &quot;S3cr-json&quot;} http://admin:Pa/S3cr-url@erp.example.com "
                  "next=http%3A%2F%2Fu%3AS3cr-db%40h Bearer%20S3cr-bearer")
        self.Audit.with_user(self.agent).record_batch([event(detail=detail)])
        log = self.Audit.with_user(self.approver).search([], order="id desc", limit=1)
        self.assertNoSecret(log.detail, "the audit detail")

    def test_request_form_hides_credentials_in_the_connection_fields(self):
        """A connection's db or login holding credentials (a DSN, "bot password=X"): the request's
        connection fields, its name and chatter, as an approver reads them, hide them; the request
        is still bound to that connection and can be carried out."""
        conn = self.Connection.with_user(self.agent).create({
            "alias": "dsn", "url": "https://erp.example.com", "db": "postgres://u:S3cr-db@db.example.com/prod",
            "login": "bot password=S3cr-text", "password": "s3cret-pw",
        })
        res = self.file(self.agent, arguments={"alias": "dsn"})
        req = self.Request.with_user(self.approver).browse(res["id"])
        shown = req.read(["connection_url", "connection_db", "connection_login", "display_name", "arguments"])[0]
        self.assertNoSecret(json.dumps(shown), "the request's connection fields as read by an approver")
        self.assertEqual(shown["connection_db"], "postgres://u:***@db.example.com/prod")
        messages = self.env["mail.message"].sudo().search([("model", "=", req._name), ("res_id", "=", req.id)])
        self.assertNoSecret(" ".join(str(body) for body in messages.mapped("body")), "the chatter")
        req.action_approve()
        done = self.Request.with_user(self.agent).consume(res["id"], "odoo_disconnect", self.digest({"alias": "dsn"}), server=SERVER)
        self.assertTrue(done["ok"], done)
        self.assertEnded(conn)
