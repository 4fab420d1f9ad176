"""Helpers shared by the MCP Guard models (no model is defined here).

The "privileged" flags are context variables set in Python by the few methods
allowed to change protected data. Unlike ``env.context`` they cannot be sent by
an RPC client, so a client can never switch them on.
"""

import contextlib
import contextvars
import datetime

from odoo import models
from odoo.api import NewId  # 18.0 and 19.0 alike
from odoo.exceptions import AccessError, UserError

# The policy's rules, names and constants are the front-end's, vendored byte for byte
# (policy_core.py, ``make sync-core``): one definition for both halves.
from .policy_core import (  # noqa: F401  pylint: disable=unused-import
    ACTIONS,
    DEFAULT_APPROVER_GROUP,
    DEFAULT_EXPIRES_IN,
    DEFAULT_RISK_APPROVAL,
    MAX_POLICY_BYTES,
    MAX_ALIAS_LENGTH,
    MAX_QUORUM,
    MAX_SECONDS,
    RISK_CLASSES,
    STRICTNESS,
    TOOL_NAME_RE,
    URL_CREDENTIALS_MESSAGE,
    ApprovalTerms,
    CompiledPolicy,
    PolicyFault,
    alias_forms,
    alias_problem,
    approval_terms,
    arguments_hash,
    canonical_json,
    check_policy,
    gating_terms,
    is_glob,
    json_path,
    override_faults,
    parse_json_text,
    policy_size,
    redact,
    redact_text,
    rule_faults,
    url_has_credentials,
    valid_server_name,
)
from .policy_core import TOOL_PATTERN_RE as RULE_NAME_RE  # noqa: F401  pylint: disable=unused-import

ACTION_SELECTION = [
    ("allow", "Allow"),
    ("deny", "Deny"),
    ("require_approval", "Require approval"),
]
RISK_SELECTION = [
    ("read", "Read-only"),
    ("write", "Write"),
    ("destructive", "Destructive"),
    ("critical", "Critical"),
]

# ids of mcp.connection records that consume() is currently allowed to remove
_CONNECTION_REMOVAL = contextvars.ContextVar("mcp_guard_connection_removal", default=frozenset())
# ids of mcp.approval.request records that consume() or action_approve() carry out now
_CARRY_OUT = contextvars.ContextVar("mcp_guard_carry_out", default=frozenset())
# set while the add-on itself writes protected fields (states, decisions)
_INTERNAL_WRITE = contextvars.ContextVar("mcp_guard_internal_write", default=False)


# set while the add-on's own code (or Odoo's, on its behalf: the creation and tracking
# messages, an activity marked done) posts on a request: the trail's own authors, subtypes
# and notifications, which a client's message_post may not use
_OWN_MESSAGES = contextvars.ContextVar("mcp_guard_own_messages", default=False)
# set while mail.thread writes a message of a trail model itself (``_message_create``, after
# message_post's checks): only then may a mail.message of those models be created; once
# there, no client changes it (``_message_update_content`` is refused, also to its author)
_THREAD_MESSAGE = contextvars.ContextVar("mcp_guard_thread_message", default=False)

# set while Odoo delivers a trail message by e-mail (mail.thread._notify_thread, mail.mail._send):
# mail.mail inherits mail.message, and writes the e-mail's subject and Message-Id onto it
_MAIL_DELIVERY = contextvars.ContextVar("mcp_guard_mail_delivery", default=False)

# the add-on's models whose chatter is a trail (who filed, approved, changed, ended what)
TRAIL_MODELS = frozenset({
    "mcp.approval.request", "mcp.connection", "mcp.tool", "mcp.tool.rule", "mcp.tool.server",
})


def trail_authors(env, partners):
    """The partners among ``partners`` who wrote a message of a trail (TRAIL_MODELS): merging
    one into another contact, or deleting it, would rewrite or blank the author of a trail
    entry, by SQL that mail.message.write never sees."""
    if not partners:
        return partners
    authored = env["mail.message"].sudo().search_read(
        [("author_id", "in", partners.ids), ("model", "in", list(TRAIL_MODELS))], ["author_id"])
    return partners.browse({row["author_id"][0] for row in authored})


