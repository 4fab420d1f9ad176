import json
from collections import Counter

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools.misc import file_open

from odoo.addons.mcp_guard.models.identity import same_person
from odoo.addons.mcp_guard.models.policy_core import alias_problem, redact, redact_text, url_has_credentials

from .common import McpGuardCase
from .test_catalog import entry

# a byte-for-byte copy of the front-end's tests/data/policy_golden.json (``make sync-core``)
with file_open("mcp_guard/tests/data/policy_golden.json") as corpus_file:
    CORPUS = json.load(corpus_file)


@tagged("post_install", "-at_install")
class TestPolicyGolden(McpGuardCase):
    """The front-end's golden corpus, against the add-on: the same documents are refused with
    the same paths, and the policy Odoo exports decides every call as the front-end does."""

    def test_golden_decisions(self):
        Tool = self.env["mcp.tool"]
        for name, document in CORPUS["policies"].items():
            cases = [case for case in CORPUS["decisions"] if case["policy"] == name]
            overrides = (document.get("risk") or {}).get("overrides", [])
            # overrides name catalog tools; every case with a class is in the catalog too
            catalog = {}
            for case in cases:
                if case["server"] and case["class"]:
                    catalog.setdefault(case["server"], {}).setdefault(case["tool"], case["class"])
            for override in overrides:
                catalog.setdefault(override["server"], {}).setdefault(override["tool"], "read")
            for server, tools in catalog.items():
                Tool.with_user(self.agent).report_catalog(
                    server, [entry(tool, risk=cls) for tool, cls in tools.items()]
                )
            self.Rule.with_user(self.manager).import_policy_document(json.dumps(document))
            once = Counter((case["server"], case["tool"]) for case in cases)
            for case in cases:
                got = self.Rule.with_user(self.agent)._decide(case["tool"], case["server"], case["class"])
                self.assertEqual(got, case["decision"], case)
                if once[(case["server"], case["tool"])] == 1 and case["server"] and case["class"]:
                    # the "rule in force" a Manager reads in the catalog is that decision too
                    tool = Tool.search([("server", "=", case["server"]), ("name", "=", case["tool"])])
                    shown = tool.with_user(self.manager)._decisions()[tool.id][0]
                    expected = "hidden" if case["decision"]["hidden"] else case["decision"]["action"]
                    self.assertEqual(shown, expected, case)

    def test_golden_faults(self):
        before = self.Rule.get_policy_document()
        for case in CORPUS["faults"]:
            document = case["text"] if "text" in case else case["document"]
            with self.assertRaises(UserError, msg=case["name"]) as caught:
                self.Rule.with_user(self.manager).import_policy_document(document)
            self.assertIn(case["fault"], str(caught.exception), case["name"])
        self.assertEqual(self.Rule.get_policy_document(), before)

    def test_golden_identities(self):
        """Look-alikes of a name are its person (small capitals, full-width, mathematical,
        Cyrillic and Greek letters, modifier letters, combining marks, an address)."""
        for first, second, why in CORPUS["identities"]["same"]:
            self.assertTrue(same_person(first, second) and same_person(second, first), why)
        for first, second, why in CORPUS["identities"]["different"]:
            self.assertFalse(same_person(first, second) or same_person(second, first), why)

    def test_golden_redactions(self):
        for case in CORPUS["redactions"]:
            self.assertEqual(redact(case["value"]), case["redacted"], case["name"])

    def test_golden_connection_urls(self):
        for url in CORPUS["connection_urls"]["credentials"]:
            self.assertTrue(url_has_credentials(url), url)
            self.assertNotIn("hunter2", redact_text(url), url)
        for url in CORPUS["connection_urls"]["clean"]:
            self.assertFalse(url_has_credentials(url), url)
            self.assertEqual(redact_text(url), url)

    def test_golden_aliases(self):
        for alias in CORPUS["aliases"]["refused"]:
            self.assertIsNotNone(alias_problem(alias), ascii(alias))
        for alias in CORPUS["aliases"]["accepted"]:
            self.assertIsNone(alias_problem(alias), alias)
