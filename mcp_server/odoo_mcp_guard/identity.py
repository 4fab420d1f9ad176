"""Identities: who asked, who decides, and whether they are the same person.

ONE implementation for both halves: the front-end imports it, the Odoo add-on vendors this
file byte for byte (``make sync-core``; tests/test_policy_core.py checks the copies). So it
imports nothing but the standard library and ICU (``pyicu-wheels``, module ``icu``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

import icu as _icu  # ICU: the TR39 confusable skeleton, Unicode properties

# --- characters that must not reach a terminal, a store or a comparison ----------------


def _default_ignorable(ch: str) -> bool:
    return bool(_icu.Char.hasBinaryProperty(ch, _icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT))


def unsafe_char(ch: str) -> bool:
    """A character that must not reach a terminal or a name as it is: a control (C0, C1,
    ESC), a format character (bidi overrides, zero-width), a line or paragraph separator,
    a space other than U+0020, a private-use, surrogate or unassigned code point, or one
    that Unicode says renders as nothing (default-ignorable: variation selectors, fillers)."""
    return not ch.isprintable() or _default_ignorable(ch)


def find_unsafe(text: str) -> str | None:
    """The first unsafe character of ``text`` (see ``unsafe_char``), or None."""
    return next((ch for ch in text if unsafe_char(ch)), None)


def text_problem(value: object, what: str, *, lines: bool = False) -> str | None:
    """Why ``value`` cannot be taken as ``what`` (a connection's url, db or login; with
    ``lines``, free text such as a reason, where a newline or tab may be kept), in one line
    naming the first unsafe character, or None. The one rule of both halves: a bidi override
    or a zero-width space would show an approver other text than the one stored. Anything but
    a string (a list, a number) is refused too: stored, it would be its printed form, which no
    other check read (attack 17, finding 1)."""
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    text = value.replace("\n", " ").replace("\t", " ") if lines else value
    bad = find_unsafe(text)
    if bad is None:
        return None
    return (
        f"{what} contains {bad!a}, a control, format or invisible character; "
        "such characters are refused"
    )


def secret_problem(value: object, what: str) -> str | None:
    """Why ``value`` cannot be kept as the secret ``what`` (a password, an API key), in one
    line, or None: text without NUL. Nothing else of it is judged (a secret is never shown),
    but PostgreSQL refuses a NUL in text and XML-RPC cannot carry one: refused at the input
    with a reason, not at the store with a traceback (outside round 21)."""
    if not isinstance(value, str):
        return f"{what} must be a string, not {type(value).__name__}"
    if "\x00" in value:
        return f"{what} contains a NUL character (U+0000), which no password or API key holds"
    return None


def shown(value: object) -> str:
    """``value`` as it may be printed on an operator's terminal: unsafe characters escaped
    (a newline cannot forge a row, an ESC cannot drive the terminal); the rest as it is."""
    text = value if isinstance(value, str) else str(value)
    if find_unsafe(text) is None:
        return text
    return "".join(ascii(ch)[1:-1] if unsafe_char(ch) else ch for ch in text)


# --- identities: who asked, who decides ------------------------------------------------

# The prefixes the guard itself gives principals: ``stdio:<OS user>`` on stdio (frontend.py),
# ``http:`` for a name seen through the HTTP transport. Only these are taken off a name.
TRANSPORT_PREFIXES = ("stdio:", "http:")
MAX_IDENTITY_LENGTH = 128
_SPOOF = _icu.SpoofChecker()


def skeleton(text: str) -> str:
    """The Unicode TR39 confusable skeleton (ICU's SpoofChecker): two strings a reader
    cannot tell apart have the same skeleton ("аlice" with a Cyrillic а, "alıce", "alice")."""
    return str(_SPOOF.getSkeleton(0, text))


def _fold(text: str) -> str:
    """Compatibility forms, case and accents away: "ＡＬＩＣＥ", "Alice", "alice" + U+0301."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me"))
    return unicodedata.normalize("NFKC", bare.casefold())


