"""The tool catalog: tool definitions, their hash, and their risk class.

Risk classes, lowest to highest:

- ``read``: only reads, lists, searches or computes; changes nothing.
- ``write``: creates or changes something that can be undone or corrected.
- ``destructive``: deletes, overwrites or cuts access (delete, remove, unlink, drop, reset,
  revoke, disconnect, ...); there is no undo.
- ``critical``: runs code, commands or arbitrary queries, sends messages to people, moves
  money, or changes rights, credentials or deployments.

A tool's class comes from four signals: the words of its name, phrases of its description,
its input schema (a ``mode`` that can be ``replace``, a ``sql`` or ``script`` parameter, a
path to save to, a ``dry_run`` switch) and its annotations. Annotations (``readOnlyHint``,
``destructiveHint``) are hints from a server that may not be trustworthy, so every signal can
only raise the class: the highest wins, and a tool that shows no sign of being read-only is at
least ``write``. A read verb in the name does not make a tool read-only when its description
or schema says that it writes ("writes the result back", "add/update", "via raw SQL").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import mcp_types as types
from pydantic import BaseModel

from odoo_mcp_guard import policy_core
from odoo_mcp_guard.names import canonical_json

# the classes and their order are the shared core's (policy_core, vendored into the add-on)
RiskClass = policy_core.RiskClass
RISK_CLASSES: tuple[RiskClass, ...] = policy_core.RISK_CLASSES
RISK_RANK: dict[str, int] = policy_core.RISK_RANK


class Classification(NamedTuple):
    """A tool's risk class and the reason for it (a tuple: cheap to hash in decision caches)."""

    risk_class: RiskClass
    reason: str


