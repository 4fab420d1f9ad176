from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .agent_access import lock_agent_group
from .compat import GROUP_USERS
from .mcp_guard_common import (
    MAX_ALIAS_LENGTH,
    REQUIRED,
    URL_CREDENTIALS_MESSAGE,
    alias_forms,
    alias_problem,
    check_arguments,
    check_field_values,
    ensure_one,
    internal_write,
    is_internal_write,
    removal_allowed_ids,
    url_has_credentials,
)
from .identity import secret_problem, text_problem
from .mcp_guard_context import trusted

PROTOCOLS = [("xmlrpc", "XML-RPC"), ("jsonrpc", "JSON-RPC"), ("json2", "JSON-2")]
AGENT_KEYS = {"alias", "url", "db", "login", "password", "api_key", "protocol"}
# only the Agent reads secrets (to connect); Managers and owners set them write-only
SECRET_GROUPS = "mcp_guard.group_mcp_agent"
# what the agent connects with: changing one of these on a connection an agent uses is a
# replacement (DESIGN.md invariant 11) and goes through approval, never a plain Save
REPLACEMENT_FIELDS = ("url", "db", "login", "protocol", "password", "api_key")
# the alias is what the agent names the connection by: renaming a connection in use frees its
# alias for another connection, so a rename is a replacement too (invariants 11 and 14)
GUARDED_FIELDS = ("alias", *REPLACEMENT_FIELDS)
SECRET_FIELDS = ("password", "api_key")
# where the saved secrets are sent: a secret was given for one server, database and login, so a
# new one of these forgets it (else the owner could send a password a manager set elsewhere)
DESTINATION_FIELDS = ("url", "db", "login")
SECRET_HELP = "Kept for this URL, database and login: changing one of them forgets it."
# what an approver reads of a connection: shown as stored, so refused with unsafe characters
CONNECTION_TEXT_FIELDS = ("url", "db", "login")
# who uses a connection and under which company's rules: on a connection an agent used, a
# change of either takes it from the agent or hands it to other people (a replacement)
HOLDER_FIELDS = ("owner_id", "company_id")
# a change of these gives a connection to an agent (or keeps it given): it takes the lock that
# a change of users, companies or groups takes (agent_access.lock_agent_group), so that two
# transactions, one giving, one taking the agent's access, cannot both commit
GIVING_FIELDS = frozenset({"agent_user_ids", "owner_id", "company_id", "active"})
TAKE_AWAY_HELP = (
    "End them first: \"Request disconnect\" on each connection (another person approves), "
    "or the agent's odoo_disconnect."
)