# Latin letters that neither NFKC nor the TR39 skeleton take to the letter a person reads:
# small capitals ("ʙ", "ᴀ", "ᴇ"), modifier and script forms, letters with a stroke, hook or
# belt ("ƀ", "ᶑ"). Derived from the Unicode names of the Latin blocks: the name's one
# or two letters, once its style words are set aside ("LATIN LETTER SMALL CAPITAL B" -> b,
# "LATIN SMALL LETTER B WITH STROKE" -> b); turned, reversed or inverted letters are not.
_LATIN_BLOCKS = (
    (0x0080, 0x0300),  # Latin-1 Supplement, Extended-A and -B, IPA, spacing modifiers
    (0x1D00, 0x1DC0),  # Phonetic Extensions (and Supplement)
    (0x1E00, 0x1F00),  # Latin Extended Additional
    (0x2C60, 0x2C80),  # Latin Extended-C
    (0xA720, 0xA800),  # Latin Extended-D
    (0xAB30, 0xAB70),  # Latin Extended-E
    (0x10780, 0x107C0),  # Latin Extended-F
    (0x1DF00, 0x1E000),  # Latin Extended-G
)
_STYLE_WORDS = frozenset(("SMALL", "CAPITAL", "LETTER", "SCRIPT", "DOTLESS"))


def _latin_letter_forms() -> dict[int, str]:
    table: dict[int, str] = {}
    for low, high in _LATIN_BLOCKS:
        for code in range(low, high):
            words = unicodedata.name(chr(code), "").split(" WITH ")[0].split()
            if not words or words[0] not in ("LATIN", "MODIFIER"):
                continue
            rest = [word for word in words[1:] if word not in _STYLE_WORDS]
            if len(rest) == 1 and len(rest[0]) <= 2 and rest[0].isalpha() and rest[0].isascii():
                table[code] = rest[0].lower()
    return table


_LATIN_LETTERS = _latin_letter_forms()


def _reading(text: str) -> str:
    """The letters a person reads in ``text``: its skeleton, folded (compatibility forms,
    case, accents), Latin letter variants taken to their letter, and the skeleton again,
    repeated until nothing changes (each step can make a new look-alike for another)."""
    form = text
    for _ in range(8):
        folded = skeleton(_fold(skeleton(form)).translate(_LATIN_LETTERS))
        if folded == form:
            break
        form = folded
    return form


_PREFIX_FORMS = tuple(_reading(prefix) for prefix in TRANSPORT_PREFIXES)

# Plain Latin that reads as another letter in common UI fonts, which TR39 leaves apart (its
# skeleton already takes "m" to "rn", "0" to "o", "1" and "I" to "l"): "vvill" is will,
# "clave" dave, "ennma" emma. For comparing identities only, never for display. The set:
# - letters that two letters make when set side by side, stroke for stroke: "vv" is "w",
#   "cl" is "d" (a bowl and a stem), "rn" and "nn" are "m" (two arches), as typosquatting
#   lists have them. Not "ii" or "ri" (a dot tells them from "u" and "n"), nor "lc", "ln"
#   or "lo" (a gap or a closed bowl tells them from "k", "h" and "b").
# - digits drawn like a letter, each to a letter of its own (password generators' list of
#   ambiguous characters: 2 Z, 5 S, 6 G, 8 B), so that numbered principals ("bot6", "bot8")
#   never fold into each other.
# Each is expanded to one canonical spelling ("w" -> "vv", "d" -> "cl", "m" is "rn" already
# and every r before an n is an n), so that overlaps fold the same way whatever is read
# first ("vvv", "wv" and "vw"; "arnna" and "arma"). The trade-off: a few real names fold
# together ("arne" and "anne", "bernie" and "bennie", "lorna" and "lonna", "clara" and
# "dara"; tests/test_lookalike_letters.py keeps the list). A false merge fails closed: one of
# them cannot decide the other's requests, someone else must; a missed one lets a requester
# approve her own.
_LOOKALIKE_DIGITS = str.maketrans({"2": "z", "5": "s", "6": "g", "8": "b"})
_LOOKALIKE_LETTERS = str.maketrans({"w": "vv", "d": "cl"})
_R_BEFORE_N = re.compile(r"r+(?=n)")


def _lookalike_fold(key: str) -> str:
    """``key`` (a name as read: skeleton, case folded) with its look-alike Latin sequences
    and digits in one spelling (see above): "vvill" and "will" fold to "vvill"."""
    form = key.translate(_LOOKALIKE_DIGITS).translate(_LOOKALIKE_LETTERS)
    return _R_BEFORE_N.sub(lambda run: "n" * len(run.group()), form)