class CatalogEntry(BaseModel):
    """One tool as reported to Odoo (``mcp.tool.report_catalog``)."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None = None
    definition_hash: str
    risk_class: RiskClass
    risk_reason: str


# --- definitions ---------------------------------------------------------------------------


def definition_of(tool: types.Tool) -> dict[str, Any]:
    """The part of a tool definition that is pinned, hashed and classified."""
    dumped = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {
        key: dumped[key]
        for key in ("name", "description", "inputSchema", "annotations")
        if key in dumped
    }


def definition_hash(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(definition))).hexdigest()


def catalog_entry(definition: Mapping[str, Any], digest: str) -> CatalogEntry:
    """The report of one tool; ``digest`` is its ``definition_hash``, computed once."""
    verdict = classify_definition(definition)
    return CatalogEntry(
        name=definition["name"],
        description=definition.get("description"),
        input_schema=definition.get("inputSchema") or {},
        annotations=definition.get("annotations"),
        definition_hash=digest,
        risk_class=verdict.risk_class,
        risk_reason=verdict.reason,
    )


# --- classification ----------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Words of a tool's name, by the class they put it in (stems: a word matches a stem it
# starts with, so "deletes"/"deleting" match "delete"; stems of 3 letters or fewer match
# whole words only). A stem with "_" matches consecutive words.
_NAME_WORDS: dict[RiskClass, tuple[str, ...]] = {
    "critical": _words(
        """execute exec run eval evaluate shell bash terminal command cmd script send email
        sms post_message reply pay payment refund transfer charge payout deploy shutdown
        reboot grant impersonate sudo kubectl invoke call finalize"""
    ),
    "destructive": _words(
        """delete del remove rm unlink drop truncate purge wipe erase destroy reset revoke
        disconnect uninstall clear kill terminate overwrite force prune flush empty discard
        rollback nuke evict ban forget retire detach unregister deregister decommission teardown
        tear_down dispose"""
    ),
    "write": _words(
        """create add insert update edit write set put patch modify change rename move copy
        upload save commit push merge fork comment react reaction label assign connect
        navigate click fill select hover type press store append import mark star apply
        install enable disable start stop lock unlock publish schedule book register submit
        approve reject close reopen archive restore cancel replace checkout init new make
        generate gen build sync drag scroll resize link unstar mkdir touch subscribe unsubscribe
        invite remember transition configure login logon signin authenticate log_in sign_in
        relogin reauth reauthenticate logout logoff signout log_out log_off sign_out sign_off"""
    ),
    "read": _words(
        """get list read search find fetch show view describe query count status diff log
        inspect lookup look check convert calculate compute screenshot browse
        history info stats summarize summary echo ping explain analyze analyse preview
        retrieve download export tree stat whoami health version directions geocode
        elevation distance details time metadata schema fields recall think thinking glob
        grep cat head tail ls peek report connections discover scan monitor verify render
        parse extract translate detect compare recommend returns shows lists gets reads searches
        fetches retrieves"""
    ),
}
# Not read words, though tools that only read use them too: "open" launches programs and opens
# pull requests, "format" formats disks, "validate" posts an Odoo picking or invoice,
# "resolve"/"watch"/"print"/"test" resolve issues, subscribe, print on paper, send test hooks.

# Read words that are nouns rather than verbs: a name that starts with one goes on looking for
# its verb (``report_update`` updates; ``odoo_report`` stays a read). Words that look like
# verbs but are nouns in tool names (``user_connection_list``) have no class at all.
_READ_NOUNS = frozenset(
    _words(
        """status diff log history info stats summary tree stat health version details time
        metadata schema fields report connections directions elevation distance"""
    )
)
_NEUTRAL_WORDS = frozenset(_words("connection types labels readme"))
_CONNECTORS = frozenset(_words("and then or"))

# Nouns that make any non-read verb critical: rights, credentials, secrets, money.
_SENSITIVE_NOUNS = _words(
    """permission role acl access credential secret password token apikey key privilege
    policy member owner collaborator invoice subscription refund payment payout
    charge"""
)

# Description phrases; a sentence that says it is read-only does not count for the
# destructive and critical ones (``Run a read-only SQL query`` is a read).
_DESCRIPTION_PHRASES: tuple[tuple[RiskClass, re.Pattern[str]], ...] = (
    (
        "critical",
        re.compile(
            r"\b(?:execut\w*|exec|runs?|running|eval\w*|invok\w*)\b[^.;:]{0,40}?\b(?:commands?|code|"
            r"scripts?|shell|javascript|js|python|sql|statements?|programs?|process(?:es)?|"
            r"queries|query|expressions?|method)\b"
        ),
    ),
    ("critical", re.compile(r"\barbitrary\b")),
    # Raw SQL bypasses the application's access rules and constraints, whoever wrote it.
    (
        "critical",
        re.compile(
            r"\b(?:raw|direct)\s+sql\b|\bsql\s+(?:insert|update|delete|statements?)\b|"
            r"\bvia\s+sql\b"
        ),
    ),
    (
        "critical",
        re.compile(
            r"\braw\s+(?:https?\s+|api\s+|rest\s+)?(?:requests?|calls?)\b|"
            r"\brequests?\b[^.;:]{0,20}?\bto any\b"
        ),
    ),
    # Starting a program on the host, or loading code from files.
    (
        "critical",
        re.compile(
            r"\b(?:launch\w*|spawn\w*)\b[^.;:]{0,40}?\b(?:programs?|process(?:es)?|"
            r"applications?|apps?|gui|desktop|binar(?:y|ies)|executables?|versions?)\b|"
            r"\b(?:open\w*|start\w*)\b[^.;:]{0,40}?\b(?:desktop|gui)\b"
        ),
    ),
    ("critical", re.compile(r"\b(?:re)?load(?:s|ing)?\b[^.;:]{0,30}?\bplugins?\b")),
    (
        "critical",
        re.compile(
            r"\b(?:call\w*|forward\w*|proxy\w*)\b[^.;:]{0,30}?\b(?:any|apis?|endpoints?|methods?|"
            r"functions?|rpc|tool calls?)\b"
        ),
    ),
    (
        "critical",
        re.compile(
            r"\b(?:send\w*|post\w*|deliver\w*|reply\w*|dispatch\w*)\b[^.;:]{0,40}?\b(?:e-?mails?|"
            r"mails?|messages?|sms|texts?|notifications?|dms?|tweets?)\b"
        ),
    ),
    (
        "critical",
        re.compile(r"\b(?:payments?|refunds?|payouts?|charges? (?:a|the) (?:card|customer))\b"),
    ),
    (
        "critical",
        re.compile(
            r"\b(?:grant\w*|revok\w*|chang\w*|updat\w*|set\w*|rotat\w*|overwrit\w*|replac\w*|"
            r"re-?fetch\w*)\b[^.;:]{0,30}?\b(?:permissions?|privileges?|roles?|credentials?|"
            r"passwords?|secrets?|access rights?|certificates?|certs?|pinned)\b"
        ),
    ),
    ("critical", re.compile(r"\b(?:deploy\w*|shut\s?down\w*|reboot\w*)\b")),
    (
        "destructive",
        re.compile(
            r"\b(?:delet\w*|remov\w*|unlink\w*|drops?|dropping|truncat\w*|purg\w*|wip(?:e|es|"
            r"ing)|eras\w*|destroy\w*|overwrit\w*|revok\w*|disconnect\w*|permanent\w*|"
            r"irreversibl\w*|uninstall\w*|hard reset|discard\w*)\b"
        ),
    ),
    ("destructive", re.compile(r"\b(?:cannot|can't|can ?not) be (?:undone|recovered|reverted)\b")),
    # Add-or-update replaces what is stored under the same key.
    (
        "destructive",
        re.compile(
            r"\b(?:add|create|insert|write|save)\s*\(?(?:/|or|and/or)\s*(?:update|replace|"
            r"overwrite)\b|\bupsert\w*|"
            r"\breplac\w* (?:the |an? )?(?:existing|whole|entire|full|all)\b"
        ),
    ),
    # A tool that says it writes is at least a write, whatever verb its name has.
    (
        "write",
        re.compile(
            r"\bwrit(?:e|es|ing)\b[^.;:]{0,60}?\bback\b|\bwrite[- _]back\b|"
            r"^\W*(?:writes?|saves?|stores?|persists?|inserts?|updates?|modif(?:y|ies)|creates?|"
            r"replaces?|launch(?:es)?|imports?)\b|"
            r"\b(?:tool|it) (?:writes|saves|stores|updates|modifies|creates|inserts|replaces)\b"
        ),
    ),
)
_READ_ONLY_SENTENCE = re.compile(
    r"\bread[- ]?only\b|\bno (?:changes|side effects)\b|\bselect (?:query|queries|statements?)\b"
)
_NEGATED = re.compile(
    r"\b(?:not|never|no|without|doesn't|does not|don't|won't|will not|cannot)\W+(?:\w+\W+){0,2}$"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def name_words(name: str) -> list[str]:
    """The words of a tool name: ``gitCreateBranch`` and ``git-create_branch`` give
    ``git, create, branch``."""
    return [w.lower() for w in _WORD_SPLIT.split(_CAMEL.sub("_", name)) if w]


def _word_matches(word: str, stem: str) -> bool:
    if len(stem) <= 3:
        return word == stem
    return word.startswith(stem)


def _word_class(word: str) -> tuple[RiskClass, str] | None:
    """The class of one word: that of the longest stem it matches (``connections`` is a
    read, not ``connect``)."""
    best: tuple[RiskClass, str] | None = None
    for risk in RISK_CLASSES:
        for stem in _NAME_WORDS[risk]:
            longer = best is None or len(stem) > len(best[1])
            if "_" not in stem and longer and _word_matches(word, stem):
                best = (risk, stem)
    return best


def _name_signals(name: str, description: str | None = None) -> list[tuple[RiskClass, str]]:
    """Signals of the name's words. Critical and destructive words count wherever they are;
    a write word after a read verb is the verb's object (``get_pull_request_comments``), but
    not after "and"/"then" (``fetch_and_store`` stores). A name with no verb at all is read
    by the first word of its description."""
    words = name_words(name)
    joined = f"_{'_'.join(words)}_"
    signals: list[tuple[RiskClass, str]] = []
    verb: tuple[RiskClass, str] | None = None
    after_connector = False
    for word in words:
        if word in _CONNECTORS:
            after_connector = True
            continue
        found = None if word in _NEUTRAL_WORDS else _word_class(word)
        if found is None:
            continue
        if found[0] in ("critical", "destructive"):
            signals.append(found)
        elif verb is None or verb[1] in _READ_NOUNS:
            verb = found
        elif after_connector:
            signals.append(found)
        after_connector = False
    for risk in ("critical", "destructive", "write"):
        for stem in _NAME_WORDS[risk]:
            if "_" in stem and f"_{stem}_" in joined:
                signals.append((risk, stem))
    if verb is None and description:
        first = _WORD_SPLIT.split(description.strip().lower(), maxsplit=1)[0]
        found = _word_class(first)
        if found is not None and found[0] in ("read", "write"):
            verb = (found[0], f"{found[1]} (description)")
    if verb is not None:
        signals.append(verb)
    if any(risk != "read" for risk, _ in signals):
        noun = next((n for n in _SENSITIVE_NOUNS if any(_word_matches(w, n) for w in words)), None)
        if noun is not None:
            signals.append(("critical", noun))
    return signals


def _description_signals(description: str) -> list[tuple[RiskClass, str]]:
    signals: list[tuple[RiskClass, str]] = []
    for sentence in _SENTENCE.split(description.lower()):
        read_only = bool(_READ_ONLY_SENTENCE.search(sentence))
        for risk, pattern in _DESCRIPTION_PHRASES:
            if read_only and risk in ("critical", "destructive"):
                continue
            for match in pattern.finditer(sentence):
                if _NEGATED.search(sentence[: match.start()]):
                    continue  # "does not delete anything"
                phrase = " ".join(match.group(0).split())
                signals.append((risk, phrase if len(phrase) <= 40 else phrase[:37] + "..."))
                break
    return signals


# Input-schema parameters, by name, that show what a tool does when called.
_SCHEMA_PARAMS: dict[str, tuple[RiskClass, str]] = {
    **dict.fromkeys(("dry_run", "dryrun"), ("write", "has a dry-run switch")),
    **dict.fromkeys(("write_back", "writeback", "persist"), ("write", "can write back")),
    "overwrite": ("destructive", "can overwrite"),
    **dict.fromkeys(
        _words(
            """save_path save_to save_as output_path output_file out_path out_file dest_path
            destination_path target_path download_path"""
        ),
        ("destructive", "writes a file at a path the caller chooses"),
    ),
    **dict.fromkeys(("sql", "sql_query", "raw_sql"), ("critical", "takes SQL")),
    **dict.fromkeys(
        _words(
            """script javascript python python_code js_code source_code command cmd
            custom_command shell_command"""
        ),
        ("critical", "takes code or a command"),
    ),
}
# Parameters that choose what a multi-purpose tool does, and the choices that change things.
_CONTROL_PARAMS = frozenset(
    _words("mode operation op action method strategy on_conflict if_exists conflict")
)
_CONTROL_VALUES: dict[str, RiskClass] = {
    **dict.fromkeys(
        _words("overwrite delete remove drop truncate purge upsert force"), "destructive"
    ),
    **dict.fromkeys(
        _words("replace update write append create insert put patch post set add edit"), "write"
    ),
}
_SQL = re.compile(r"\bsql\b")
_CODE_PARAM = re.compile(r"\b(?:python|javascript|js|script|source code|execut\w*|run|eval\w*)\b")


def _schema_signals(schema: Mapping[str, Any], description: str) -> list[tuple[RiskClass, str]]:
    """Signals of the input schema's parameters (``mode: replace``, ``sql``, ``save_path``)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    signals: list[tuple[RiskClass, str]] = []
    read_only_tool = bool(_READ_ONLY_SENTENCE.search(description.lower()))
    for raw_name, spec in properties.items():
        param = "_".join(name_words(str(raw_name)))  # saveTo, save-to, save_to
        spec = spec if isinstance(spec, Mapping) else {}
        about = str(spec.get("description") or "").lower()
        found = _SCHEMA_PARAMS.get(param)
        if param == "query" and _SQL.search(about):
            found = ("critical", "takes SQL")
        if param == "code" and _CODE_PARAM.search(about):
            found = ("critical", "takes code or a command")
        read_only = read_only_tool or _READ_ONLY_SENTENCE.search(about)
        if found is not None and found[1] == "takes SQL" and read_only:
            found = None  # a SELECT-only query tool, as the description says
        if found is not None:
            signals.append((found[0], f"'{raw_name}' {found[1]}"))
        if param in _CONTROL_PARAMS and isinstance(spec.get("enum"), list):
            choices = [str(v) for v in spec["enum"] if str(v).lower() in _CONTROL_VALUES]
            for risk in ("destructive", "write"):
                values = [v for v in choices if _CONTROL_VALUES[v.lower()] == risk]
                if values:
                    signals.append((risk, f"'{raw_name}' can be '{values[0]}'"))
                    break
    return signals


