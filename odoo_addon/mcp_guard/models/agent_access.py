"""What an Agent user finds in list_for_agent depends on more than its connections: on the
user (active, in the Agent group, its allowed companies) and on the companies (active). A change
of one of these that would take a connection from the agent is refused, like an unshare: only an
approved disconnect ends a connection (DESIGN.md invariant 5). Checked in write, in the ORM's
low-level write (``record._write`` from server-action code) and in unlink, for administrators and
sudo alike; nothing here reads the context."""

from odoo import models

# res.users fields that decide what the user finds: archived, groups (18: groups_id and the
# form's in_group_* / sel_groups_* fields; 19: group_ids, role), companies
USER_ACCESS_KEYS = frozenset({"active", "company_ids", "company_id", "share", "role"})


def touches_access(vals):
    return any(key in USER_ACCESS_KEYS or "group" in key for key in vals)


def archived_by(records, vals_list):
    return records.browse([rec.id for rec, vals in zip(records, vals_list, strict=True)
                           if "active" in vals and not vals["active"]])


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

    def write(self, vals):
        # members, implied groups: any of them may take a user out of the Agent group
        write = super().write
        return self.env["mcp.connection"]._keeping_agent_views(lambda: write(vals))

    def unlink(self):
        Connection = self.env["mcp.connection"]
        agent_group = self.env.ref("mcp_guard.group_mcp_agent", raise_if_not_found=False)
        if agent_group and agent_group in self:
            Connection._refuse_taking_away(Connection._agent_views())
        unlink = super().unlink
        return Connection._keeping_agent_views(unlink)