def _identity_key(text: str) -> str:
    # The skeleton first, so that skeleton-equal names always give equal keys; then case,
    # accents and letter variants, and the skeleton again (folding can make new look-alikes:
    # "I" -> "i"), until nothing changes.
    form = _reading(text)
    while True:
        prefix = next((p for p in _PREFIX_FORMS if form.startswith(p)), None)
        if prefix is None:
            break
        form = form[len(prefix) :]
    # Spacing and punctuation do not tell people apart ("a.lice", "al ice"); nor do Latin
    # look-alikes TR39 leaves apart ("vvill", "will": _lookalike_fold).
    return _lookalike_fold("".join(ch for ch in form if ch.isalnum()))


# What follows a person's name without naming someone else: a sub-address ("ann+ops",
# RFC 5233, with or without a domain) or a tag ("ann#1"). Compared as read ("＋" is "+").
_SUFFIX_MARKS = ("+", "#")


def _mailbox(local: str) -> str:
    """A name or an address's local part without its sub-address or tag: "olga+approver" and
    "olga#2" are olga's; a name that is nothing but a suffix is kept as it is."""
    form = _reading(local)
    cut = min((form.index(mark) for mark in _SUFFIX_MARKS if mark in form), default=-1)
    return form[:cut] if cut > 0 else local


def _decoded(name: str) -> str:
    """``name`` with its percent-escapes decoded ("ann.lee%40example.com" is an address), as
    often as they nest (a few rounds: "%2540" is "%40" is "@")."""
    form = name
    for _ in range(4):
        decoded = unquote(form, errors="replace")
        if decoded == form:
            break
        form = decoded
    return form


def _form_keys(form: str) -> set[str]:
    """The keys of one spelling: as read, case-folded, an address by its local part, and a
    name or local part by its mailbox (without a sub-address or tag)."""
    keys = {_identity_key(form), _identity_key(_fold(form))}
    local, at, domain = _fold(form).rpartition("@")
    if at and local.strip() and domain.strip():
        keys |= {_identity_key(local), _identity_key(_fold(local))}
    else:
        local = form
    mailbox = _identity_key(_mailbox(local))
    if mailbox:
        keys.add(mailbox)
    return keys


# The spellings a name can stand for, besides itself (fail closed: a key too many refuses an
# approver whose name collides; a key too few lets a requester approve herself). What many
# people's names share (a department in a comment, a domain, a DN's OU or DC) is no spelling:
# it would make them one person.
# RFC 5322: "Alice <alice@x.org>" is the display name and the mailbox; "alice (ops)" a name
# and a comment; "[alice]", "{alice}" the same bracketing.
_MAILBOX = re.compile(r"<([^<>]*)>")
_BRACKETED = re.compile(r"<[^<>]*>|\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}")
# DOMAIN\user, domain/user, realm:user ("mailto:alice@x.org"): the user, after the last one.
_PREFIXED = re.compile(r"^.*[\\/:]([^\\/:]*)$")
# user/instance@REALM (Kerberos): the user is the first part.
_KERBEROS = re.compile(r"^([^\\/:@]+)/[^\\/:@]+@[^\\/:@]+$")
# Routing decorations of a mailbox (check_decider refuses them in a decider's name; the add-on
# compares names it does not check so): a UUCP bang path ("host!alice": the user is the
# last part) and the percent hack ("alice%host@relay": the user is the first part).
_BANG = re.compile(r"^.*!([^!]*)$")
_PERCENT_HACK = re.compile(r"^([^%]+)%.*$")
# An LDAP DN: the value of its first RDN ("CN=alice,OU=x", "uid=alice") and of any RDN that
# names a person ("OU=x+CN=alice"); "/DC=org/OU=x/CN=alice" is a prefixed "CN=alice".
_RDN = re.compile(r"\s*([A-Za-z][A-Za-z0-9.-]*)\s*=\s*((?:\\.|[^,;+\\])*)")
_PERSON_RDNS = frozenset(("cn", "uid", "userid", "mail", "samaccountname", "userprincipalname"))
# A name of more spellings than this cannot be compared (check_identity refuses it): a
# person's name has a few, a name made to hide one among many has dozens.
MAX_SPELLINGS = 48


def _rdn_values(form: str) -> list[str]:
    rdns = [_RDN.fullmatch(part) for part in re.split(r"(?<!\\)[,;+]", form) if part.strip()]
    if not rdns or rdns[0] is None:
        return []
    values = [rdns[0].group(2)]
    values += [m.group(2) for m in rdns[1:] if m is not None and m.group(1).lower() in _PERSON_RDNS]
    return [re.sub(r"\\(.)", r"\1", value) for value in values]