def classify(
    name: str,
    description: str | None = None,
    annotations: Mapping[str, Any] | None = None,
    input_schema: Mapping[str, Any] | None = None,
) -> Classification:
    """The risk class of a tool, and the reason for it in a few words."""
    reasons: dict[RiskClass, list[str]] = {risk: [] for risk in RISK_CLASSES}
    for risk, word in _name_signals(name, description):
        reasons[risk].append(f"name says '{word}'")
    for risk, phrase in _description_signals(description or ""):
        note = f"description says '{phrase}'"
        if note not in reasons[risk]:
            reasons[risk].append(note)
    for risk, note in _schema_signals(input_schema or {}, description or ""):
        reasons[risk].append(f"schema: {note}")
    hints = annotations or {}
    if hints.get("destructiveHint") is True and hints.get("readOnlyHint") is not True:
        reasons["destructive"].append("annotated destructive")
    if hints.get("readOnlyHint") is True:
        reasons["read"].append("annotated read-only")
    if hints.get("readOnlyHint") is False:
        # The server says it changes something (a cache, a timestamp): never a read.
        reasons["write"].append("annotated not read-only")
    highest = max((r for r in RISK_CLASSES if reasons[r]), key=RISK_RANK.__getitem__, default=None)
    if highest is None or reasons[highest] == ["annotated read-only"]:
        # Read-only needs the name to say so: an annotation alone cannot lower the class.
        why = "no sign that it only reads"
        if highest is not None:
            why = "annotated read-only, but its name does not say so"
        return Classification(risk_class="write", reason=why)
    notes = reasons[highest][:3]
    return Classification(risk_class=highest, reason="; ".join(notes))


