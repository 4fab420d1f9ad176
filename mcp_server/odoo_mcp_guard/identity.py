"""Identities: who asked, who decides, and whether they are the same person.

ONE implementation for both halves: the front-end imports it, the Odoo add-on vendors this
file byte for byte (``make sync-core``; tests/test_policy_core.py checks the copies). So it
imports nothing but the standard library and ICU (``pyicu-wheels``, module ``icu``).
"""

from __future__ import annotations

import unicodedata

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
    # Spacing and punctuation do not tell people apart ("a.lice", "al ice").
    return "".join(ch for ch in form if ch.isalnum())


def _mailbox(local: str) -> str:
    """An address's local part without its sub-address: "olga+approver" is olga's mailbox
    (RFC 5233 "+tag"; "＋" and other look-alikes of "+" are read as one)."""
    form = _reading(local)
    return form.split("+", 1)[0] if "+" in form else local


def identity_keys(name: str) -> frozenset[str]:
    """The forms a name is compared under: from its skeleton, and from its case-folded form
    (the TR39 skeleton keeps case: "ALICE" and "alice" differ there); an address
    ("bob@example.com") is also compared by its local part, as Odoo compares a user, and by
    its mailbox: "olga+approver@example.com" is delivered to olga, who is that person."""
    keys = {_identity_key(name), _identity_key(_fold(name))}
    local, at, domain = _fold(name).rpartition("@")
    if at and local.strip() and domain.strip():
        keys |= {_identity_key(local), _identity_key(_fold(local))}
        mailbox = _identity_key(_mailbox(local))
        if mailbox:
            keys.add(mailbox)
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


class IdentityError(ValueError):
    """A name that cannot be compared: it is refused, never guessed at."""


def same_person(first: str, second: str) -> bool:
    """THE comparison of two identities (requester and approver): as a person reads them,
    after a known transport prefix, on their TR39 skeleton, case and accents aside.
    A name that is empty or unprintable raises IdentityError: it is not compared."""
    for name in (first, second):
        problem = check_identity(name)
        if problem is not None:
            raise IdentityError(f"{shown(name)!r}: {problem}")
    return first == second or bool(identity_keys(first) & identity_keys(second))
