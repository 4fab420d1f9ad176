"""The one place where the Python code meets what differs between Odoo 18.0 and 19.0.

The rest of the add-on is written once, against these names. The per-series manifests and
security groups live under ``odoo_addon/series/<series>/mcp_guard`` (see the README).
"""

from odoo import models, release

SERIES = release.version_info[0]

if SERIES >= 19:
    # the members of a group, those through implied groups included: 18.0's res.groups.users;
    # 19.0's user_ids holds the explicit members only
    GROUP_USERS = "all_user_ids"
    # the groups of a user, those implied included (searchable): 18.0's groups_id holds them all
    USER_GROUPS = "all_group_ids"
    Constraint = models.Constraint
else:
    GROUP_USERS = "users"
    USER_GROUPS = "groups_id"

    class Constraint:
        """18.0 stand-in for 19.0's ``models.Constraint``: declared the 19.0 way (a private
        class attribute), it adds itself to the model's ``_sql_constraints``, which 19.0
        ignores. Both series then name it ``<table>_<attribute without its underscore>``."""

        def __init__(self, definition, message=""):
            self.definition = definition
            self.message = message

        def __set_name__(self, owner, name):
            own = list(owner.__dict__.get("_sql_constraints", ()))
            owner._sql_constraints = [*own, (name[1:], self.definition, self.message)]