def classify_definition(definition: Mapping[str, Any]) -> Classification:
    return classify(
        str(definition.get("name", "")),
        definition.get("description"),
        definition.get("annotations"),
        definition.get("inputSchema"),
    )


def classify_tool(tool: types.Tool) -> Classification:
    return classify_definition(definition_of(tool))


# --- upserts -------------------------------------------------------------------------------

# An add-or-update writes over whatever already has the key it is given: for a connection,
# a removal of the old one (DESIGN invariant 11). Words of the name, phrases of the description.
_UPSERT_NAME = re.compile(
    r"_(?:upsert|overwrite|(?:add|create|insert|save|set)_or_(?:update|replace|overwrite)|"
    r"update_or_(?:add|create|insert))_"
)
_UPSERT_PHRASE = re.compile(
    r"\b(?:upsert\w*|overwrit\w*|(?:add|create|insert|sav|set)\w*\s*(?:/|or|and/or|&)\s*"
    r"(?:updat|replac|overwrit)\w*|updat\w*\s*(?:/|or|&)\s*(?:add|creat|insert)\w*|"
    r"replac\w*\s+(?:an?\s+|the\s+|any\s+)?existing)\b"
)
# What an add-or-update keeps that is a connection by another name: a server, an instance,
# an alias, a profile, credentials ("odoo_server_upsert", "Register an Odoo instance;
# overwrites an existing one": attack 17, F4).
_CONNECTION_WORDS = re.compile(
    r"\b(?:connect\w*|servers?|instances?|alias\w*|profiles?|credentials?)\b"
)


