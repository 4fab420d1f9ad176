"""What an Agent user finds in list_for_agent depends on more than its connections: on the
user (active, in the Agent group, its allowed companies) and on the companies (active). A change
of one of these that would take a connection from the agent is refused, like an unshare: only an
approved disconnect ends a connection (DESIGN.md invariant 5). Checked in write, in the ORM's
low-level write (``record._write`` from server-action code) and in unlink, for administrators and
sudo alike; nothing here reads the context.

Nor is a person who decides an Agent: the Agent group reads every connection's password and API
key (SECRET_GROUPS), so it is the agent's technical account only. No user is both in the Agent
group and in the Approver group (which Manager and Settings imply): checked after every create
or write of users or groups that can change a membership (refuse_deciding_agents)."""

from odoo import api, models
from odoo.exceptions import ValidationError

# res.users fields that decide what the user finds: archived, groups (18: groups_id and the
# form's in_group_* / sel_groups_* fields; 19: group_ids, role), companies
USER_ACCESS_KEYS = frozenset({"active", "company_ids", "company_id", "share", "role"})


def touches_access(vals):
    return any(key in USER_ACCESS_KEYS or "group" in key for key in vals)


def archived_by(records, vals_list):
    return records.browse([rec.id for rec, vals in zip(records, vals_list, strict=True)
                           if "active" in vals and not vals["active"]])


# every user's groups, those implied (transitively) by them included, as this transaction has
# them in the database: no ORM or registry cache (19.0's implied-group closure is one) takes part
DECIDING_AGENTS_SQL = """
    WITH RECURSIVE user_groups(uid, gid) AS (
        SELECT uid, gid FROM res_groups_users_rel
        UNION
        SELECT ug.uid, imp.hid FROM user_groups ug JOIN res_groups_implied_rel imp ON imp.gid = ug.gid
    )
    SELECT uid FROM user_groups WHERE gid = %(agent)s
    INTERSECT
    SELECT uid FROM user_groups WHERE gid = %(approver)s
    ORDER BY 1
"""


def lock_agent_group(env):
    """Take the one "lock" of every change of who finds which connection, and of who is an
    Agent: an update of the Agent group's row, which changes nothing. Under Odoo's REPEATABLE
    READ, of two transactions that both take it the second to commit fails with a serialization
    error (Odoo's RPC layer retries it, and the retry sees the other's change and is checked
    against it). Taken by refuse_deciding_agents, by every check that a change of users,
    companies or groups takes no connection from an agent (mcp.connection._agent_views), and by
    every change of a connection that gives it to an agent (sharing, owner, company, active):
    so that a share and a removal of the agent's company (or group) that each pass alone cannot
    both commit (DESIGN.md invariant 5). The Agent group record, or None while it loads."""
    agent = env.ref("mcp_guard.group_mcp_agent", raise_if_not_found=False)
    if agent:
        env.cr.execute("UPDATE res_groups SET write_date = write_date WHERE id = %s", (agent.id,))
    return agent


def refuse_deciding_agents(env):
    """A ValidationError naming the users who are both in the Agent group and in the Approver
    group (directly or through implied groups: Manager, Settings, any other), all users, as this
    transaction has them in the database.

    Two transactions that each pass alone (one puts a user in a group, the other makes that group
    imply the Agent group) must not both commit: each check updates the Agent group's row, so the
    second one to do so fails with a serialization error, which Odoo's RPC layer retries, and the
    retry sees the other's change (lock_agent_group)."""
    agent = env.ref("mcp_guard.group_mcp_agent", raise_if_not_found=False)
    approver = env.ref("mcp_guard.group_mcp_approver", raise_if_not_found=False)
    if not (agent and approver):
        return  # while the add-on's own groups load
    env.flush_all()
    lock_agent_group(env)
    env.cr.execute(DECIDING_AGENTS_SQL, {"agent": agent.id, "approver": approver.id})
    both = env["res.users"].sudo().with_context(active_test=False).browse([row[0] for row in env.cr.fetchall()])
    if both:
        raise ValidationError(env._(
            "%(users)s cannot be both an MCP Guard Agent and an approver (MCP Guard Approver, Manager "
            "or Settings): the Agent group reads connection secrets; use a separate technical "
            "account for the agent.",
            # inside a user's create (a nested write of its groups) the name may not be cached yet
            users=", ".join(user.name or user.partner_id.name or user.login for user in both),
        ))


def keeping_agents_apart(env, change):
    """Run ``change`` (a create or write of users or groups), then refuse_deciding_agents; the
    change and the check run in one savepoint: a caller that catches the error keeps nothing."""
    # flushed as this environment's user, not as the cursor's first one (the savepoint's own
    # flush): inside an HttpCase of 19.0 that one may be a user a previous test rolled back
    env.flush_all()
    try:
        with env.cr.savepoint():
            result = change()
            refuse_deciding_agents(env)
            env.flush_all()
    except Exception:
        # the ORM caches of the undone change (groups of users) go with it
        env.registry.clear_cache()
        raise
    return result


class ResCompany(models.Model):
    _inherit = "res.company"

    def _mcp_agent_views(self):
        """The agents' views of connections that live in these companies."""
        views = self.env["mcp.connection"]._agent_views()
        conns = self.env["mcp.connection"].sudo().browse({cid for _uid, cid in views})
        inside = set(conns.filtered(lambda c: c.company_id in self).ids)
        return {view for view in views if view[1] in inside}

    def write(self, vals):
        Connection = self.env["mcp.connection"]
        if "active" in vals and not vals["active"]:
            # before Odoo's own checks of an archive, so that the refusal names the connections
            Connection._refuse_taking_away(self._mcp_agent_views())
        write = super().write
        return Connection._keeping_agent_views(lambda: write(vals))

    def _write_multi(self, vals_list):
        archived = archived_by(self, vals_list)
        if archived:
            self.env["mcp.connection"]._refuse_taking_away(archived._mcp_agent_views())
        return super()._write_multi(vals_list)

    def unlink(self):
        self.env["mcp.connection"]._refuse_taking_away(self._mcp_agent_views())
        return super().unlink()


class ResGroups(models.Model):
    _inherit = "res.groups"

    @api.model_create_multi
    def create(self, vals_list):
        # a new group with members, implying the Agent group and an approver's
        create = super().create
        return keeping_agents_apart(self.env, lambda: create(vals_list))

    def write(self, vals):
        # members, implied groups: any of them may take a user out of the Agent group, or put
        # an approver in it (or an agent among the approvers)
        write = super().write
        Connection = self.env["mcp.connection"]
        return keeping_agents_apart(self.env, lambda: Connection._keeping_agent_views(lambda: write(vals)))

    def unlink(self):
        Connection = self.env["mcp.connection"]
        agent_group = self.env.ref("mcp_guard.group_mcp_agent", raise_if_not_found=False)
        if agent_group and agent_group in self:
            Connection._refuse_taking_away(Connection._agent_views())
        unlink = super().unlink
        return Connection._keeping_agent_views(unlink)
