MODELS = ("mcp.approval.request", "mcp.connection", "mcp.tool.rule")


def uninstall_hook(env):
    """Remove the activities of our records first: their activity type is deleted with the
    module and mail.activity refers to it with ON DELETE RESTRICT."""
    env["mail.activity"].sudo().search([("res_model", "in", MODELS)]).unlink()