class McpConnection(models.Model):
    _name = "mcp.connection"
    _description = "MCP Odoo Connection"
    _inherit = ["mcp.guard.chatter", "mail.activity.mixin"]
    _order = "alias, id"
    _rec_name = "alias"
    _check_company_auto = True

    alias = fields.Char(required=True, tracking=True, index=True)
    url = fields.Char("URL", required=True, tracking=True)
    db = fields.Char("Database", required=True, tracking=True)
    login = fields.Char(required=True, tracking=True)
    protocol = fields.Selection(PROTOCOLS, required=True, default="xmlrpc", tracking=True)
    # secrets: only the Agent group reads them; never tracked (chatter), never exported,
    # never copied
    password = fields.Char(groups=SECRET_GROUPS, copy=False, exportable=False)
    api_key = fields.Char("API key", groups=SECRET_GROUPS, copy=False, exportable=False)
    owner_id = fields.Many2one(
        "res.users",
        required=True,
        default=lambda self: self.env.user,
        ondelete="restrict",
        tracking=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, ondelete="restrict"
    )
    # write-only for whoever may edit the connection: the value goes to the restricted
    # field above and is never read back (the form shows only whether one is set)
    new_password = fields.Char(
        "Password", compute="_compute_new_secrets", inverse="_inverse_new_password", copy=False, exportable=False,
        help=SECRET_HELP,
    )
    new_api_key = fields.Char(
        "API key", compute="_compute_new_secrets", inverse="_inverse_new_api_key", copy=False, exportable=False,
        help=SECRET_HELP,
    )
    has_password = fields.Boolean("Password set", compute="_compute_has_secrets")
    has_api_key = fields.Boolean("API key set", compute="_compute_has_secrets")
    agent_user_ids = fields.Many2many(
        "res.users",
        "mcp_connection_agent_user_rel",
        "connection_id",
        "user_id",
        string="Shared with agents",
        # a duplicate is shared with nobody: sharing it gives it to an agent (copy_data)
        copy=False,
        domain=lambda self: [("id", "in", self.env.ref("mcp_guard.group_mcp_agent").sudo()[GROUP_USERS].ids)],
        help="Agent (technical) users that may use this connection, besides its owner.",
    )
    # Set once an Agent user owns or is shared this connection, never cleared: archiving the
    # agent or taking it out of its group for one write does not make an edit a plain Save.
    agent_bound = fields.Boolean("Used by an agent", readonly=True, copy=False)
    in_use_by_agent = fields.Boolean(compute="_compute_in_use_by_agent")
    can_edit = fields.Boolean(compute="_compute_can_edit")
    can_change_owner = fields.Boolean(compute="_compute_can_edit")
    can_request_disconnect = fields.Boolean(compute="_compute_can_request_disconnect")
    state = fields.Selection(
        [("connected", "Connected"), ("disconnect_pending", "Disconnect pending"), ("disconnected", "Disconnected")],
        default="connected",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    # a duplicate of an ended connection is a new one in use (its state starts connected)
    active = fields.Boolean(default=True, tracking=True, copy=False)
    request_ids = fields.One2many("mcp.approval.request", "connection_id", "Requests")
    request_count = fields.Integer(compute="_compute_request_count")

    def init(self):
        # an alias is unique per owner among the connections in use: an ended (archived)
        # connection keeps its alias in the trail and frees it for reuse
        self.env.cr.execute("ALTER TABLE mcp_connection DROP CONSTRAINT IF EXISTS mcp_connection_alias_owner_unique")
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS mcp_connection_alias_owner_active_uniq "
            "ON mcp_connection (owner_id, alias) WHERE active"
        )
        # connections shared with an agent before agent_bound existed
        self.env.cr.execute(
            "UPDATE mcp_connection SET agent_bound = true WHERE agent_bound IS NOT TRUE "
            "AND id IN (SELECT connection_id FROM mcp_connection_agent_user_rel)"
        )
        agent_group = self.env.ref("mcp_guard.group_mcp_agent", raise_if_not_found=False)
        if agent_group:
            self.env.cr.execute(
                "UPDATE mcp_connection SET agent_bound = true WHERE agent_bound IS NOT TRUE "
                "AND owner_id IN (SELECT uid FROM res_groups_users_rel WHERE gid = %s)",
                (agent_group.id,),
            )

    @api.depends_context("uid")
    def _compute_new_secrets(self):
        for conn in self:
            conn.new_password = False
            conn.new_api_key = False

    def _set_secret(self, name, value):
        if not value:
            return  # an empty box leaves the secret as it is
        self.check_access("write")
        for conn in self:
            if conn.owner_id != self.env.user and not self.env.user.has_group("mcp_guard.group_mcp_manager"):
                raise AccessError(self.env._("Only the owner or a manager sets the secrets of %s.", conn.alias))
        # sudo: the stored field is readable and writable by Managers and the Agent only;
        # write() still refuses it on a connection an agent uses (a replacement)
        self.sudo().write({name: value})

    def _inverse_new_password(self):
        for conn in self:
            conn._set_secret("password", conn.new_password)

    def _inverse_new_api_key(self):
        for conn in self:
            conn._set_secret("api_key", conn.new_api_key)

    def _compute_has_secrets(self):
        for conn, stored in zip(self, self.sudo(), strict=True):
            conn.has_password = bool(stored.password)
            conn.has_api_key = bool(stored.api_key)

    @api.depends("owner_id", "agent_user_ids", "agent_bound")
    def _compute_in_use_by_agent(self):
        for conn in self:
            conn.in_use_by_agent = conn._agent_uses()

    def _agent_uses(self):
        """Whether an agent uses this connection: it was bound to one, is shared with one, or one
        owns it (archived users included: an agent archived for a moment still uses it)."""
        self.ensure_one()
        conn = self.sudo().with_context(active_test=False)
        return bool(conn.agent_bound or conn.agent_user_ids or conn.owner_id.has_group("mcp_guard.group_mcp_agent"))

    def _read_fresh(self):
        """Drop from the cache what write() decides on, so that it reads the stored row: a value
        a caller put in the cache (a computed field written by load(), or server-action code
        setting env.cache) decides nothing (outside round 27a). Pending writes are flushed first,
        through _write_multi's own checks."""
        real = self.filtered("id")
        if real:
            real.invalidate_recordset(["state", "agent_bound", "agent_user_ids", *HOLDER_FIELDS, *GUARDED_FIELDS,
                                       "in_use_by_agent"])

    def _bind_agents(self):
        """Mark the connections an Agent user owns or is shared (see agent_bound)."""
        unbound = self.sudo().filtered(lambda c: not c.agent_bound and c._agents())
        if unbound:
            with internal_write():
                unbound.write({"agent_bound": True})

    @api.depends_context("uid")
    @api.depends("state", "owner_id")
    def _compute_can_edit(self):
        # the form is read-only for those whom Save would refuse (approvers, ended connections)
        is_manager = self.env.user.has_group("mcp_guard.group_mcp_manager")
        for conn in self:
            conn.can_edit = conn.state != "disconnected" and (is_manager or conn.owner_id == self.env.user)
            # new records: the owner defaults to the creator, only managers pick someone else
            conn.can_change_owner = conn.state != "disconnected" and is_manager

    @api.depends_context("uid")
    @api.depends("state", "owner_id", "active")
    def _compute_can_request_disconnect(self):
        for conn in self:
            conn.can_request_disconnect = conn.active and conn.state == "connected" and conn._may_request_disconnect()

    def _may_request_disconnect(self):
        """The owner, an Approver or a Manager (record rules decide which connections they see)."""
        self.ensure_one()
        user = self.env.user
        return self.owner_id == user or user.has_group("mcp_guard.group_mcp_approver")

    @api.constrains("agent_user_ids", "company_id")
    def _check_agent_users(self):
        for conn in self.sudo():
            for agent in conn.agent_user_ids:
                if not agent.has_group("mcp_guard.group_mcp_agent"):
                    raise ValidationError(self.env._("%s is not an MCP Guard Agent user.", agent.name))
                if conn.company_id not in agent.company_ids:
                    raise ValidationError(
                        self.env._("%(agent)s has no access to company %(company)s.",
                                   agent=agent.name, company=conn.company_id.name)
                    )

    @api.constrains("alias", "owner_id", "agent_user_ids", "active")
    def _check_alias_per_agent(self):
        """An agent names a connection by its alias: no agent may use two with the same one."""
        for conn in self.sudo().filtered("active"):
            users = conn.owner_id | conn.agent_user_ids
            # folded alike (policy_core.alias_forms, as the front-end names connections): PROD,
            # Prod or p.rod next to prod would be one name to the agent (outside round, admin)
            forms = alias_forms(conn.alias or "")
            clash = self.sudo().search([
                ("id", "!=", conn.id),
                "|", ("owner_id", "in", users.ids), ("agent_user_ids", "in", users.ids),
            ]).filtered(lambda other: alias_forms(other.alias or "") & forms)
            if clash:
                raise ValidationError(
                    self.env._("Another connection named %s is already used by the same owner or agent.", conn.alias)
                )

    @api.depends("request_ids")
    def _compute_request_count(self):
        counts = dict(
            self.env["mcp.approval.request"]._read_group(
                [("connection_id", "in", self.ids)], ["connection_id"], ["__count"]
            )
        )
        for conn in self:
            conn.request_count = counts.get(conn, 0)

    @api.model
    def _check_values(self, vals):
        """A connection's values as a client sends them (create, write, an agent's odoo_connect,
        a person's change request): one line saying what is wrong, never a traceback."""
        for name in SECRET_FIELDS:
            for key in (name, f"new_{name}"):
                if vals.get(key) not in (None, False) and (problem := secret_problem(vals[key], name)):
                    raise UserError(problem)
        for name in CONNECTION_TEXT_FIELDS:
            # identity.text_problem, the front-end's rule: a bidi override or a zero-width
            # space would show an approver another URL, database or login than the stored one;
            # and text only: a list would be stored as its printed form, which no check read
            # (attack 17, finding 1). False or None clears the field (required ones refuse it).
            if vals.get(name) not in (None, False) and (problem := text_problem(vals[name], name)):
                raise UserError(problem)
        url = vals.get("url")
        if isinstance(url, str) and url_has_credentials(url):
            # the front-end's message, word for word (policy_core)
            raise UserError(URL_CREDENTIALS_MESSAGE)
        if "alias" in vals and vals["alias"] is not False:
            # the front-end's alias rule and message (policy_core.alias_problem): no zero-width
            # space, bidi override or trailing space next to a real alias
            problem = alias_problem(vals["alias"])
            if problem is not None:
                raise UserError(problem)
        # a protocol none of the list, an owner or company that is no record id: one line, not
        # the ORM's ValueError or PostgreSQL's error as a traceback
        check_field_values(self, vals, ("protocol", *HOLDER_FIELDS))
        self._check_secret_as_text(vals)

    def _check_secret_as_text(self, vals):
        """A database or login that is the password or API key would show that secret to everyone
        who reads the connection, its request and its chatter: refused in one line (on these
        records, against their stored secrets too)."""
        for stored in self.sudo() or [None]:
            values = {name: stored[name] for name in (*SECRET_FIELDS, "db", "login")} if stored else {}
            values.update({key: vals[key] for key in (*SECRET_FIELDS, "db", "login") if key in vals})
            values.update({name: vals[f"new_{name}"] for name in SECRET_FIELDS if vals.get(f"new_{name}")})
            for name in ("db", "login"):
                text = values.get(name)
                for secret in SECRET_FIELDS:
                    if isinstance(text, str) and text and text == values.get(secret):
                        raise UserError(self.env._(
                            "The %(field)s must not be the connection's %(secret)s (it would be shown to "
                            "everyone who reads the connection).", field=name,
                            secret=self.env._("password") if secret == "password" else self.env._("API key")))

    @api.constrains(*CONNECTION_TEXT_FIELDS)
    def _check_connection_text(self):
        """The same text rule for whatever path set them (the ORM's checks)."""
        for conn in self:
            for name in CONNECTION_TEXT_FIELDS:
                if isinstance(conn[name], str) and (problem := text_problem(conn[name], name)):
                    raise ValidationError(problem)

    @api.constrains("alias")
    def _check_alias_text(self):
        """The same alias rule for whatever path set the alias (the ORM's checks)."""
        for conn in self:
            problem = alias_problem(conn.alias)
            if problem is not None:
                raise ValidationError(problem)

    @api.model
    def _check_protected(self, vals):
        """Ending a connection (archive, state change) happens only inside the add-on's own
        methods (consume), which set an in-process flag; checked in write and _write_multi."""
        if is_internal_write():
            return
        if "state" in vals:
            raise UserError(self.env._("The state of a connection cannot be written directly."))
        if "agent_bound" in vals:
            raise UserError(self.env._("Whether an agent used a connection is kept by the add-on."))
        if "active" in vals and not vals["active"]:
            raise UserError(self.env._("A connection can only be ended by consuming an approved disconnect request."))

    def _write_multi(self, vals_list):
        # the ORM's low-level write (also reached by _write from server-action code)
        for vals in vals_list:
            self._check_protected(vals)
        if any(GIVING_FIELDS & set(vals) for vals in vals_list):
            lock_agent_group(self.env)
        self._check_low_level_replacement(vals_list)
        return super()._write_multi(vals_list)

    def _check_low_level_replacement(self, vals_list):
        """What write() refuses on a connection an agent used (a new owner, company, alias, URL,
        database, login or secret), refused here too: ``record._write(vals)`` from server-action
        code reaches the table without write(). Compared with the stored row; write()'s own
        changes reach this point only once write() allowed them, or inside the add-on's methods."""
        if is_internal_write():
            return
        watched = (*HOLDER_FIELDS, *GUARDED_FIELDS)
        if not any(name in vals for vals in vals_list for name in watched):
            return
        self.env.cr.execute(
            "SELECT id, owner_id, company_id, alias, url, db, login, protocol, password, api_key "
            "FROM mcp_connection WHERE id = ANY(%s) AND agent_bound AND state != 'disconnected'",
            (list(self.ids),),
        )
        stored = {row["id"]: row for row in self.env.cr.dictfetchall()}
        for conn, vals in zip(self, vals_list, strict=True):
            row = stored.get(conn.id)
            if not row:
                continue
            changed = [name for name in watched if name in vals and (vals[name] or None) != (row[name] or None)]
            holders = [name for name in changed if name in HOLDER_FIELDS]
            if holders:
                raise UserError(self._holder_change_message(row["alias"], holders))
            if changed:
                raise UserError(self._replacement_message(row["alias"], changed))

    def copy_data(self, default=None):
        """Duplicate (the form's button, copy() over RPC or in a server action): the copy gets a
        free alias (prod-copy, prod-copy-2, ...) unless ``default`` names one, is shared with no
        agent and carries no secret (copy=False on those fields). A connection an Agent user owns
        is copied for the person who duplicates it: the copy is not the agent's either."""
        vals_list = super().copy_data(default=default)
        default = default or {}
        taken = set()
        for conn, vals in zip(self.sudo(), vals_list, strict=True):
            if "owner_id" not in default and conn.owner_id != self.env.user and conn.owner_id.has_group(
                    "mcp_guard.group_mcp_agent"):
                vals["owner_id"] = self.env.uid
            if "alias" not in default:
                vals["alias"] = self._free_copy_alias(conn.alias, taken)
                taken |= alias_forms(vals["alias"])
        return vals_list

    @api.model
    def _free_copy_alias(self, alias, taken=frozenset()):
        """The first of ``alias``-copy, ``alias``-copy-2, ... (cut to the alias rule's length)
        whose folded forms (policy_core.alias_forms) meet no alias of a connection in use, nor
        ``taken``: the copy is never taken for another connection, by anyone's agent."""
        used = set(taken)
        # every connection in use (a few per person): folded forms cannot be searched in SQL
        for other in self.sudo().search_read([], ["alias"]):  # pylint: disable=no-search-all
            used |= alias_forms(other["alias"] or "")
        number = 1
        while True:
            suffix = "-copy" if number == 1 else f"-copy-{number}"
            candidate = f"{(alias or 'connection')[:MAX_ALIAS_LENGTH - len(suffix)]}{suffix}"
            if not alias_forms(candidate) & used:
                return candidate
            number += 1

    def _check_alias_free(self, vals_list):
        """One line naming the alias for a connection in use that would take an alias its owner
        already uses on another one in use (create, copy, write), before PostgreSQL's unique
        index (owner, alias) answers with its IntegrityError text."""
        if not any({"alias", "owner_id", "active"} & set(vals) for vals in vals_list):
            return
        wanted = []
        for conn, vals in zip(self or [None] * len(vals_list), vals_list, strict=True):
            stored = conn.sudo() if conn else None
            alias = vals["alias"] if "alias" in vals else (stored.alias if stored else False)
            owner = vals["owner_id"] if "owner_id" in vals else (stored.owner_id if stored else self.env.user)
            owner = owner.id if isinstance(owner, models.BaseModel) else owner
            active = vals["active"] if "active" in vals else (stored.active if stored else True)
            if alias and owner and active:
                wanted.append((alias, owner))
        for alias, owner in wanted:
            clash = wanted.count((alias, owner)) > 1 or self.sudo().search_count([
                ("id", "not in", self.ids), ("alias", "=", alias), ("owner_id", "=", owner)], limit=1)
            if clash:
                raise ValidationError(self.env._(
                    "The alias %(alias)s is already used by another connection of %(owner)s: "
                    "choose another alias.",
                    alias=alias, owner=self.env["res.users"].sudo().browse(owner).display_name))

    def export_data(self, fields_to_export):
        if any(path.split("/")[0] in SECRET_FIELDS for path in fields_to_export):
            raise AccessError(self.env._("Connection passwords and API keys cannot be exported."))
        return super().export_data(fields_to_export)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_values(vals)
            if not is_internal_write():
                # a connection always starts connected, whatever the client sends
                vals.pop("state", None)
        # on no record: copy() calls create on the records it copies
        self.browse()._check_alias_free(vals_list)
        # the write-only secrets of a new connection are no replacement of anything
        secrets = [{name: vals.pop(f"new_{name}", False) for name in SECRET_FIELDS} for vals in vals_list]
        # no default_state / default_owner_id from the client's context, and a chatter trail
        records = super(McpConnection, trusted(self)).create(vals_list)
        for conn, values in zip(records, secrets, strict=True):
            values = {name: value for name, value in values.items() if value}
            if values:
                with internal_write():
                    conn.sudo().write(values)
        if any(conn._agents() for conn in records):
            lock_agent_group(self.env)  # a new connection an agent finds (GIVING_FIELDS)
        records._bind_agents()
        return records

    def write(self, vals):
        self._check_protected(vals)
        self._check_values(vals)
        self._check_alias_free([vals] * len(self))
        if GIVING_FIELDS & set(vals):
            lock_agent_group(self.env)
        if not is_internal_write():
            self._read_fresh()
            ended = self.filtered(lambda c: c.state == "disconnected")
            if ended:
                raise UserError(
                    self.env._("Connection %s was disconnected: register a new one instead.", ended[0].alias)
                )
            changed = [name for name in GUARDED_FIELDS if name in vals]
            in_use = self.filtered(lambda c: any(c.sudo()[n] != vals[n] for n in changed) and c._agent_uses())
            if changed and in_use:
                raise UserError(self._replacement_message(in_use[0].alias, changed))
        if "owner_id" in vals and not self.env.user.has_group("mcp_guard.group_mcp_manager"):
            # handing a connection to the agent decides what it will use: managers only
            raise AccessError(self.env._("Only MCP Guard managers can change the owner of a connection."))
        if not is_internal_write() and set(HOLDER_FIELDS) & set(vals):
            # a new owner or company of a connection an agent used takes it from the agent (or
            # hands it to other people and other approvers), whether or not the agent is in its
            # group at this moment: agent_bound, not the group of the day
            for conn in self.sudo().filtered(lambda c: c.agent_bound and c.state != "disconnected"):
                holders = [name for name in HOLDER_FIELDS if name in vals and conn[name] != conn[name].browse(
                    vals[name].id if isinstance(vals[name], models.BaseModel) else vals[name] or [])]
                if holders:
                    raise UserError(self._holder_change_message(conn.alias, holders))
        # taking a connection away from an agent that uses it (unsharing it, or a new owner in
        # place of the agent) ends it for that agent: only an approved disconnect does that,
        # and it cannot launder a replacement (unshare, edit, share again). Judged on the values
        # before anything is written, so that no caught exception leaves the write done.
        if not is_internal_write() and {"agent_user_ids", "owner_id"} & set(vals):
            for conn in self.sudo().filtered(lambda c: c.state != "disconnected"):
                lost = conn._agents() - conn._agents_after(vals)
                if lost:
                    raise UserError(self.env._(
                        "Connection %(alias)s is used by %(agent)s: taking it away from the agent ends it. "
                        "Use \"Request disconnect\" so that another person approves.",
                        alias=conn.alias, agent=lost[0].name,
                    ))
        moved, forgotten = self.browse(), {}
        if not is_internal_write():  # an approved change applies the rule itself (_carry_out)
            moved, forgotten = self._secrets_forgotten_by(vals)
        # tracked whatever the context says: a changed alias, URL, database or login
        # stays visible in the chatter (and voids the requests filed before it)
        res = super(McpConnection, trusted(self)).write(vals)
        if moved and forgotten:
            # this write's own values reach the table outside the flag, through _write_multi's
            # check, not flushed along with the internal write below
            moved.flush_recordset()
            with internal_write():
                moved.sudo().write(forgotten)
        if is_internal_write():
            # the state reaches the table now, while the flag is set (see _write_multi)
            self.flush_recordset()
        if {"agent_user_ids", "owner_id"} & set(vals):
            self._bind_agents()
        return res

    def _secrets_forgotten_by(self, vals):
        """(the connections among these that ``vals`` points elsewhere, the saved secrets it
        forgets there): a secret was given for one URL, database and login, so a new one of
        these forgets the secrets ``vals`` does not give anew, whoever writes it (outside rounds
        20 and 21: a manager's password sent to the owner's server, an owner's to a manager's)."""
        if not set(DESTINATION_FIELDS) & set(vals):
            return self.browse(), {}
        moved = self.sudo().filtered(
            lambda c: any((c[name] or False) != (vals[name] or False) for name in DESTINATION_FIELDS if name in vals))
        forgotten = {name: False for name in SECRET_FIELDS if not (vals.get(name) or vals.get(f"new_{name}"))}
        return moved, forgotten

    @api.model
    def _replacement_message(self, alias, changed):
        return self.env._(
            "Connection %(alias)s is used by an agent: changing its %(fields)s replaces it. "
            "Use \"Request change\" so that another person approves the new values "
            "(a new alias: \"Request disconnect\", then register it anew).",
            alias=alias, fields=", ".join(changed),
        )

    @api.model
    def _holder_change_message(self, alias, holders):
        names = {"owner_id": self.env._("owner"), "company_id": self.env._("company")}
        return self.env._(
            "Connection %(alias)s is used by an agent: a new %(fields)s would take it from the agent. "
            "Use \"Request disconnect\" (another person approves), then register it anew.",
            alias=alias, fields=", ".join(names[name] for name in holders),
        )

    # ------------------------------------------------------------------
    # what the agents see: no change of users, companies or groups takes it away
    # ------------------------------------------------------------------
    @api.model
    def _agent_views(self, users=None):
        """{(agent id, connection id)}: the connections not ended that the Agent users among
        ``users`` (all by default) find in list_for_agent now: active, in the Agent group, their
        own and those shared with them, in a company they are allowed (the record rules). Read
        from the ORM's cache, so as a pending write leaves them.

        Every caller checks a change that might take views away, so this takes the lock a
        change that gives one takes (agent_access.lock_agent_group): whatever the views are in
        this transaction's snapshot, a concurrent share (or new owner, company) of a connection
        with an agent and this change cannot both commit."""
        group = lock_agent_group(self.env)
        if not group:  # while the add-on's own data loads
            return set()
        agents = group.sudo().with_context(active_test=False)[GROUP_USERS].filtered("active")
        if users is not None:
            agents = agents.filtered(lambda u: u.id in set(users.ids))
        if not agents:
            return set()
        conns = self.sudo().with_context(active_test=True).search([
            ("state", "!=", "disconnected"),
            "|", ("owner_id", "in", agents.ids), ("agent_user_ids", "in", agents.ids),
        ])
        views = set()
        for agent in agents:
            allowed = agent.company_ids.filtered("active")
            for conn in conns:
                shared = conn.with_context(active_test=False).agent_user_ids
                if (conn.owner_id == agent or agent in shared) and conn.company_id in allowed:
                    views.add((agent.id, conn.id))
        return views

    @api.model
    def _taken_away_message(self, views):
        """One line: which agent would lose which connections, and how to end them instead."""
        agent = self.env["res.users"].sudo().with_context(active_test=False).browse(min(views)[0])
        conns = self.sudo().with_context(active_test=False).browse(sorted({cid for _uid, cid in views}))
        return self.env._(
            "%(agent)s (MCP agent) uses connection(s) %(aliases)s: this change would take them away "
            "from the agent without an approved request. %(help)s",
            agent=agent.name, aliases=", ".join(conns.mapped("alias")), help=self.env._(TAKE_AWAY_HELP),
        )

    @api.model
    def _refuse_taking_away(self, views):
        if views:
            raise UserError(self._taken_away_message(views))

    @api.model
    def _keeping_agent_views(self, change, users=None):
        """Run ``change`` (a write of users, companies or groups) and undo it, with a UserError,
        if an Agent user among ``users`` then misses a connection it found before. The change
        and the check run in one savepoint: a caller that catches the error keeps nothing."""
        before = self._agent_views(users)
        if not before:
            return change()
        try:
            with self.env.cr.savepoint():
                result = change()
                self._refuse_taking_away(before - self._agent_views(users))
        except Exception:
            # the ORM caches of the undone change (groups, companies of users) go with it
            self.env.registry.clear_cache()
            raise
        return result

    def unlink(self):
        # Here and not in @api.ondelete: Odoo skips those under the context key _force_unlink.
        # Only consume() of an approved request puts ids in the in-process allowance.
        if not set(self.ids) <= removal_allowed_ids():
            raise UserError(  # pylint: disable=no-raise-unlink
                self.env._("A connection can only be removed by consuming an approved disconnect request.")
            )
        return super(McpConnection, trusted(self)).unlink()

    def _agents(self):
        """The Agent users that use this connection (as its owner or shared with them)."""
        self.ensure_one()
        conn = self.sudo().with_context(active_test=False)  # an archived agent still counts
        users = conn.owner_id | conn.agent_user_ids
        return users.filtered(lambda u: u.has_group("mcp_guard.group_mcp_agent"))

    def _agents_after(self, vals):
        """The Agent users that would use this connection once ``vals`` are written."""
        self.ensure_one()
        Users = self.env["res.users"].sudo()
        owner = Users.browse(vals["owner_id"] or []) if "owner_id" in vals else self.owner_id.sudo()
        shared = set(self.sudo().with_context(active_test=False).agent_user_ids.ids)
        if "agent_user_ids" in vals:
            shared = self._shared_after(shared, vals["agent_user_ids"])
        users = owner | Users.browse(sorted(shared)).exists()
        return users.filtered(lambda u: u.has_group("mcp_guard.group_mcp_agent"))

    @api.model
    def _shared_after(self, shared, value):
        """The user ids ``value`` leaves in agent_user_ids, read as Odoo's write reads it
        (fields._RelationalMulti.write_batch): None or False clears them, a recordset, a tuple
        or a list of ids replaces them, a list of commands changes them (outside round 21: None
        was taken for "no change"). Anything else is refused in one line, before Odoo's write
        fails on it with a traceback."""
        if isinstance(value, models.BaseModel):
            return set(value.ids)
        if value is None or value is False:
            return set()

        def user_id(item):
            if isinstance(item, bool) or not isinstance(item, int):
                raise UserError(self.env._("agent_user_ids: %s is not a user id.", repr(item)[:60]))
            return item

        if isinstance(value, tuple) or (isinstance(value, list) and value and not isinstance(value[0], (tuple, list))):
            return {user_id(item) for item in value}
        if not isinstance(value, list):
            raise UserError(self.env._("agent_user_ids must be a list of user ids or commands."))
        shared = set(shared)
        for command in value:
            operation = command[0] if isinstance(command, (tuple, list)) and command else None
            if operation not in range(7) or isinstance(operation, bool) or (operation != 5 and len(command) < 2):
                raise UserError(self.env._("agent_user_ids: %s is not a command.", repr(command)[:60]))
            if operation in (1, 4):
                shared.add(user_id(command[1]))
            elif operation in (2, 3):
                shared.discard(user_id(command[1]))
            elif operation == 5:
                shared = set()
            elif operation == 6:
                ids = command[2] if len(command) > 2 else None
                if ids and not isinstance(ids, (list, tuple)):
                    raise UserError(self.env._("agent_user_ids: %s is not a command.", repr(command)[:60]))
                shared = {user_id(item) for item in ids or ()}
            # 0: a new user, added; nobody taken away
        return shared

    def _end(self):
        """End these connections: archived, state disconnected, secrets wiped; the chatter and the
        requests stay linked, the alias is free. Only inside the consumption of an approved request
        (_carry_out puts these ids in the in-process allowance, which no RPC client or server
        action can set): a direct call, e.g. ``records._end()`` in a server action, is refused."""
        if not self.ids or not set(self.ids) <= removal_allowed_ids():
            raise UserError(self.env._("A connection can only be ended by consuming an approved disconnect request."))
        with internal_write():
            self.sudo().write({"active": False, "state": "disconnected", "password": False, "api_key": False})

    def action_request_disconnect(self):
        """File the same approval request an agent files (or find the pending one); another
        person approves it."""
        ensure_one(self)
        self.check_access("read")
        if not self._may_request_disconnect():
            raise AccessError(self.env._("Only the owner, an approver or a manager can request this disconnect."))
        if not self.active or self.state == "disconnected":
            raise UserError(self.env._("Connection %(alias)s is %(state)s.", alias=self.alias,
                                       state=dict(self._fields["state"].selection)[self.state]))
        request = self.env["mcp.approval.request"]._file_from_odoo(self, "odoo_disconnect", {"alias": self.alias})
        return {
            "type": "ir.actions.act_window",
            "res_model": "mcp.approval.request",
            "view_mode": "form",
            "res_id": request.id,
        }

    def action_view_requests(self):
        ensure_one(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Requests"),
            "res_model": "mcp.approval.request",
            "view_mode": "list,form",
            "domain": [("connection_id", "=", self.id)],
            "context": {"default_connection_id": self.id},
        }

    # ------------------------------------------------------------------
    # RPC contract
    # ------------------------------------------------------------------
    @api.model
    def _is_agent(self):
        return self.env.user.has_group("mcp_guard.group_mcp_agent")

    @api.model
    def _usable_domain(self, user=None):
        uid = (user or self.env.user).id
        return ["|", ("owner_id", "=", uid), ("agent_user_ids", "in", [uid])]

    @api.model
    def list_for_agent(self):
        """Connections the caller may use; secrets only for the Agent group."""
        with_secrets = self._is_agent()
        if with_secrets:
            # the agent: exactly its own and those shared with it, in a company it is allowed,
            # read by that rule and not by record rules, which an administrator's new rule could
            # narrow: what takes a connection from the agent is refused where it is written
            # (sharing, owner, companies, groups: see _agent_views), never done by hiding it
            allowed = self.env.user.sudo().company_ids.filtered("active")
            connections = self.sudo().search([*self._usable_domain(), ("company_id", "in", allowed.ids)])
        else:
            self.check_access("read")
            # exactly the caller's own and those shared with it (record rules apply too);
            # a connection with a pending disconnect is still usable, an ended one is archived
            connections = self.search(self._usable_domain())
        result = []
        for conn in connections:
            item = {
                "alias": conn.alias,
                "url": conn.url,
                "db": conn.db,
                "login": conn.login,
                "protocol": conn.protocol,
            }
            if with_secrets:
                item["password"] = conn.password or ""
                item["api_key"] = conn.api_key or ""
            result.append(item)
        return result

    @api.model
    def upsert_from_agent(self, values=REQUIRED):
        """Register a new connection for the caller; an existing alias is refused."""
        check_arguments(self, "upsert_from_agent", values=values)
        return self._create_for_agent(values)

    @api.model
    def _create_for_agent(self, values, company=None):
        """Create the caller's connection from RPC ``values`` (in ``company``, by default the
        caller's); an existing alias is refused (an approved replacement removes the old one
        first, inside consume)."""
        if not (self._is_agent() or self.env.user.has_group("mcp_guard.group_mcp_user")):
            raise AccessError(self.env._("Only the MCP agent or MCP users can register connections."))
        if not isinstance(values, dict):
            raise UserError(self.env._("values must be an object"))
        unknown = set(values) - AGENT_KEYS
        if unknown:
            raise UserError(self.env._("Unknown connection keys: %s", ", ".join(sorted(unknown))))
        # the agent's protocol in any case
        protocol = values.get("protocol") or "xmlrpc"
        if isinstance(protocol, str):
            protocol = protocol.lower()
        # before the alias is searched: a NUL in it would fail in PostgreSQL with a traceback
        self._check_values({**values, "protocol": protocol})
        alias = values.get("alias")
        if not alias or not isinstance(alias, str):
            raise UserError(self.env._("A connection needs an alias."))
        # among the connections in use by the caller (its own and those shared with it)
        forms = alias_forms(alias)
        existing = self.sudo().search(self._usable_domain()).filtered(lambda c: alias_forms(c.alias or "") & forms)
        if existing:
            raise UserError(
                self.env._("The alias %s already exists: replacing it needs an approved odoo_connect request.", alias)
            )
        vals = {
            "alias": alias,
            "url": values.get("url"),
            "db": values.get("db"),
            "login": values.get("login"),
            "protocol": protocol,
            "owner_id": self.env.uid,
            "company_id": (company or self.env.company).id,
        }
        for secret in ("password", "api_key"):
            if values.get(secret):
                vals[secret] = values[secret]
        self.create(vals)
        return {"alias": alias, "created": True}