def _derived(form: str) -> list[str]:
    """The spellings ``form`` stands for, one step: as read (full-width or look-alike brackets
    and slashes are brackets and slashes), the mailbox and the display name of "Name
    <mailbox>", the text without its (comments), the user of DOMAIN\\user, domain/user or
    user/instance@REALM, a DN's person, the user of a bang path or a percent hack."""
    derived = [unicodedata.normalize("NFKC", form), _reading(form)]
    derived += _MAILBOX.findall(form)
    if _BRACKETED.search(form):
        derived.append(_BRACKETED.sub(" ", form))
    for pattern in (_PREFIXED, _KERBEROS, _BANG, _PERCENT_HACK):
        match = pattern.match(form)
        if match:
            derived.append(match.group(1))
    if "=" in form:
        derived += _rdn_values(form)
    return derived


@lru_cache(maxsize=4096)
def _spellings(name: str) -> tuple[str, ...]:
    """``name`` and every spelling it can stand for (``_derived``), percent-escapes decoded,
    in turn, until nothing new appears. Stops past MAX_SPELLINGS (the caller refuses such a
    name)."""
    found = dict.fromkeys((name, _decoded(name)))
    queue = list(found)
    while queue and len(found) <= MAX_SPELLINGS:
        for spelling in _derived(queue.pop(0)):
            spelling = spelling.strip().strip("\"'").strip()
            if spelling and spelling not in found:
                found[spelling] = None
                queue.append(spelling)
    return tuple(found)


def _words_key(form: str) -> str:
    """A name's words in alphabetical order: "Approver, Alice", "Alice Approver" and
    "Approver Alice" are one person's name."""
    words = "".join(ch if ch.isalnum() else " " for ch in _reading(form)).split()
    return "".join(sorted(_identity_key(word) for word in words))


@lru_cache(maxsize=4096)
def identity_keys(name: str) -> frozenset[str]:
    """The forms a name is compared under: from its skeleton, and from its case-folded form
    (the TR39 skeleton keeps case: "ALICE" and "alice" differ there); percent-escapes decoded
    as well as kept; an address ("bob@example.com") is also compared by its local part, as
    Odoo compares a user; and a name or local part also by its mailbox, without a
    sub-address or tag ("olga+approver@example.com", "olga+x", "olga#1" are olga). Every
    spelling the name can stand for (``_spellings``: "Alice <alice@x.org>", "ops\\alice",
    "CN=alice,OU=x", "alice (ops)") is compared the same way, and by its words in any order
    ("Approver, Alice"). Only the name's own keys may be empty (``check_identity``)."""
    keys = set(_own_keys(name))
    for spelling in _spellings(name):
        keys |= {key for key in (*_form_keys(spelling), _words_key(spelling)) if key}
    return frozenset(keys)


def check_identity(name: object) -> str | None:
    """None for a name that can be compared (a principal or an approver), else a one-line
    reason: empty, too long, or with a control, format or invisible character."""
    if not isinstance(name, str):
        return f"a name must be a string, got {type(name).__name__}"
    if not name.strip():
        return "the name is empty"
    if len(name) > MAX_IDENTITY_LENGTH:
        return f"the name is {len(name)} characters long; at most {MAX_IDENTITY_LENGTH}"
    bad = find_unsafe(name)
    if bad is not None:
        return f"the name contains {bad!a}, a control, format or invisible character"
    if not all(identity_keys(name)):
        return "the name has no letter or digit of its own"
    if len(_spellings(name)) > MAX_SPELLINGS:
        return f"the name has more than {MAX_SPELLINGS} parts to compare; use the plain name"
    return None


# A decider's name (and a requester's principal, which is compared with it) is a plain name:
# letters and digits a person reads as such, of one script, and these separators. The letters
# are those of UTS #39's General Security Profile (Identifier_Status=Allowed, ICU's
# "recommended" set): the letters of the world's scripts in modern use. Left out of it, and
# so refused here rather than guessed at: symbols and enclosed or squared letters ("🅰"), and
# the letters of technical or obsolete use (IPA and phonetic letters, turned, reversed and
# small-capital forms: "ɐ", "ǝ", "ɔ", "ʙ"), which neither NFKC nor the TR39 skeleton take to
# the letter a person reads, so no folding of ours would be complete. Punctuation is refused
# but for these: routing decorations ("x!alice", "alice%x") and the like name alice at a
# host, and a blocklist of them would always miss one.
PLAIN_NAME_MARKS = frozenset(" .-_@+")
_PLAIN_LETTERS = _icu.SpoofChecker.getRecommendedUnicodeSet()
_ONE_SCRIPT = _icu.SpoofChecker()
_ONE_SCRIPT.setChecks(_icu.USpoofChecks.RESTRICTION_LEVEL)
# one script, or Latin with Han and Kana, Hangul or Bopomofo (how CJK names are written)
_ONE_SCRIPT.setRestrictionLevel(_icu.URestrictionLevel.HIGHLY_RESTRICTIVE)


