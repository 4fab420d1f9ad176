{
    "name": "MCP Guard",
    "version": "18.0.1.0.0",
    "category": "Productivity",
    "summary": "Policy, audit and four-eyes approvals for MCP agents that manage Odoo connections",
    "description": """
MCP Guard keeps the decisions of an MCP guard front-end in Odoo: the tool policy,
the connections an agent may use, approval requests that a second person must
approve (never the requester), and an append-only audit trail. Every rule is
enforced inside the server methods, not by the views.
""",
    "author": "odoo-mcp-guard",
    "website": "https://github.com/odoo-mcp-guard/odoo-mcp-guard",
    "license": "LGPL-3",
    "depends": ["base", "mail"],
    "data": [
        "security/mcp_guard_security.xml",
        "security/ir.model.access.csv",
        "security/mcp_guard_rules.xml",
        "data/ir_sequence_data.xml",
        "data/mail_activity_type_data.xml",
        "data/mcp_tool_rule_data.xml",
        "data/ir_cron_data.xml",
        "wizard/mcp_approval_reject_wizard_views.xml",
        "wizard/mcp_policy_wizard_views.xml",
        "views/mcp_connection_views.xml",
        "views/mcp_approval_request_views.xml",
        "views/mcp_tool_rule_views.xml",
        "views/mcp_audit_log_views.xml",
        "views/mcp_guard_menus.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "mcp_guard/static/src/js/tours/*.js",
        ],
    },
    "application": True,
    "installable": True,
}
