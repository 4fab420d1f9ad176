"""odoo-mcp-guard: a policy and four-eyes approval gate for MCP tools that manage Odoo
connections."""

__version__ = "0.1.0"