def _char_name(ch: str) -> str:
    return f"{ch!a} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"


def plain_name_problem(name: str) -> str | None:
    """Why ``name`` (after a known transport prefix, width folded: "ＡＬＩＣＥ" is "ALICE") is
    not a plain name, naming the first character at fault, or None."""
    form = unicodedata.normalize("NFKC", name.strip())
    while True:
        prefix = next((p for p in TRANSPORT_PREFIXES if form.casefold().startswith(p)), None)
        if prefix is None:
            break
        form = form[len(prefix) :].strip()
    allowed = "letters and digits of one script, a space and . - _ @ +"
    for ch in form:
        if ch not in PLAIN_NAME_MARKS and not _PLAIN_LETTERS.contains(ch):
            return f"the name contains {_char_name(ch)}; a name is {allowed}: use the plain name"
    if _ONE_SCRIPT.check(form):
        first = next((ch for ch in form if ch.isalpha()), "")
        script = _icu.Script.getScript(ord(first)).getName() if first else ""
        other = next(
            (
                ch
                for ch in form
                if ch.isalpha() and _icu.Script.getScript(ord(ch)).getName() != script
            ),
            first,
        )
        return (
            f"the name mixes scripts ({_char_name(other)} after {script} letters); "
            f"a name is {allowed}: use the plain name"
        )
    return None


def check_approver(name: object) -> str | None:
    """``check_identity``, and a person's name: a colon only after a transport prefix, so
    that "x:alice" is not a way for alice to sign as someone else."""
    problem = check_identity(name)
    if problem is not None:
        return problem
    assert isinstance(name, str)
    form = _reading(name.strip())  # "：" and "∶" are colons too
    prefix = next((p for p in _PREFIX_FORMS if form.startswith(p)), "")
    if ":" in form[len(prefix) :]:
        known = ", ".join(TRANSPORT_PREFIXES)
        return f"the name has a prefix that is not a transport's ({known}): use the plain name"
    return None


def check_decider(name: object) -> str | None:
    """``check_approver``, and a plain name (``plain_name_problem``): no symbol, routing
    decoration, look-alike letter or mix of scripts ("x!alice", "alice%x", "🅰lice", "ɐlıɔǝ",
    "аlice" with a Cyrillic а). For a name typed to decide a request (the embedded store's
    CLI, where the name is all there is of the decider) and for the principals whose requests
    such names decide (a token's, MCP_GUARD_PRINCIPAL, stdio:<OS user>). In Odoo a decider is
    a user, bound to the principals it claims; its names are compared by ``same_person``."""
    return check_approver(name) or plain_name_problem(str(name))


def _own_keys(name: str) -> frozenset[str]:
    return frozenset(_form_keys(name) | _form_keys(_decoded(name)))


