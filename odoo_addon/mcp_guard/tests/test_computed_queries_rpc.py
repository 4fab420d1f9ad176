"""Outside security tester, LOW: a search, a read_group (formatted_read_group on 19.0) or an
``order`` on a field of the add-on's models that is computed and not stored (mcp.connection's
has_password, in_use_by_agent, can_edit; a request's can_approve, summary; ...) answered with
the ORM's ValueError traceback on Odoo 19.0, and a search by one of them was silently ignored
on Odoo 18.0 (every record came back). Such a query is refused, for every role, with one line
naming the field, by the same check that refuses the secrets (mcp_guard_common
check_query_fields). A non-stored field with a search method is still searched; grouping or
sorting by it is refused the same way. The add-on's own filters, groupings and sorts (search
views, actions, list and kanban views) are untouched. Over real JSON-RPC, as each role."""

import datetime
import json

from lxml import etree

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from odoo.addons.mcp_guard.models.compat import SERIES

CTX = {"no_reset_password": True}
ONE_LINE_ERRORS = ("odoo.exceptions.UserError", "odoo.exceptions.AccessError")
# the add-on's models a client queries (the wizards are transient: nobody lists them)
MODELS = ("mcp.connection", "mcp.approval.request", "mcp.approval.vote", "mcp.audit.log", "mcp.tool", "mcp.tool.rule",
          "mcp.tool.server")
# named by the outside tester
NAMED = {
    "mcp.connection": ("has_password", "has_api_key", "in_use_by_agent", "can_edit", "can_change_owner",
                       "can_request_disconnect", "request_count"),
    "mcp.approval.request": ("can_approve", "can_decide", "can_cancel", "cannot_approve_reason", "summary",
                             "risk_class", "approval_count", "shown_new_url"),
    "mcp.tool": ("call_count", "refusal_count", "rule_in_force"),
    "mcp.tool.server": ("tool_count",),
}