def refuse_trail_author_change(env, partners):
    if partners:
        raise UserError(env._(
            "%(names)s wrote messages on the trail of MCP Guard's records: the author of a trail "
            "entry cannot be merged into another contact or deleted.",
            names=", ".join(partners.sudo().mapped("display_name"))))


def committed_param(env, key, default=False):
    """An ``ir.config_parameter`` value read from the database, not through ``get_param``.

    ``get_param`` is ormcached per registry: a reader running while a change is being
    committed refills that cache with the old value, which then stays until another change.
    The policy the front-ends poll would keep, for example, a widened default action or a
    catalog revision from before a Manager's acceptance.
    """
    env["ir.config_parameter"].flush_model(["key", "value"])
    env.cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", (key,))
    row = env.cr.fetchone()
    return row[0] if row and row[0] is not None else default


def sort_classes(classes):
    """Risk classes in their order, lowest first, without duplicates."""
    return [cls for cls in RISK_CLASSES if cls in set(classes)]


@contextlib.contextmanager
def internal_write():
    token = _INTERNAL_WRITE.set(True)
    try:
        yield
    finally:
        _INTERNAL_WRITE.reset(token)


def is_internal_write():
    return _INTERNAL_WRITE.get()


@contextlib.contextmanager
def own_messages():
    token = _OWN_MESSAGES.set(True)
    try:
        yield
    finally:
        _OWN_MESSAGES.reset(token)


def is_own_message():
    return _OWN_MESSAGES.get()


@contextlib.contextmanager
def thread_message():
    token = _THREAD_MESSAGE.set(True)
    try:
        yield
    finally:
        _THREAD_MESSAGE.reset(token)


def is_trusted_message():
    """A message written by the add-on, or by mail.thread after its own checks."""
    return _OWN_MESSAGES.get() or _INTERNAL_WRITE.get() or _THREAD_MESSAGE.get()


@contextlib.contextmanager
def mail_delivery():
    token = _MAIL_DELIVERY.set(True)
    try:
        yield
    finally:
        _MAIL_DELIVERY.reset(token)


def is_mail_delivery():
    return _MAIL_DELIVERY.get()


# PostgreSQL's integer column (Integer fields, record ids): a larger number is its error
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1


def is_record_id(value):
    """An id a client may send for a record: an integer (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_stored_id(value):
    """An id a column can hold: a positive integer within PostgreSQL's integer."""
    return is_record_id(value) and 0 < value <= INT4_MAX


def _refuse_ids(records, value):
    raise UserError(records.env._(
        "This action takes ids of %(model)s records (%(name)s), not %(value)s.",
        model=records._description, name=records._name, value=repr(value)[:60]))


def ensure_one(records):
    """``records.ensure_one()`` for a method a client calls: one line naming what is wrong, not
    Odoo's "Expected singleton" traceback (attack 17, finding 2), nor PostgreSQL's for an id
    that is no id (RPC browses whatever ids it is sent)."""
    if len(records) != 1:
        raise UserError(records.env._(
            "This action takes exactly one %(model)s record, not %(count)s.",
            model=records._description, count=len(records)))
    check_record_ids(records)
    return records


def check_record_ids(records):
    """For a method a client calls on any number of records: one line for an id that is no id
    (True, "x", None, a list, a dict), not PostgreSQL's error or a TypeError as a traceback
    (RPC browses whatever ids it is sent)."""
    for record_id in records._ids:
        if not is_record_id(record_id) and not isinstance(record_id, NewId):
            _refuse_ids(records, record_id)
    return records


def check_browse_ids(model, ids):
    """The ids an RPC call is made on, as ``browse`` receives them (mcp.guard.values): a bare
    1.5 or True fails in Odoo's browse itself with a TypeError, an id that is no id ("x", None,
    a list, a dict) later with PostgreSQL's error; both answered a client with a traceback."""
    if not ids or ids.__class__ is int:
        return
    if isinstance(ids, (list, tuple, dict)):
        # a dict: its keys (Odoo's own code browses {id: ...} mappings)
        for item in ids:
            if item.__class__ is not int and not is_record_id(item) and not isinstance(item, NewId):
                _refuse_ids(model, item)
    elif isinstance(ids, (bool, float, str, bytes)):
        _refuse_ids(model, ids)