def is_upsert(definition: Mapping[str, Any]) -> bool:
    """Whether a tool adds or updates (replaces what already has its key)."""
    words = name_words(str(definition.get("name", "")))
    if _UPSERT_NAME.search(f"_{'_'.join(words)}_"):
        return True
    return bool(_UPSERT_PHRASE.search(str(definition.get("description") or "").lower()))


def is_connection_upsert(definition: Mapping[str, Any]) -> bool:
    """An add-or-update of connections (``odoo_connect``: "Add/update an Odoo connection")."""
    if not is_upsert(definition):
        return False
    text = f"{' '.join(name_words(str(definition.get('name', ''))))} "
    text += str(definition.get("description") or "").lower()
    return bool(_CONNECTION_WORDS.search(text))


# A tool that switches, activates or (re)loads connections writes over the working one
# (odoo-claude-mcp's ``identify``: "load your personal settings and connections",
# ``user_connection_activate``: "Activate one of your personal connections").
_CONNECTION_CHANGE = re.compile(
    r"\b(?:activat\w*|switch\w*|select\w*|(?:re)?load\w*|set|sets|setting|chang\w*|"
    r"replac\w*|overwrit\w*|updat\w*)\b[^.]{0,40}?\bconnection|"
    # ended in other words: "Forget a saved Odoo site", "Log out of prod" (outside round 22)
    r"\b(?:forget\w*|forgot\w*|retir\w*|detach\w*|unregister\w*|deregister\w*|repoint\w*|"
    r"switch\w*)\b[^.]{0,40}?\b(?:connections?|sites?|instances?|servers?|environments?|"
    r"sessions?|alias\w*|profiles?|databases?|accounts?|logins?)\b|"
    # ended in yet other words: "Decommission an instance", "Tear down the connection",
    # "Reset the profile" (outside round 24; not "from the database": records are deleted so)
    r"\b(?:decommission\w*|tear(?:s|ing)?\s*down|teardown\w*|reset\w*|destroy\w*|purg\w*|"
    r"wip(?:e|es|ing)|revok\w*|drop(?:s|ping|ped)?|nuk\w*|dispos\w*|terminat\w*|clos\w*|"
    r"remov\w*|delet\w*)\b[^.]{0,40}?\b(?:connections?|cxns?|conns?|sites?|instances?|"
    r"servers?|environments?|alias\w*|profiles?|accounts?|logins?|credentials?)\b|"
    r"\b(?:log(?:s|ging)?|sign(?:s|ing)?)\s+(?:out|off)\b|\blogout\b"
)
# A verb whose object is a connection: "Add a connection for the current user", "Edit an
# existing Odoo connection", "Register a new connection" (no preposition in between: "Create
# a record on a connection" creates a record).
_CONNECTION_OBJECT = re.compile(
    r"\b(?:add|adds|adding|edit(?:s|ing)?|upsert\w*|sav(?:e|es|ing)|configur(?:e|es|ing)|creat(?:e|es|ing)|"
    r"register\w*|modif\w*|updat\w*|stor(?:e|es|ing)|writ(?:e|es|ing)|renam\w*|establish\w*|"
    r"put|puts|defin\w*|import\w*|(?:re)?connect(?:s|ing)?)"
    r"(?:\s*/\s*\w+)?"
    r"(?:\s+(?!(?:on|in|using|via|with|from|through|over|to|for|by|at|into)\b)[\w'-]+){0,4}?"
    r"\s+(?:connections?|conn)\b"
)
_CONNECTION_CHANGE_NAME = frozenset(
    _words("activate switch select set change load use end target point repoint rename forget")
)
# Words of a name that make it about connections: "user_connection_add", "conn_edit",
# "odoo_connect", "reconnect" ("connections" alone is a list: "odoo_connections"); and what
# else a connection is called: a site, an instance, a server, an environment, a session
# ("instance_retire", "odoo_session_end", "env_switch": outside round 22).
_CONNECTION_NOUN = re.compile(
    r"(?:conn|conns|cxn|cxns|cx|connection|connections|connector|connectors|sites?|instances?|"
    r"servers?|env|envs|environments?|sessions?|endpoints?|targets?|databases?|db|dbs)"
)
# What else may hold a connection, but as often something else (a link in a document, an
# account in a ledger): about connections only with a verb that ends what it names
# ("odoo_link_remove", "account_revoke": outside round 24).
_ENDED_NOUN = re.compile(r"(?:links?|accounts?)")
# Verbs that, in a name, end, move or switch what a tool keeps under a name, whatever it is
# called ("site_forget", "odoo_detach", "odoo_logout", "odoo_web_logout": outside round 22).
_CONNECTION_LIFECYCLE_NAME = re.compile(
    r"_(?:forget\w*|retire\w*|detach\w*|logout\w*|logoff\w*|signout\w*|log_(?:out|off)|"
    r"sign_(?:out|off)|unregister\w*|deregister\w*|repoint\w*|switch\w*)_"
)
# A name that is a namespace and one of these verbs alone ("odoo_use", "odoo_set",
# "odoo_rename", "odoo_point", "odoo_target"): with no object named, what it sets, renames or
# points is the upstream's own, a connection (outside round 22); not when it takes a model.
_BARE_VERBS = frozenset(
    _words(
        """use set target point repoint rename switch activate change load end forget detach
        retire unset bind unbind attach"""
    )
)
# Verbs that end what they name ("odoo_reset", "instance_decommission", "odoo_cxn_remove":
# outside round 24). With a connection noun they end a connection; as a namespace's bare verb
# too ("all" after it: "odoo_close_all"), when the tool takes nothing but a name for it
# (``git_reset`` takes a repository path).
_END_VERBS = frozenset(
    _words(
        """reset decommission teardown destroy purge wipe revoke drop nuke dispose terminate
        close remove delete disconnect forget retire detach bye clear eject finish unpair unlink"""
    )
)
_END_NAME = re.compile(r"_(?:tear_down|decommission\w*|teardown\w*|dispos\w*)_")
# A tool named by one such verb, or a farewell, alone ("disconnect", "reset", "quit"), that
# takes nothing but a name for what it ends, ends the upstream's own: a connection (outside
# round 26). Given what else it ends (redis's ``delete(key)``, a path, a model) it is not.
_LONE_END_VERBS = _END_VERBS | frozenset(
    _words("bye goodbye quit exit hangup stop end logoff signoff logout signout")
)
_LONE_NAMING_PARAMS = frozenset(_words("name alias connection target"))
_NAMING_PARAMS = frozenset(
    _words(
        """name alias id key target connection conn cxn instance site server profile account
        env environment"""
    )
)
_MODEL_PARAMS = frozenset(_words("model res_model model_name"))
_CONNECT_VERB = re.compile(r"(?:re)?connect(?:s|ed|ing)?")