def listed_form(name: str) -> str:
    """The one form a listed name (an approver under ``approvers``, a person under ``people``)
    is matched in: width and case folded (NFKC, casefold), nothing else. "ＡＬＩＣＥ" and
    "Alice" are the listed "alice"; "alice/ops", "Ms Alice", "alice_laptop" are not."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name.strip()).casefold())


def is_listed(name: str, listed: str) -> bool:
    """Whether ``name`` is the person a list names as ``listed`` (a policy's approvers):
    exactly, width and case folded at most (``principal_key``, the form ``people`` is matched
    in too), never through another spelling
    (the comment of "mallory (carol)" does not make mallory carol; "carol/admin" is not
    carol). ``same_person`` is for refusing; this is for admitting."""
    for each in (name, listed):
        problem = check_identity(each)
        if problem is not None:
            raise IdentityError(f"{shown(each)!r}: {problem}")
    return principal_key(name) == principal_key(listed)


def principal_form(principal: str) -> str:
    """A principal as ``people`` lists it: exactly, without the transport prefixes the guard
    gives names (``stdio:alice`` and ``http:alice`` are ``alice``)."""
    form = principal.strip()
    while True:
        prefix = next((p for p in TRANSPORT_PREFIXES if form.startswith(p)), None)
        if prefix is None:
            return form
        form = form[len(prefix) :].strip()


def principal_key(name: str) -> str:
    """THE one form a name is compared with ``people`` and ``approvers`` in: width and case
    folded (``listed_form``), without the transport prefixes the guard gives names (in any
    width or case: "ＳＴＤＩＯ：alice" is "alice"). "ALICE-LAPTOP" is the listed "alice-laptop"."""
    return listed_form(principal_form(listed_form(name)))


def persons_listing(principal: str, people: dict[str, list[str]]) -> frozenset[str]:
    """The persons of ``people`` ({person: [principals]}, a policy's) whose list has
    ``principal`` (``principal_key`` on both sides), each as ``listed_form``; empty: nobody
    is declared for it."""
    form = principal_key(principal)
    return frozenset(
        listed_form(person)
        for person, listed in people.items()
        if form in map(principal_key, listed)
    )


def person_of(principal: str, people: dict[str, list[str]]) -> str | None:
    """The one person whose list has ``principal`` (``persons_listing``), or None: nobody, or
    more than one (which cannot be told apart)."""
    found = persons_listing(principal, people)
    return next(iter(found)) if len(found) == 1 else None


def requester_persons(principal: str, people: dict[str, list[str]]) -> frozenset[str]:
    """Who a requester is by ``people``: every person whose list has the principal, and the
    person of that name, if any lists it; empty when no person lists it (nobody can decide
    its requests: fail closed). Recorded on the request when the guard files it."""
    listing = persons_listing(principal, people)
    if not listing:
        return frozenset()
    form = principal_key(principal)
    return listing | {listed_form(p) for p in people if principal_key(p) == form}


def persons_of(name: str, people: dict[str, list[str]]) -> frozenset[str]:
    """Who a decider's name is by ``people``, in the one folded form (``principal_key``): every
    person of that name and every person whose principals list it; the name itself
    (``listed_form``) when nobody is declared for it (a person the policy lists only as an
    approver). More than one person: the name cannot be told apart (the caller refuses)."""
    form = principal_key(name)
    found = {listed_form(p) for p in people if principal_key(p) == form}
    found |= persons_listing(name, people)
    return frozenset(found or {listed_form(name)})


def frozen_electorate(
    members: list[str] | None, people: dict[str, list[str]] | None
) -> dict[str, object]:
    """Who may decide a request, as the policy in force says when it is filed, to be frozen on
    it (a --policy given at approval can then neither add a name to the group nor split one
    person into two votes): ``members``, the approver group's names as ``principal_key``,
    sorted (None: anyone but the requester decides); ``people``, the entries of the policy's
    ``people`` that say who those names are (every entry when anyone decides; None: no
    ``people``). ``persons_of`` a member gives the same persons on these entries as on all."""
    keys = None if members is None else sorted({principal_key(name) for name in members})
    kept: dict[str, list[str]] | None = None
    if people is not None:
        if members is None:
            kept = {person: list(listed) for person, listed in people.items()}
        else:
            theirs: set[str] = set()
            for name in members:
                theirs |= persons_of(name, people)
            kept = {
                person: list(listed)
                for person, listed in people.items()
                if listed_form(person) in theirs
            }
    return {"members": keys, "people": kept}


def is_member(name: str, members: list[str]) -> bool:
    """Whether ``name`` is one of ``members`` (``principal_key`` forms, as frozen by
    ``frozen_electorate``): width and case folded, nothing else (``is_listed``)."""
    return principal_key(name) in members


class IdentityError(ValueError):
    """A name that cannot be compared: it is refused, never guessed at."""


def same_person(first: str, second: str) -> bool:
    """THE comparison of two identities (requester and approver): as a person reads them,
    after a known transport prefix, on their TR39 skeleton, case and accents aside, and
    through every spelling either can stand for (``identity_keys``): any key of one equal to
    any key of the other is one person (fail closed).
    A name that is empty or unprintable raises IdentityError: it is not compared."""
    for name in (first, second):
        problem = check_identity(name)
        if problem is not None:
            raise IdentityError(f"{shown(name)!r}: {problem}")
    return first == second or bool(identity_keys(first) & identity_keys(second))