def _shown(value):
    return repr(value)[:60]


def _missing_ids(model, field, ids):
    """The ids among ``ids`` of no record of the field's comodel (a foreign key PostgreSQL
    would refuse with a multi-line message)."""
    ids = set(ids)
    if not ids:
        return []
    found = model.env[field.comodel_name].sudo().with_context(active_test=False).browse(ids).exists()
    return sorted(ids - set(found.ids))


def _integer_problem(model, name, value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not is_record_id(value) or not INT4_MIN <= value <= INT4_MAX:
        return model.env._("%(field)s must be a whole number (up to %(max)s), not %(value)s.",
                           field=name, max=INT4_MAX, value=_shown(value))
    return None


def _many2one_problem(model, name, field, value):
    if isinstance(value, models.BaseModel) and len(value) <= 1 and value._name == field.comodel_name:
        return None
    if not is_stored_id(value):
        return model.env._("%(field)s must be a record id (%(model)s), not %(value)s.",
                           field=name, model=field.comodel_name, value=_shown(value))
    if _missing_ids(model, field, [value]):
        return model.env._("%(field)s: there is no %(model)s record with the id %(value)s.",
                           field=name, model=field.comodel_name, value=value)
    return None


def _x2many_problem(model, name, field, value):
    """A value of a many2many or one2many as Odoo's write reads it: a recordset, a list of ids
    or of commands (Command: 0 create, 1 update, 2 delete, 3 unlink, 4 link, 5 clear, 6 set)."""
    if isinstance(value, models.BaseModel) and value._name == field.comodel_name:
        return None

    def refuse(item):
        return model.env._("%(field)s must hold record ids (%(model)s), not %(value)s.",
                           field=name, model=field.comodel_name, value=_shown(item))

    if not isinstance(value, (list, tuple)):
        return refuse(value)
    linked = []
    for command in value:
        if is_record_id(command):
            if not is_stored_id(command):
                return refuse(command)
            linked.append(command)
            continue
        if not isinstance(command, (list, tuple)) or not command or not is_record_id(command[0]):
            return refuse(command)
        operation = command[0]
        if operation not in range(7):
            return refuse(command)
        if operation == 6:
            if len(command) < 3 or not isinstance(command[2], (list, tuple)):
                return refuse(command)
            for item in command[2]:
                if not is_stored_id(item):
                    return refuse(item)
            linked += command[2]
        elif operation in (1, 2, 3, 4):
            if len(command) < 2 or not is_stored_id(command[1]):
                return refuse(command)
            if operation == 4:
                linked.append(command[1])
        if operation in (0, 1) and (len(command) < 3 or not isinstance(command[2], dict)):
            return refuse(command)
    missing = _missing_ids(model, field, linked)
    if missing:
        return model.env._("%(field)s: there is no %(model)s record with the id %(value)s.",
                           field=name, model=field.comodel_name, value=missing[0])
    return None


def _value_problem(model, name, field, value):
    """Why ``value`` (not False or None) cannot be stored in ``field``, in one line, or None."""
    kind = field.type
    if kind == "selection":
        allowed = field.get_values(model.env)
        if not isinstance(value, str) or value not in allowed:
            return model.env._("Unknown %(field)s %(value)s (use %(allowed)s)",
                               field=name, value=_shown(value), allowed=", ".join(allowed))
    elif kind == "integer":
        return _integer_problem(model, name, value)
    elif kind in ("float", "monetary"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return model.env._("%(field)s must be a number, not %(value)s.", field=name, value=_shown(value))
    elif kind == "many2one":
        return _many2one_problem(model, name, field, value)
    elif kind in ("many2many", "one2many"):
        return _x2many_problem(model, name, field, value)
    elif kind in ("char", "text", "html"):
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL refuses a NUL in a text column with its error, as a traceback
            return model.env._("%(field)s contains a NUL character (U+0000), which cannot be stored.", field=name)
    elif kind in ("date", "datetime"):
        if isinstance(value, (datetime.date, datetime.datetime)):
            return None
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            field.to_date(value) if kind == "date" else field.to_datetime(value)
        except ValueError:
            return model.env._("%(field)s must be a %(kind)s (YYYY-MM-DD%(time)s), not %(value)s.",
                               field=name, kind=kind, time=" HH:MM:SS" if kind == "datetime" else "",
                               value=_shown(value))
    return None


def check_field_values(model, vals, names=None):
    """One line for a value that a field cannot hold, before the ORM's ValueError ("Wrong value
    for ..."), a TypeError or PostgreSQL's error reach a client as a traceback: a selection
    value not in the list, an integer that is text, a list or a dict, a record id that is no id
    (or of no record), a NUL character in a text, an unknown field. False or None (empty) is
    left to the field's own rules (required). ``names``: only these fields (default: every
    field in ``vals``). Called on every create, write and default_get of the add-on's models
    (mcp.guard.values), and earlier by the few that read a value before that."""
    if not isinstance(vals, dict):
        raise UserError(model.env._(
            "%(model)s takes a dict of field values, not %(value)s.", model=model._name, value=_shown(vals)))
    for name in vals if names is None else names:
        value = vals.get(name)
        if name not in model._fields:
            if names is None:
                raise UserError(model.env._("%(model)s has no field %(field)s.",
                                            model=model._name, field=_shown(name)))
            continue
        if value is None or value is False:
            continue
        problem = _value_problem(model, name, model._fields[name], value)
        if problem:
            raise UserError(problem)


# The secrets of the add-on's models: write-only for whoever sets them (new_password, new_api_key
# of a connection: computed, never read back) or read by the Agent group only. A search, a
# grouping or a sort by one of them would answer with the ORM's traceback (a field that is not
# stored) or act as an oracle (a domain [("password", "=", guess)] tells a guess right), so it
# is refused for every role, by name, before any SQL: the answer says nothing of the values.
SECRET_QUERY_FIELDS = {
    "mcp.connection": frozenset({"password", "api_key", "new_password", "new_api_key"}),
    "mcp.approval.request": frozenset({"new_password", "new_api_key", "new_url", "new_db", "new_login"}),
}
# the operators whose value is a domain on the field's comodel
_SUBDOMAIN_OPERATORS = frozenset({"any", "not any", "any!", "not any!"})


def _refuse_secret_query(model, path, name):
    raise AccessError(model.env._(
        "%(field)s cannot be searched, grouped or sorted: it is a secret, write-only.",
        field=_query_field_shown(model, path, name)))


def _query_field_shown(model, path, name):
    return f"{model._name}.{name}" if path == name else f"{path} ({model._name}.{name})"


def _refuse_computed_query(model, path, name):
    """A field computed and not stored: the ORM cannot search it without a search method (19.0
    answers with a ValueError traceback, 18.0 drops the condition and returns every record),
    nor group or sort by it (a ValueError on both series) unless it is related through
    many2one fields (_sortable)."""
    field = _query_field_shown(model, path, name)
    if not model._fields[name].search:
        raise AccessError(model.env._(
            "%(field)s cannot be searched, grouped or sorted: it is computed, not stored.", field=field))
    raise AccessError(model.env._(
        "%(field)s cannot be grouped or sorted: it is computed, not stored.", field=field))


def _sortable(model, field):
    """Whether the ORM sorts and groups by ``field`` of ``model``: stored, or related through
    many2one fields to a field it sorts by (the ORM joins them)."""
    while not field.store:
        if not isinstance(field.related, str):
            return False
        *steps, last = field.related.split(".")
        for step in steps:
            link = model._fields.get(step)
            if link is None or link.type != "many2one":
                return False
            model = model.env[link.comodel_name]
        field = model._fields.get(last)
        if field is None:
            return False
    return True


def _check_query_path(model, path, searched=False):
    """Refuse ``path`` (a field name, "field.subfield", "field:granularity" or "field:aggregate")
    if it reaches a secret of SECRET_QUERY_FIELDS, or a field the ORM cannot query that way:
    computed and not stored, without a search method in a domain (``searched``), neither
    stored nor related through many2one fields in a grouping or a sort. Returns the last
    model reached."""
    if not isinstance(path, str):
        return None
    current = model
    for name in path.split(":", 1)[0].strip().split("."):
        if name in SECRET_QUERY_FIELDS.get(current._name, ()):
            _refuse_secret_query(current, path, name)
        field = current._fields.get(name)
        if field is None:
            return None
        if not (field.store or field.search) if searched else not _sortable(current, field):
            _refuse_computed_query(current, path, name)
        if not field.relational:
            return None
        current = current.env[field.comodel_name]
    return current


def _check_query_domain(model, domain, depth=0):
    # a list or 19.0's Domain; not a Query (a sub-select an add-on's code may give to "any"),
    # whose iteration would run it
    if not (isinstance(domain, (list, tuple)) or hasattr(domain, "iter_conditions")):
        return
    if depth > 32:
        raise UserError(model.env._("This search's domain is nested too deep (more than 32 sub-domains)."))
    try:
        items = list(domain)
    except (TypeError, NotImplementedError):
        return
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 3:
            path, operator, value = item
            comodel = _check_query_path(model, path, searched=True)
            if comodel is not None and operator in _SUBDOMAIN_OPERATORS:
                _check_query_domain(comodel, value, depth + 1)


def check_query_fields(model, domain=None, order=None, groupby=(), aggregates=()):
    """One line, naming the field, for a search, grouping or sort by a secret
    (SECRET_QUERY_FIELDS), before the ORM's "not stored" traceback or an answer that tells
    something of the secret; and for one by a field computed and not stored that the ORM
    cannot query that way (_check_query_path), before its traceback (or, on 18.0, a search
    that drops the condition and answers every record). ``domain``: a domain (list or
    Domain), paths through relations and ``any`` sub-domains included; ``order``: a sort text ("field desc, other"); ``groupby``
    and ``aggregates``: read_group's specs ("field:day", "field:count_distinct"). Called by
    mcp.guard.values on every _search and _read_group of the add-on's models; not in superuser
    mode: the add-on's own code (a request's binding is found by its new secrets) and what an
    administrator's sudo() runs, never a client's call, which the first check already passed
    (paths and sub-domains are walked there, whatever model the ORM later searches)."""
    if model.env.su:
        return
    _check_query_domain(model, domain)
    if isinstance(order, str):
        for term in order.split(","):
            words = term.split()
            if words:
                _check_query_path(model, words[0])
    for spec in (*(groupby or ()), *(aggregates or ())):
        _check_query_path(model, spec)


def check_many2many_ids(model, vals, name):
    """One line for a value of the many2many ``name`` in ``vals`` that holds an id that is no id
    (``[(6, 0, ["x"])]``), before PostgreSQL's error reaches the client as a traceback."""
    check_field_values(model, vals, (name,))


class _Required:
    """The default of an argument an RPC method cannot go without (REQUIRED): a call that
    leaves it out reaches the method, which names it in one line (check_arguments), instead
    of the dispatcher's TypeError traceback (XML-RPC, JSON-RPC) or 422 (JSON-2). Distinct from
    None, which a client may send for some of them (a note, a principal)."""

    __slots__ = ()

    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()


def check_arguments(model, method, **arguments):
    """One line (UserError) naming the arguments of ``model``.``method`` a call left out (those
    still REQUIRED), in their order."""
    missing = [name for name, value in arguments.items() if value is REQUIRED]
    # made outside the translated call: an f-string in its arguments fails babel's extraction
    named = f"{model._name}.{method}"
    if len(missing) == 1:
        raise UserError(model.env._("%(method)s needs the argument %(argument)s.", method=named, argument=missing[0]))
    if missing:
        raise UserError(model.env._("%(method)s needs the arguments %(arguments)s.", method=named,
                                    arguments=", ".join(missing)))


@contextlib.contextmanager
def allow_connection_removal(ids):
    token = _CONNECTION_REMOVAL.set(frozenset(ids))
    try:
        yield
    finally:
        _CONNECTION_REMOVAL.reset(token)


def removal_allowed_ids():
    return _CONNECTION_REMOVAL.get()


@contextlib.contextmanager
def allow_carry_out(ids):
    """Set by consume() and action_approve() only, after their checks: _carry_out refuses any
    request outside it (no RPC client or server action can set it, unlike env.context)."""
    token = _CARRY_OUT.set(frozenset(ids))
    try:
        yield
    finally:
        _CARRY_OUT.reset(token)


def carry_out_allowed_ids():
    return _CARRY_OUT.get()