# Logging in to a server under a name keeps it for later calls (odoo_login: "Log in to an
# Odoo server and remember it under an alias"); a profile, alias or credentials saved under a
# name are a connection by another word (odoo_profile_save: "an existing profile of that name
# is updated").
_LOGIN_NAME = re.compile(
    r"_(?:re_?)?(?:login|logon|signin|log_in|sign_in|authenticate)_|_reauth\w*_"
)
_SETTINGS_NOUN = re.compile(r"(?:profiles?|credentials?|alias|aliases|logins?)")
_ALL_NOUNS = (_CONNECTION_NOUN, _SETTINGS_NOUN, _ENDED_NOUN)
_KEPT_UNDER_A_NAME = re.compile(
    r"\b(?:remember\w*|sav(?:e|es|ing)|stor(?:e|es|ing)|keep\w*|kept|persist\w*|"
    r"register\w*)\b[^.;]{0,60}?\bunder\s+(?:an?\s+|the\s+|that\s+|"
    r"its\s+|this\s+|given\s+|your\s+)?(?:\w+\s+)?(?:alias|name|profile|key|label)\b|"
    r"\b(?:log(?:s|ging)?\s+in|sign(?:s|ing)?\s+in|login)\b[^.;]{0,80}?\b(?:remember\w*|sav\w*|"
    r"stor\w*|keep\w*|persist\w*|alias|profile)\b|"
    r"\bexisting\s+(?:\w+\s+)?(?:profiles?|alias(?:es)?|accounts?|logins?|servers?|"
    r"credentials?|sessions?|settings)\b[^.;]{0,40}?\b(?:is|are|gets?|will\s+be)\s+"
    r"(?:updated|replaced|overwritten|changed)\b"
)
# The input schema of a tool that takes what a connection is: a server's address and a secret
# for it (a user name alone does not: ``ssh_execute``'s host and user run a command).
_ADDRESS_PARAMS = frozenset(
    _words("url base_url server_url odoo_url host hostname server endpoint")
)
_LOGIN_PARAMS = frozenset(_words("password passwd pwd api_key apikey token secret"))