@tagged("post_install", "-at_install")
class TestComputedQueriesOverRpc(HttpCase):
    def setUp(self):
        super().setUp()
        self.users = {
            "agent": new_test_user(self.env, "cq_agent", "mcp_guard.group_mcp_agent", context=CTX,
                                   email="cq.agent@example.org"),
            "alice": new_test_user(self.env, "cq_alice", "mcp_guard.group_mcp_approver", context=CTX,
                                   email="cq.alice@example.org"),
            "olga": new_test_user(self.env, "cq_olga", "mcp_guard.group_mcp_user", context=CTX,
                                  email="cq.olga@example.org"),
            "mia": new_test_user(self.env, "cq_mia", "mcp_guard.group_mcp_manager", context=CTX,
                                 email="cq.mia@example.org"),
        }
        # new_test_user's password: the login, padded to 8 characters with x
        self.passwords = {name: user.login.ljust(8, "x") for name, user in self.users.items()}
        admin = self.env.ref("base.user_admin")
        admin.password = "admin-cq"
        self.users["admin"], self.passwords["admin"] = admin, "admin-cq"
        self.conn_id = self.rpc("olga", "mcp.connection", "create", [{
            "alias": "cq", "url": "https://erp.example.com", "db": "d", "login": "l", "new_password": "pw"}])
        self.assertIsInstance(self.conn_id, int)

    def rpc(self, who, model, method, args, kwargs=None):
        """The call's result; an error is returned as ("error", exception name, message)."""
        user = self.users[who]
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.env.cr.dbname, user.id, self.passwords[who], model, method, args, kwargs or {}]}}
        response = self.url_open("/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"})
        body = response.json()
        if "error" in body:
            return ("error", body["error"]["data"]["name"], body["error"]["data"]["message"])
        return body["result"]

    def assertRefused(self, answer, model, field, words):  # noqa: N802 (unittest naming)
        self.assertIsInstance(answer, tuple, f"the query answered {answer!r}")
        _error, name, message = answer
        self.assertIn(name, ONE_LINE_ERRORS, message)
        self.assertNotIn("\n", message.strip())
        self.assertNotIn("Traceback", message)
        self.assertIn(f"{model}.{field}", message)
        self.assertIn(words, message)

    @staticmethod
    def searches(field):
        yield "search", [[(field, "=", True)]], {}
        yield "search_count", [[(field, "!=", False)]], {}
        yield "search_read", [["|", ("id", "=", 0), "!", (field, "=", False)]], {"fields": ["id"]}

    @staticmethod
    def groupings(field):
        yield "search", [[]], {"order": field}
        yield "search_read", [[]], {"order": f"id, {field} desc", "fields": ["id"]}
        yield "read_group", [[], ["id:count"], [field]], {}
        yield "read_group", [[], [f"{field}:count_distinct"], ["id"]], {}
        yield "read_group", [[], ["id:count"], ["id"]], {"orderby": field}
        if SERIES >= 19:
            yield "formatted_read_group", [[]], {"groupby": [field]}
            yield "formatted_read_group", [[]], {"groupby": ["id"], "aggregates": [f"{field}:count_distinct"]}

    def computed_fields(self, model):
        """(name, searchable) of each field of ``model`` computed and not stored, but related
        fields (the ORM reads those through their relation)."""
        return [(name, bool(field.search)) for name, field in self.env[model]._fields.items()
                if not field.store and not field.related]

    def test_the_named_fields_are_computed_and_not_searchable(self):
        for model, names in NAMED.items():
            for name in names:
                field = self.env[model]._fields[name]
                self.assertFalse(field.store or field.search, f"{model}.{name}")

    def test_computed_fields_refused_in_one_line(self):
        for model, names in NAMED.items():
            for field in names:
                for who in self.users:
                    for method, args, kwargs in (*self.searches(field), *self.groupings(field)):
                        with self.subTest(who=who, model=model, method=method, args=repr(args), kwargs=kwargs):
                            self.assertRefused(self.rpc(who, model, method, args, kwargs), model, field,
                                               "cannot be searched, grouped or sorted")
        # through a relation, and in an "any" sub-domain
        for path, domain in (
            ("mcp.connection.has_password", [("connection_id.has_password", "=", True)]),
            ("mcp.connection.can_edit", [("connection_id", "any", [("can_edit", "=", True)])]),
        ):
            with self.subTest(domain=domain):
                answer = self.rpc("alice", "mcp.approval.request", "search", [domain])
                self.assertIsInstance(answer, tuple, answer)
                self.assertIn(path, answer[2])

    def test_every_computed_field_of_every_model(self):
        """Not only the named ones: each non-stored field of each of the add-on's models, as a
        manager (who reads them all)."""
        for model in MODELS:
            for field, searchable in self.computed_fields(model):
                if not searchable:
                    for method, args, kwargs in self.searches(field):
                        with self.subTest(model=model, field=field, method=method, args=repr(args)):
                            self.assertRefused(self.rpc("mia", model, method, args, kwargs), model, field,
                                               "cannot be searched, grouped or sorted")
                for method, args, kwargs in self.groupings(field):
                    with self.subTest(model=model, field=field, method=method, args=repr(args), kwargs=kwargs):
                        self.assertRefused(self.rpc("mia", model, method, args, kwargs), model, field,
                                           "grouped or sorted")

    def test_searchable_computed_fields_still_searched(self):
        # mail's message_is_follower: computed, not stored, searched by its search method
        self.assertEqual(self.rpc("olga", "mcp.connection", "search", [[("message_is_follower", "=", True),
                                                                       ("alias", "=", "cq")]]), [self.conn_id])
        self.assertEqual(self.rpc("olga", "mcp.connection", "search", [[("display_name", "ilike", "cq")]]),
                         [self.conn_id])
        # stored fields: as before
        self.assertEqual(self.rpc("mia", "mcp.connection", "search", [[("alias", "=", "cq")]],
                                  {"order": "alias desc, id"}), [self.conn_id])
        self.assertIsInstance(self.rpc("mia", "mcp.connection", "read_group", [[], ["id:count"], ["owner_id"]]),
                              list)
        self.assertIsInstance(self.rpc("mia", "mcp.approval.request", "read_group",
                                       [[], ["id:count"], ["create_date:day"]]), list)

    def test_the_add_on_views_still_search_group_and_sort(self):
        """Every filter, grouping and sort of the add-on's search, list and kanban views and of
        its window actions runs, as the role each is for (the manager reads them all)."""
        env = self.env(user=self.users["mia"])
        evaluation = {"uid": env.uid, "context_today": datetime.date.today}
        checked = 0
        views = self.env["ir.ui.view"].search([("model", "in", MODELS), ("type", "in", ("search", "list", "kanban")),
                                               ("inherit_id", "=", False)])
        for view in views:
            Model = env[view.model]
            arch = etree.fromstring(Model.get_views([(view.id, view.type)])["views"][view.type]["arch"])
            for node in arch.iter("filter", "field", "list", "kanban", "searchpanel"):
                with self.subTest(view=view.xml_id or view.name, node=etree.tostring(node)[:120]):
                    if node.get("domain") and node.tag == "filter":
                        Model.search(safe_eval(node.get("domain"), evaluation), limit=1)
                        checked += 1
                    if node.tag == "filter" and "group_by" in (node.get("context") or ""):
                        groupby = safe_eval(node.get("context"), evaluation)["group_by"]
                        Model.read_group([], ["id:count"], [groupby] if isinstance(groupby, str) else groupby)
                        checked += 1
                    if node.tag == "field" and view.type == "search":
                        # as the search box searches: the field's filter_domain, or the field itself
                        domain = node.get("filter_domain") or f"[({node.get('name')!r}, 'ilike', self)]"
                        Model.search(safe_eval(domain, {**evaluation, "self": "x"}), limit=1)
                        checked += 1
                    if node.get("default_order"):
                        Model.search([], order=node.get("default_order"), limit=1)
                        checked += 1
                    if node.get("default_group_by"):
                        Model.read_group([], ["id:count"], [node.get("default_group_by")])
                        checked += 1
        for action in self.env["ir.actions.act_window"].search([("res_model", "in", MODELS)]):
            with self.subTest(action=action.xml_id or action.name):
                Model = env[action.res_model]
                Model.search(safe_eval(action.domain or "[]", evaluation), limit=1)
                context = safe_eval(action.context or "{}", {**evaluation, "active_id": False, "active_ids": [],
                                                             "context": {}})
                groupby = context.get("group_by")
                if groupby:
                    Model.read_group([], ["id:count"], [groupby] if isinstance(groupby, str) else groupby)
                checked += 1
        self.assertGreater(checked, 40)