# The key a saved connection is kept under: a tool that takes one and does not only read acts
# on that connection, whatever it calls the act ("Repoint an alias", "Forget an alias":
# attack 17, F4). Data tools name the connection they use otherwise (odoo-claude-mcp:
# ``connection``); every non-read tool of the corpus that takes an ``alias`` manages one.
_ALIAS_PARAMS = frozenset(
    _words("alias alias_name connection_alias server_alias profile profile_name")
)


def _params(schema: Any) -> set[str]:
    """The names of a schema's parameters, as words joined by "_" (saveTo, save-to: save_to)."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return set()
    return {"_".join(name_words(str(name))) for name in properties}


def _takes_an_alias(schema: Any) -> bool:
    return bool(_params(schema) & _ALIAS_PARAMS)


def _takes_connection_settings(schema: Any) -> bool:
    params = _params(schema)
    return bool(params & _ADDRESS_PARAMS) and bool(params & _LOGIN_PARAMS)


def changes_connection(definition: Mapping[str, Any]) -> bool:
    """A tool that adds, edits, replaces, activates or removes a connection (an upsert
    included). Failing closed: a name about connections with any verb that is not a read
    ("user_connection_add", "odoo_connection_edit", "conn_register"), a connect or log-in verb
    in the name ("odoo_connect", "odoo_login"), a profile, alias or credentials with a verb that
    is not a read ("odoo_profile_save"), a description whose verb takes a connection as its
    object or that keeps something under a name ("remember it under an alias", "an existing
    profile of that name is updated"), or a tool that takes a server's address and a secret
    for it and is not a read. The proxy's own caller adds: whatever the operator
    declares (``--connection-tool``)."""
    if is_connection_upsert(definition):
        return True
    words = name_words(str(definition.get("name", "")))
    joined = f"_{'_'.join(words)}_"
    if any(_CONNECT_VERB.fullmatch(w) for w in words) or _LOGIN_NAME.search(joined):
        return True
    if _CONNECTION_LIFECYCLE_NAME.search(joined):
        return True
    schema = definition.get("inputSchema")
    if len(words) == 2 and words[1] in _BARE_VERBS and not _params(schema) & _MODEL_PARAMS:
        return True
    ended = f"_{'_'.join(words)}_".replace("_tear_down_", "_teardown_").strip("_").split("_")
    if len(ended) == 3 and ended[2] == "all":
        ended = ended[:2]
    if len(ended) == 2 and ended[1] in _END_VERBS and _params(schema) <= _NAMING_PARAMS:
        return True
    if len(ended) == 1 and ended[0] in _LONE_END_VERBS and _params(schema) <= _LONE_NAMING_PARAMS:
        return True
    nouns = [w for w in words if any(n.fullmatch(w) for n in _ALL_NOUNS)]
    if nouns and (set(words) & _END_VERBS or _END_NAME.search(joined)):
        return True
    for noun in (_CONNECTION_NOUN, _SETTINGS_NOUN):
        if any(noun.fullmatch(w) for w in words):
            others = [w for w in words if not noun.fullmatch(w)]
            if _CONNECTION_CHANGE_NAME & set(others):
                return True
            for word in others:
                found = _word_class(word)
                if found is not None and found[0] != "read":
                    return True
    description = str(definition.get("description") or "").lower()
    if (
        _CONNECTION_CHANGE.search(description)
        or _CONNECTION_OBJECT.search(description)
        or _KEPT_UNDER_A_NAME.search(description)
    ):
        return True
    return (_takes_connection_settings(schema) or _takes_an_alias(schema)) and (
        classify_definition(definition).risk_class != "read"
    )
