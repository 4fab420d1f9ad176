"""The rules both halves must apply identically: the policy document (its bounds, its
validation with the JSON path and line of every fault, matching and the decision), tool and
server names, the arguments hash and secret redaction.

This file is vendored byte for byte into the Odoo add-on (``make sync-core`` copies it; a
test fails when the copies differ), so it imports the standard library only, and its sibling
``identity`` (vendored with it) for the TR39 skeleton of a key in a look-alike script.

- ``load_policy_text`` / ``check_policy``: a policy document, refused with one line per
  fault (duplicate keys, NaN/Infinity, huge numbers, unknown keys, values out of bounds).
- ``CompiledPolicy.decide``: the exact rule wins, then the longest glob, then the default;
  a risky tool (its class, the ``risk`` section) needs approval unless an exact rule names it.
- ``approval_terms``: who decides a rule's requests (``approval.approver_group``, default the
  MCP Guard Approver group), how many distinct approvers (``approval.quorum``, 1 to 10,
  default 1), and the hash of the rule an approval is bound to (a changed rule voids it).
- ``arguments_hash``: SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8)
  of the real arguments. Approvals are bound to it; it is never computed on redacted data.
- ``redact``: a copy for storage and display. Recursive through dicts, lists and strings
  holding JSON; a value under a secret-looking key (also the second item of a
  ``[key, value]`` pair in a list of pairs, and the ``value`` of a ``{"name": key, "value"}``
  object) is replaced by ``***``; in every other string, URL credentials (also
  ``user:pw@host`` without a scheme), secret ``key=value`` pairs (also ``'key' => value`` hash
  pairs, form- and percent-encoded, or separated by a tab or spaces; a key in another language
  or script, "Passwort", "пароль", "密码"), XML elements, command-line passwords
  and bearer tokens are replaced. Idempotent; never mutates its input.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import fnmatch
import functools
import hashlib
import html
import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from json.decoder import scanstring
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

from .identity import (
    check_decider,
    check_identity,
    frozen_electorate,
    listed_form,
    principal_form,
    principal_key,
    skeleton,
)

REDACTED = "***"
# Deeper than this, a value is replaced whole: bounded recursion, and nobody reads it anyway.
MAX_DEPTH = 64

# On the key with everything but letters and digits removed, lower case: "db_password",
# "X-Api-Key", "accessToken", "Authorization" ("author", "authority" are not secrets); 2FA
# recovery codes; "password" in other languages, spelled in ASCII ("Passwort", "mot_de_passe").
_SECRET_IN_KEY = re.compile(
    r"pass(?:word|wd|phrase|code)|secret|token|api_?key|credential|auth(?!or(?!i[sz]))"
    r"|priv(?:ate)?_?key|access_?key|session_?(?:id|key)|cookie|bearer"
    r"|ssh_?key|sign(?:ing)?_?key|encryption_?key|master_?key|totp|hotp"
    r"|(?:recovery|backup)_?(?:codes?|keys?)"
    r"|passwort|kennwort|motdepasse|contrasena|senha|wachtwoord|losenord|adgangskode"
    r"|salasana|lozinka|katasandi|matkhau|paroladordine"
    # outside round 33: Danish, Lithuanian, Catalan, Basque, Icelandic, Estonian; a passkey, a
    # PHP session, an XSRF cookie, "passwrd" (not a keystore's or a kubeconfig's path, nor a
    # "pem:" label, whose wrapped value the known-secret rule hides whole)
    r"|kodeord|slaptazodis|contrasenya|pasahitza|lykilord|parool|passkey|phpsessid|xsrf"
    r"|passwrd"
    r"|securitycode|cardcode|cardverification"
    # Azure connection strings ("AccountKey=", "SharedAccessKey="); an environment-style
    # "<service>PASS" ("DBPASS", "ROOTPASS", "SMTPPASS"; not "compass", "bypass", "overpass")
    r"|(?:account|sharedaccess)_?key"
    r"|^(?:db|root|admin|user|smtp|mail|sql|mysql|pg|postgres|redis|ldap|ftp|ssh|sudo|app"
    r"|login|odoo|master|api|web|proxy|vpn|wifi)pass(?:wd)?$",
)
# Short words that are secrets only as a whole word of the key: "pwd", "db_pass",
# "userPin" (not "compass", "bypass", "spinner"); "heslo" (not "the_slot"); "mdp" (French
# "mot de passe"), "clave" (Spanish; not "palabra_clave", a keyword); a card's CVV, CVC, CSC.
_SECRET_WORDS = frozenset(
    {"pwd", "pw", "psw", "pass", "passw", "pswd", "passwd", "pword", "pin", "otp", "jwt", "sig"}
    | {"mfa", "sid"}
    | {"2fa", "heslo", "haslo", "sifre", "passord", "jelszo", "geslo", "mdp", "clave"}
    | {"cvv", "cvv2", "cvc", "cvc2", "csc"}
    | {"pwds", "creds", "sandi", "hmac"}
)
# A word for a password numbered: "pw1", "db_pw2", "pass1", "pwd2" (outside round 32).
_NUMBERED_SECRET = re.compile(r"(?:pw|psw|pwd|pswd|pass|passw|passwd|pword)[0-9]+")
# Leet spellings, folded before the key is read again: "passw0rd", "p4ssw0rd", "P@ssw0rd",
# "pa$$word", "s3cr3t", "t0k3n" (a "1" once as "i", once as "l").
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "@": "a", "$": "s"}
_LEET_FOLDS = (str.maketrans({**_LEET, "1": "i"}), str.maketrans({**_LEET, "1": "l"}))
_LEET_CHARS = re.compile(r"[01345@$]")
# A key named for a key with a qualifier, its last word "key" or "keys": "client_key",
# "licenseKey", "consumer-key", "app_keys" (not the bare "key" that names the key of a
# {"key": ..., "value": ...} pair); not after the qualifiers of _KEY_NOT_SECRET_AFTER.
_KEY_WORDS = frozenset({"key", "keys"})
# Words after which a secret word is not one: "palabra_clave" (Spanish for keyword).
_NOT_SECRET_BEFORE = {"clave": "palabra"}
# Words that are secrets as the key's last word: "session", "odoo_session" (a session
# cookie's value), not "session_count"; "parola", "nuova_parola" (not "parola_chiave").
_SECRET_LAST_WORDS = frozenset({"session", "sessions", "parola", "parol"})
# Words that are secrets as the whole key: "private" (not "is_private", "private_email").
_SECRET_KEY_WORDS = frozenset({"private"})
# An environment variable's name (upper case, words joined by "_") whose last word names a
# key or credentials: "ODOO_KEY", "OPENAI_KEY", "ODOO_CREDS", "GH_PAT", "DB_PWD". Only in that
# shape: an Odoo field or a record's key in lower case ("sort_key", "key") is no secret, nor
# the upper-case name of a key that is not a credential ("SORT_KEY", "PRIMARY_KEY").
_ENV_SECRET = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:KEYS?|CREDS?|CREDENTIALS?|PAT|PWD)")
# The same in an HTTP header's name: "X-Functions-Key", "Ocp-Apim-Subscription-Key", "X-Odoo-Key"
# (not "Idempotency-Key", "Sec-WebSocket-Key").
_HEADER_SECRET = re.compile(r"(?i)[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-(?:KEY|CREDS?|CREDENTIALS?|PAT)")
_ENV_NOT_SECRET_BEFORE = frozenset(
    {"SORT", "PRIMARY", "FOREIGN", "PARTITION", "ROUTING", "CACHE", "IDEMPOTENCY", "UNIQUE"}
    | {"ORDER", "INDEX", "LOOKUP", "GROUP", "DEDUP", "SHARD", "PUBLIC", "MAP", "ROW", "RANGE"}
    | {"CLUSTER", "COMPOSITE", "NATURAL", "SURROGATE", "JOIN", "HOT", "DICT", "WEBSOCKET"}
    | {"PUBLISHABLE", "OBJECT", "BY", "TRANSLATION"}
)
# The same qualifiers before a key's last word "key", in lower case: "sort_key", "primaryKey",
# "public-key", "Sec-WebSocket-Key" are names, not secrets.
_KEY_NOT_SECRET_AFTER = frozenset(word.lower() for word in _ENV_NOT_SECRET_BEFORE)
# "password" in other scripts and spellings, on the key case-folded with everything but
# letters and digits removed ("ПАРОЛЬ", "contraseña", "密码"); a Cyrillic or Greek word also
# as its TR39 skeleton, for a key written with Latin look-alikes ("пaроль" with a Latin a).
_NON_WORD = re.compile(r"[\W_]+")
_SCRIPT_WORDS = (
    "contraseña", "hasło", "şifre", "lösenord", "jelszó", "parolă", "mậtkhẩu",
    "парол", "лозинк", "κωδικόςπρόσβασης", "συνθηματικό", "סיסמה", "סיסמא", "كلمةالمرور",
    "كلمةالسر",
    "رمزعبور", "पासवर्ड", "รหัสผ่าน", "密码", "密碼", "口令", "密钥", "密鑰", "秘钥",
    "パスワード", "暗証番号", "秘密鍵", "비밀번호", "패스워드",
    "гасло", "slaptažodis", "lykilorð", "秘密", "토큰", "비번", "アクセスキー", "トークン",
)  # fmt: skip
_SECRET_IN_SCRIPT = re.compile(
    "|".join(
        re.escape(_NON_WORD.sub("", form))
        for word in map(str.casefold, _SCRIPT_WORDS)
        for form in (
            (word, skeleton(word)) if any("\u0370" <= ch <= "\u04ff" for ch in word) else (word,)
        )
    )
)
# Words for "password" that are secrets only as the key's last word: Greek "κωδικός" ("νέος
# κωδικός"; "κωδικός_προϊόντος" is a product code), case-folded.
_SCRIPT_LAST_WORDS = frozenset({"κωδικόσ", "κωδικοσ"})
# Format characters ignored inside a key or a keyword ("pass\u200bword").
_FORMAT_CHARS = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Letters a key in text may be written with: ASCII, and the Latin, Greek, Cyrillic and
# Armenian blocks whose look-alikes ("pаssword" with a Cyrillic а) read as a secret key; the
# Vietnamese Latin letters, Hebrew, Arabic, Devanagari, Thai, kana, CJK and Hangul, whose
# words for "password" are secret keys too ("mật_khẩu=…", "密码: …").
# (Compatibility forms, "ＰＡＳＳＷＯＲＤ", are read through the text's NFKC form.)
_L = (
    "A-Za-z\u00c0-\u024f\u0370-\u058f\u1e00-\u1eff\u0590-\u06ff\u0900-\u097f"
    "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
)

# scheme://userinfo@host, or scheme-relative //userinfo@host: the userinfo runs to the last
# "@" before the path.
_URL_USERINFO = re.compile(
    r"(?i)((?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://|(?<![a-z0-9+.\-:/])//)([^\s/?#]*)@"
)
# A special scheme (http, https, ws, wss, ftp) as a WHATWG URL parser (a browser) reads it:
# any number of "/" or "\\" after the colon, none at all too ("https:/user:pw@host",
# "https:\\\\user:pw@host", "https:user:pw@host"), the authority ending at "/", "\\", "?"
# or "#", its userinfo before the last "@".
_SPECIAL_SCHEMES = ("http", "https", "ws", "wss", "ftp")
_SPECIAL_USERINFO = re.compile(
    r"(?i)((?<![a-z0-9+.\-])(?:" + "|".join(_SPECIAL_SCHEMES) + r"):[/\\]*)([^\s/\\?#]*)@"
)
# The same URL as a looser reader takes it (curl of old, a person reading "http://u:Pa/ss@h"):
# the userinfo runs to the last "@" of the URL that a host follows, whatever "/", "?", "#" or
# "\\" come before it; its password (after the first ":") is hidden. Only when both readings
# differ (the span holds one of those characters) and there is a password to hide.
_LOOSE_PREFIX = re.compile(
    r"(?i)(?<![a-z0-9+.\-])(?:[a-z][a-z0-9+.\-]*:[/\\]+|(?:"
    + "|".join(_SPECIAL_SCHEMES)
    + r"):)|(?<![a-z0-9+.\-:/\\])//"
)
_LOOSE_USERINFO = re.compile(r"([^\s\"'<>]*)@(?=[A-Za-z0-9\[])")
# A word holding percent-encoded (or form-encoded, "+" for a space) text: decoded, redacted
# and encoded again when the decoded text shows a secret ("http%3A%2F%2Fu%3Apw%40h",
# "Bearer%20X", "Bearer+X", "password%253DX"). Split at a query's literal delimiters.
# (Words and parts are matched whole, then looked into: a pattern that must find "%" inside
# a word would rescan a long word from every position.)
_ENCODED_WORD = re.compile(r"[^\s\"'<>]+")
_ENCODED_PART = re.compile(r"[^=&;?#]+")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# A query or fragment parameter of a URL ("?X-Amz-Signature=...", "&key=..."): its value is
# hidden when its key is a secret one (is_secret_query_key).
_QUERY_PAIR = re.compile(r"(?<=[?&;#])([^\s=&;#?\"'<>]{1,128})=([^\s&;#\"'<>]+)")
# Words that make a URL parameter's key a secret one besides is_secret_key: an API key
# ("?key=", "?license_key="), a signature ("X-Amz-Signature", "X-Goog-Signature", "hmac").
_SECRET_QUERY_WORDS = frozenset({"key", "signature", "sig", "hmac", "apikey"})
# "key" followed by = or :, optionally with the key quoted (also with an escaped quote, as
# in JSON inside a string); the value is checked apart.
# The key may be form-encoded ("user[password]", "user%5Bpassword%5D"), the separator
# percent-encoded ("access_token%3D..."), or a tab or several spaces ("password<TAB>X").
# Quotes and separators may also be HTML character references, in HTML-escaped JSON or a
# form echoed in a page ("&quot;password&quot;: &quot;X&quot;", "password&#61;X").
# A space other than ASCII's ("password\u3000X", "password\u00a0X"): a separator alone, as a tab.
# An "@" or "$" inside the key is part of it: "P@ssw0rd=X", "pa$$word=X" (leet spellings). A
# key begins after no "@", and after a "$", "[" or "]" only when no key character comes before
# it ("$password = X", "[password]: X"): a long word is not rescanned from each of them.
_WIDE_SPACE = "[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
_ENTITY_QUOTE = r"&(?:quot|apos|#0*3[49]|#[xX]0*2[27]);"
_ENTITY_SEPARATOR = r"&#0*61;|&#[xX]0*3[dD];|&equals;|&#0*58;|&#[xX]0*3[aA];|&colon;"
_PAIR = re.compile(
    rf"(?<![{_L}0-9_.\-@])(?<![{_L}0-9_.\-\[\]@$][\[\]$])([{_L}_][{_L}0-9_.\-\[\]@$]*(?:%(?!3[dD])[0-9A-Fa-f]{{2}}[{_L}0-9_.\-\[\]@$]*)*)"
    rf"""((?:\\?["']|{_ENTITY_QUOTE})?"""
    rf"""(?:[ \t]*(?:=>|:=|={{1,3}}|:|%3[dD]|{_ENTITY_SEPARATOR})[ \t]*|(?: *\t| {{2}})[ \t]*"""
    rf"""|[ \t]*{_WIDE_SPACE}[ \t{_WIDE_SPACE[1:-1]}]*))"""
)
# An HTTP header written without its colon ("X-API-KEY abc123"): a hyphenated key, one space
# and a value that is not a plain word ("the X-API-KEY header" is prose).
_HEADER_WORDS = re.compile(rf"(?<![{_L}0-9_.\-])([{_L}][{_L}0-9]*(?:-[{_L}0-9]+)+) (?=\S)")
_PLAIN_WORD = re.compile(r"[a-z]{1,15}|[A-Z][a-z]{1,15}")
# An XML element holding a secret ("<password>X</password>", '<field name="password">X'), or
# an XML-RPC struct member ("<member><name>password</name><value><string>X"): the text
# after its opening tags is replaced.
_XML = re.compile(
    r"<(?:name>\s{0,64}(?P<name>[^<>]{1,128}?)\s{0,64}</name"
    rf"|(?P<tag>[{_L}_][{_L}0-9_.\-:]{{0,127}})(?P<attrs>\s[^<>]{{0,1024}}?)?(?P<empty>/)?)>"
)
_XML_TEXT = re.compile(r"(?:\s{0,64}<[A-Za-z][^<>]{0,1024}(?<!/)>){0,8}?\s{0,64}([^<\s][^<]*)")
_XML_FIELD_TEXT = re.compile(r"\s{0,64}([^<\s][^<]*)</([^<>\s]{1,128})\s{0,64}>")
_XML_NAME_ATTR = re.compile(
    r"""(?<![\w\-])(?:name|id)\s*=\s*(?:["']([^"'<>]{1,128})["']|([^\s"'<>=/`]{1,128}))"""
)
# An HTML password input ('<input type=password value="X">'), its type quoted or not.
_XML_PASSWORD_TYPE = re.compile(r"""(?i)(?<![\w\-])type\s*=\s*["']?password(?![\w\-])""")
_XML_VALUE_ATTR = re.compile(
    r"""((?<![\w\-])value\s*=\s*)("[^"<>]*"|'[^'<>]*'|[^\s"'<>=`]+(?<!/))"""
)
# user:password@host without a scheme or "//" (a DSN, "odoo:pw@db:5432"); the password runs
# to the last "@" of the word. Not a mailto:, sip:, xmpp:, tel: address, nor a special
# scheme's URL ("https:user:pw@host": _SPECIAL_USERINFO keeps its user).
_BARE_USERINFO = re.compile(
    r"(?<![\w.+\-%:/@~])(?!(?i:mailto|sips?|xmpp|tel|news|im|pres|https?|wss?|ftp):)"
    r"([A-Za-z_][\w.+\-%~]{0,127}):([^\s/@\"'<>]{1,256}(?:@[^\s/@\"'<>]{1,256})*)"
    r"@(?=[A-Za-z0-9\[])"
)
# Commands that take a password in a short option, on the line that runs them: curl's
# -u/--user user:password (the user is kept), mysql's attached -pX ("-p X" asks for it),
# sshpass -p X, redis-cli -a X, odoo-bin's -w X (its database password; "-p" is its port),
# docker/podman login -p X (not "docker run -p 8080:80"), ldapsearch (ldapmodify...) -w X,
# zip/unzip -P X, 7z's attached -pX, smbclient -U user%password, httpie's -a user:password.
_COMMANDS = ("curl", "sshpass", "redis-cli", "mysql", "mariadb", "odoo", "login", "ldap", "zip")
_COMMANDS += ("7z", "smbclient", "http")
_SHELL = re.compile(
    r"(?P<nl>\n)"
    r"|(?<![\w.\-])(?P<cmd>curl|sshpass|redis-cli|mysql[a-z]*|mariadb[a-z\-]*"
    r"|odoo(?:-bin|[0-9]+)?|(?:docker|podman|nerdctl)[ \t]+login|ldap[a-z]+|(?:un)?zip|7z[arz]?"
    r"|smbclient|https?(?![:/]))(?![\w.\-])"
    r"|(?<![\w\-])(?:(?P<long>--user|--proxy-user)(?:=|[ \t]+)"
    r"|(?P<short>-[uUpawP])(?P<spaced>[ \t]+)?)(?=[^\s\-])"
)
# The short option that gives each command's password (curl's -u/-U hold user:password).
_PASSWORD_FLAG = {"sshpass": "-p", "redis-cli": "-a", "odoo": "-w", "zip": "-P", "unzip": "-P"}
# Commands whose option holds user<separator>password: the user is kept.
_USERINFO_FLAGS = {
    "curl": (("-u", "-U", "--user", "--proxy-user"), ":"),
    "smbclient": (("-U", "--user"), "%"),
    "http": (("-a",), ":"),
    "https": (("-a",), ":"),
}
# Options named for a password that is_secret_key does not read as one (keytool's).
_SECRET_OPTIONS = frozenset(
    {"storepass", "keypass", "srcstorepass", "deststorepass", "srckeypass", "destkeypass"}
)
# Windows' "net use \\\\server\\share PASSWORD /user:bob" (a drive letter before the share
# or not; "*" asks for it, an option is none).
_NET_USE = re.compile(
    r"(?i)(?<![\w.\-])(net[ \t]+use[ \t]+(?:[a-z]:[ \t]+)?"
    r"\\{2,4}[^\s\\]+(?:\\{1,2}[^\s\\]+)*[ \t]+)(?!\*(?!\S))([^\s/]\S*)"
)
# A command-line option and its value: "--password X", "-p=X", "--api-key X".
_OPTION = re.compile(r"(?<![A-Za-z0-9_\-])--?([A-Za-z][A-Za-z0-9_\-]*)(=|[ \t]+)(?=[^\s\-])")
# A PEM block ("-----BEGIN ... PRIVATE KEY-----"): replaced whole, to its END line or, when
# cut short, to the end of the text.
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,64}-----(?:(?!-----END )[\s\S]){0,65536}?"
    r"(?:-----END [A-Z0-9 ]{0,64}-----|\Z)"
)
# A quoted value (bounded, closing quote optional: never a quadratic scan; also quoted with
# escaped quotes), a PEM block, or a bare one, with an optional authorization scheme
# ("Bearer abc", "Basic dXNlcg==").
_VALUE = re.compile(
    r'''"""[\s\S]{0,4096}?(?:"""|\Z)|\'\'\'[\s\S]{0,4096}?(?:\'\'\'|\Z)|'''
    rf"""{_ENTITY_QUOTE}(?:(?!{_ENTITY_QUOTE})[^\n]){{0,4096}}(?:{_ENTITY_QUOTE})?|"""
    r"""\\"(?:[^"\\\n]|\\[^"\n]){0,4096}(?:\\")?"""
    r"""|"(?:[^"\\\n]|\\.){0,4096}"?|'[^'\n]{0,4096}'?"""
    r"""|-----BEGIN [A-Z0-9 ]{0,64}-----(?:(?!-----END )[\s\S]){0,65536}?"""
    r"""(?:-----END [A-Z0-9 ]{0,64}-----|\Z)"""
    r"""|(?i:(?:bearer|basic|token|digest)[ \t]+)?[^\s"'&,;)}\]\\]+"""
)
_ENTITY_QUOTE_RE = re.compile(_ENTITY_QUOTE)
# A YAML block scalar's header ("|", ">-", "|2+"), then only spaces or a comment to the line end.
_YAML_BLOCK = re.compile(r"[|>](?:[1-9][+\-]?|[+\-][1-9]?)?")
_YAML_LINE_END = re.compile(r"[ \t]*(?:#[^\n]*)?\n")
_MAX_PASSES = 8
_BEARER = re.compile(r"(?i)\b(bearer)[ \t]+[A-Za-z0-9\-._~+/]+=*")
# Secrets whose shape gives them away wherever they stand: GitHub tokens, AWS access key ids,
# JWTs (three base64url parts, the first a JSON object: "eyJ"), "sk-" API keys (a run of 20
# token characters after it: "task-list", "sk-learn", "sk-lang-detect" are words), Stripe keys.
_TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:"
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"
    r"|sk-(?:[A-Za-z0-9]{1,16}-){0,3}[A-Za-z0-9_]{20,}[A-Za-z0-9_\-]*"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
    # Slack tokens, GitLab personal access tokens, Google API keys, SendGrid API keys
    r"|xox[abposre]-[A-Za-z0-9\-]{10,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|AIza[A-Za-z0-9_\-]{30,}|SG\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
    # PyPI, Hugging Face, Google OAuth access, Shopify, DigitalOcean and npm tokens
    r"|pypi-AgE[A-Za-z0-9_\-]{20,}|hf_[A-Za-z0-9]{30,}|ya29\.[A-Za-z0-9_\-]{20,}"
    r"|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])|do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])"
    r"|npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"
    r")"
)
# A secret in a URL's path: a Slack webhook's last segment, a Telegram bot's token after its
# id (the part kept before it).
_PATH_TOKEN = re.compile(
    r"(?i)(hooks\.slack\.com/services/[A-Z0-9]{1,32}/[A-Z0-9]{1,32}/)[A-Za-z0-9]{8,}"
    r"|(api\.telegram\.org/(?:file/)?bot[0-9]{3,16}:)[A-Za-z0-9_\-]{8,}"
)
# A secret told in prose after a secret key (is_secret_key, also in two or three words: "mot
# de passe", "api key"): "the password is X", "your API key was: X", "la contraseña es X",
# "password X", "password\nX", "password(\"X\")". Not when the value is a plain word ("the
# password is incorrect", "token expired"); after a space alone, only a value that looks like
# a secret (_looks_secret: "password reset for admin" is prose).
_PROSE = re.compile(
    rf"(?<![{_L}0-9_\-])(?P<key>(?i:mot\s+de\s+passe|(?:api|secret|private|access)\s+key"
    rf"|(?:access|auth|bearer|api|refresh)\s+token)(?P<phrase>[ \t]*[:=])?|[{_L}_][{_L}0-9_\-]*)"
    r"(?:(?P<call>\((?=[\"']))"
    r"|(?(phrase)[ \t]*|\s+(?P<said>(?i:is|was|es|est|ist)(?=[\s:])\s*:?\s*)?))"
    r"[(\[]?(?=[^\s:=])"
)
# A key=value pair that follows a secret key ('<input type=password value="X">') is no value.
_NEXT_PAIR = re.compile(r"[A-Za-z_][\w.\-]*[=:](?![=:\s]|$)")
# An e-mail address, a URL or a variable's name after a secret key ("reset password
# alice@example.com", "set an API key (ODOO_API_KEY)", "the token reset_token") is no value.
_ADDRESS = re.compile(
    r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+$|(?i:[a-z][a-z0-9+.\-]*://)"
    r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|[a-z]+(?:_[a-z]+)+$"
)
# Characters that mark a word as a secret rather than prose after a secret key.
_SECRET_SYMBOLS = re.compile(r"[!#$%^&*+=~/\\|_]")
# HTTP Basic credentials without their header ("Basic dXNlcjpwdw=="): base64 of "user:password".
# Any other token after "Basic" that looks like a secret (_looks_secret; "Basic usage" is prose).
_BASIC = re.compile(r"""(?<![\w\-])(Basic[ \t]+)([^\s"'<>,;)\]}]{4,})""")
# A data: URI in base64 ("data:text/plain;base64,cGFzc3dvcmQ9..."): its bytes are judged.
_DATA_URI = re.compile(
    r"(?i)(?<![\w\-])(data:[\w.+\-/]*(?:;[\w.+\-]+=[^;,\s\"'<>]*)*;base64,)([A-Za-z0-9+/_\-]+={0,2})"
)
# A modular-crypt password hash ("$apr1$...", "$2y$...", "$6$...", passlib's "$pbkdf2-sha512$"),
# alone or after its user, as in an htpasswd or shadow line ("admin:$apr1$..."): the user kept.
_CRYPT_HASH = re.compile(
    r"(?:(?<![\w.\-$@])(?P<user>[\w.\-@]{1,128}):|(?<![\w$]))"
    r"\$(?:apr1|2[abxy]?|1|5|6|y|gy|7|argon2(?:id|i|d)|pbkdf2(?:-sha\d{1,3})?|scrypt)"
    r"\$[./A-Za-z0-9+=,$\-]{8,}"
)
# An LDAP or htpasswd hash with its scheme ("{SHA}W6ph...=", "{SSHA512}...", "{PBKDF2-SHA256}..."),
# alone or after its user ("admin:{SHA}..."): the user kept, the scheme hidden with the hash.
_SCHEME_HASH = re.compile(
    r"(?:(?<![\w.\-$@])(?P<user>[\w.\-@]{1,128}):|(?<![\w}]))"
    r"(?i:\{(?:S?SHA(?:1|224|256|384|512)?|S?MD5|CRYPT|PBKDF2(?:-SHA\d{1,3})?|ARGON2\w{0,2})\})"
    r"[./A-Za-z0-9+=$\-]{8,}"
)
# SQL's password literal: "CREATE ROLE odoo LOGIN PASSWORD 'x'", "WITH ENCRYPTED PASSWORD 'x'",
# MySQL's "IDENTIFIED BY 'x'" (quoted: the prose "password reset" is not).
_SQL_PASSWORD = re.compile(
    r"(?i)(?<![\w\-])((?:password|identified[ \t]+by)[ \t]+)'(?:[^'\n]|''){0,4096}'?"
)
# A .pgpass line, host:port:database:user:password (the port digits or "*"; a ":" or "\\" in a
# field escaped with "\\"): exactly five fields, so a MAC or IPv6 address or a time is not one.
_PGPASS_FIELD = r"(?:[^\s:\\\"']|\\.)+"
_PGPASS = re.compile(
    rf"(?<![\w.:\-\\/])([\w.\-*]+:(?:\d{{1,5}}|\*):{_PGPASS_FIELD}:{_PGPASS_FIELD}:)"
    rf"({_PGPASS_FIELD})(?![^\s\"',;)\]}}<>])"
)
# A .netrc entry's password: "machine h login u password X" (also across lines), "default
# login u password X" ("the default password is" is prose: a login must come first there).
_NETRC = re.compile(
    r"(?<![\w\-])(?:machine[ \t\n]+\S+(?:[ \t\n]+(?:login|account|port)[ \t\n]+\S+)*"
    r"|default(?:[ \t\n]+(?:login|account|port)[ \t\n]+\S+)+)[ \t\n]+password[ \t\n]+(\S+)"
)
# A quoted pair in a tuple or list written as text: "('password', 'x')", '["token", "x"]'.
_TUPLE_PAIR = re.compile(
    r"""[(\[][ \t]{0,64}(["'])([^"'\n]{1,128})\1[ \t]{0,64},[ \t]{0,64}(?=["'])"""
)


# A quoted string literal in code (bounded, on one line; also in JSON, quoted '\\"'), and an
# argument before the one looked for: a literal, a name ("db", "self.uid", "cfg['db']",
# "int(uid)") or a number.
_LITERAL = (
    r"""(?:\\"(?:[^"\\\n]|\\[^"\n]){0,1024}\\"|"(?:[^"\\\n]|\\.){0,1024}"|"""
    r"""'(?:[^'\\\n]|\\.){0,1024}')"""
)
_ARGUMENT = rf"(?:{_LITERAL}|[\w.]{{1,128}}(?:\[[^\]\n]{{0,128}}\]|\([^()\n]{{0,128}}\))*)"
# Odoo's external API: the password is the third positional argument of
# "execute_kw(db, uid, 'PW', ...)", "login(db, 'admin', 'PW')",
# "authenticate(db, 'admin', 'PW', {})"; the second of "login('admin', 'PW')". An HTTP client's
# auth object, "HTTPBasicAuth('admin', 'PW')", "aiohttp.BasicAuth('admin', 'PW')": the second.
_CALL_PASSWORD = re.compile(
    rf"(?<![\w])(?:(?:execute_kw|execute|login|authenticate)\([ \t]*{_ARGUMENT}[ \t]*,"
    rf"[ \t]*{_ARGUMENT}[ \t]*,[ \t]*(?={_LITERAL}[ \t]*[,)])"
    rf"|(?:login|\w*(?i:auth))\([ \t]*{_ARGUMENT}[ \t]*,[ \t]*(?={_LITERAL}[ \t]*\)))"
)
# The same call written as JSON-RPC data ('"method": "execute_kw", "args": ["db", 2, "PW"'): the
# third item of "args" in a text that names one of those methods.
_RPC_ARGS = re.compile(
    rf"""(\\?["']args\\?["'][ \t]*:[ \t]*\[[ \t]*{_ARGUMENT}[ \t]*,[ \t]*{_ARGUMENT}[ \t]*,"""
    rf"[ \t]*)(?={_LITERAL})"
)
_RPC_METHOD = re.compile(r"""(?<![\w])(?:execute_kw|execute|login|authenticate)\\?["']""")
# The calls _CALL_PASSWORD reads with two arguments or more, as _hide_prose finds them.
_CALL_NAMES = re.compile(r"(?i)execute_kw|execute|login|authenticate|\w*auth")
_CALL_TAIL = re.compile(rf"[ \t]*{_ARGUMENT}[ \t]*,")
# A tuple or list of literals after a secret key: "auth=('admin', 'PW')", '"auth": ["a", "PW"]'.
_SEQUENCE = re.compile(
    rf"[(\[][ \t]{{0,64}}(?:{_LITERAL}[ \t]{{0,64}},[ \t]{{0,64}}){{0,15}}{_LITERAL}"
    r"[ \t]{0,64},?[ \t]{0,64}[)\]]"
)
_LITERAL_RE = re.compile(_LITERAL)


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-ASCII kept (hash it as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def arguments_hash(arguments: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a call's arguments (the RPC contract)."""
    return hashlib.sha256(canonical_bytes(arguments)).hexdigest()


def is_secret_key(key: object) -> bool:
    """True if a value under this key is to be treated as a secret (percent-encoding and
    compatibility forms first: "user%5Bpassword%5D" is "user[password]", "ＰＡＳＳＷＯＲＤ" is
    "PASSWORD"; a key in look-alike letters is read as its TR39 skeleton: "pаssword" with a
    Cyrillic а is "password")."""
    return _is_secret_text(str(key))


@functools.lru_cache(maxsize=4096)  # the same words come again and again in a text
def _is_secret_text(text: str) -> bool:
    text = unicodedata.normalize("NFKC", unquote(text) if "%" in text else text)
    text = _FORMAT_CHARS.sub("", text)
    if text.isascii():
        return _secret_words(text)
    return _secret_words(text) or _secret_words(skeleton(text)) or _in_script(text.casefold())


def _in_script(folded: str) -> bool:
    """A case-folded key holds "password" in another script, or its look-alike skeleton."""
    words = _NON_WORD.split(folded.strip("_ "))
    if words[-1] in _SCRIPT_LAST_WORDS:
        return True
    return any(
        _SECRET_IN_SCRIPT.search(_NON_WORD.sub("", form)) for form in (folded, skeleton(folded))
    )


def _secret_words(text: str) -> bool:
    lowered = text.lower()
    if _SECRET_IN_KEY.search(_NON_ALNUM.sub("", lowered)):
        return True
    if _LEET_CHARS.search(lowered) and any(
        _SECRET_IN_KEY.search(_NON_ALNUM.sub("", lowered.translate(fold))) for fold in _LEET_FOLDS
    ):
        return True
    for shape, joint in ((_ENV_SECRET, "_"), (_HEADER_SECRET, "-")):
        if shape.fullmatch(text) and text.split(joint)[-2].upper() not in _ENV_NOT_SECRET_BEFORE:
            return True
    words = [w for w in _NON_ALNUM.split(_CAMEL.sub(r"\1_\2", text).lower()) if w]
    return any(
        (word in _SECRET_WORDS and (i == 0 or words[i - 1] != _NOT_SECRET_BEFORE.get(word)))
        or _NUMBERED_SECRET.fullmatch(word) is not None
        for i, word in enumerate(words)
    ) or (
        bool(words)
        and (
            words[-1] in _SECRET_LAST_WORDS
            or (len(words) == 1 and words[0] in _SECRET_KEY_WORDS)
            or _qualified_key(words)
        )
    )


def _qualified_key(words: list[str]) -> bool:
    """A key's words end in "key" after a qualifier that does not make it a name: "client_key",
    "license_key" ("Sec-WebSocket-Key": its qualifier is "websocket", two words in camel case)."""
    if len(words) < 2 or words[-1] not in _KEY_WORDS:
        return False
    qualifiers = {words[-2]} | ({words[-3] + words[-2]} if len(words) > 2 else set())
    return qualifiers.isdisjoint(_KEY_NOT_SECRET_AFTER)


def is_secret_query_key(key: object) -> bool:
    """True if a URL query or fragment parameter of this name carries a secret: a secret key
    (is_secret_key), or a key, signature or HMAC ("key", "X-Amz-Signature", "sig")."""
    text = unicodedata.normalize("NFKC", unquote(str(key)))
    if _is_secret_text(text):
        return True
    words = [w for w in _NON_ALNUM.split(_CAMEL.sub(r"\1_\2", text).lower()) if w]
    return any(word in _SECRET_QUERY_WORDS for word in words)


def _hide_query_value(match: re.Match[str]) -> str:
    if match.group(2) == REDACTED or not is_secret_query_key(match.group(1)):
        return match.group(0)
    return match.group(1) + "=" + REDACTED


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match.group(2).partition(":")
    # "user:password@" keeps the user; a lone "token@" may itself be the secret
    return match.group(1) + (user + ":" + REDACTED if colon else REDACTED) + "@"


def _hide_loose_userinfo(match: re.Match[str]) -> str:
    """In one word holding an "@": from its first URL's scheme (or "//") to the word's last
    "@" a host follows. One look per word: a long word is not rescanned from every scheme."""
    word = match.group()
    if "@" not in word:
        return word
    prefix = _LOOSE_PREFIX.search(word)
    userinfo = None if prefix is None else _LOOSE_USERINFO.match(word, prefix.end())
    if userinfo is None:
        return word
    span = userinfo.group(1)
    user, colon, password = span.partition(":")
    if not colon or password == REDACTED or not any(ch in span for ch in "/?#\\"):
        return word
    return word[: prefix.end()] + user + ":" + REDACTED + "@" + word[userinfo.end() :]


def _redact_encoded(text: str) -> str:
    return _ENCODED_WORD.sub(_hide_encoded_word, text)


def _hide_encoded_word(match: re.Match[str]) -> str:
    word = match.group()
    if "+" not in word and "%" not in word:
        return word
    return _ENCODED_PART.sub(_hide_encoded, word)


def _hide_encoded(match: re.Match[str]) -> str:
    part = match.group()
    plus = "+" in part
    if not plus and not _PERCENT.search(part):
        return part
    decoded = unquote_plus(part) if plus else unquote(part)
    if decoded == part:
        return part
    hidden = _redact_text_fixed(decoded)
    if hidden == decoded:
        return part
    # encoded again as it was: the characters it held unencoded stay so
    safe = "".join(sorted({ch for ch in part if ch.isascii() and not ch.isalnum()} - set("%+")))
    return (quote_plus if plus else quote)(hidden, safe=safe + "*")


def redact_text(text: str) -> str:
    """``text`` with URL credentials, secret ``key=value`` pairs and options, private key
    blocks and bearer tokens replaced. Text in compatibility forms ("ＰＡＳＳＷＯＲＤ=x") is
    read as its NFKC form: when that form shows a secret, the redacted NFKC form is returned."""
    hidden = _redact_text_fixed(text)
    normal = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", hidden))
    if normal != hidden:
        redacted = _redact_text_fixed(normal)
        if redacted != normal:
            return redacted
    return hidden


def _redact_text_fixed(text: str) -> str:
    # One pass can uncover what another rule would then hide (a hidden value was what cut a
    # URL short): repeat until nothing changes, so that redacting twice changes nothing.
    for _ in range(_MAX_PASSES):
        hidden = _redact_text_once(text)
        if hidden == text:
            break
        text = hidden
    return text


def _hide_bare_userinfo(match: re.Match[str]) -> str:
    if match.group(2) == REDACTED:
        return match.group(0)
    return match.group(1) + ":" + REDACTED + "@"


def _redact_header_words(text: str) -> str:
    parts = []
    pos = 0
    for header in _HEADER_WORDS.finditer(text):
        if header.start() < pos or not is_secret_key(header.group(1)):
            continue
        value = _VALUE.match(text, header.end())
        if value is None or value.group() == REDACTED or _PLAIN_WORD.fullmatch(value.group()):
            continue
        parts.append(text[pos : header.end()] + REDACTED)
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _redact_xml(text: str) -> str:
    parts = []
    pos = 0
    for element in _XML.finditer(text):
        if element.start() < pos:
            continue
        tag, name, attrs = element.group("tag"), element.group("name"), element.group("attrs")
        if is_secret_key(tag if name is None else name):
            content = None if element.group("empty") else _XML_TEXT.match(text, element.end())
        else:
            # '<field name="password">X</field>', '<param name="api_key" value="X"/>': a value
            # attribute, or text closed by the same tag ('<input name="password">' is not)
            named = [a.group(1) or a.group(2) for a in _XML_NAME_ATTR.finditer(attrs or "")]
            password_input = attrs is not None and _XML_PASSWORD_TYPE.search(attrs) is not None
            if name is not None or not (password_input or any(map(is_secret_key, named))):
                continue
            value = _XML_VALUE_ATTR.search(attrs)
            if value is not None:
                found = value.group(2)
                quote = found[0] if found[0] in "\"'" else ""
                if found.strip("\"'") not in ("", REDACTED):
                    parts.append(text[pos : element.start("attrs") + value.end(1)])
                    parts.append(quote + REDACTED + quote)
                    pos = element.start("attrs") + value.end()
                continue
            if password_input and not any(map(is_secret_key, named)):
                continue
            content = None if element.group("empty") else _XML_FIELD_TEXT.match(text, element.end())
            if content is not None and content.group(2) != tag:
                continue
        if content is None or content.group(1).strip() == REDACTED:
            continue
        parts.append(text[pos : content.start(1)] + REDACTED)
        pos = content.end(1)
    parts.append(text[pos:])
    return "".join(parts)


def _password_flag(command: str) -> str:
    """The short option that gives ``command``'s password ("odoo-bin", "odoo18": "-w")."""
    if command.startswith("ldap"):
        return "-w"
    return _PASSWORD_FLAG.get(command.rstrip("0123456789").removesuffix("-bin"), "-p")


def _redact_commands(text: str) -> str:
    parts = []
    pos = 0
    command = None
    for token in _SHELL.finditer(text):
        if token.start() < pos:
            continue
        if token.group("nl") or token.group("cmd"):
            command = token.group("cmd")
            continue
        short = token.group("short")
        if command is None:
            continue
        userinfo = _USERINFO_FLAGS.get(command)
        if userinfo is not None:
            if (token.group("long") or short) not in userinfo[0]:
                continue
        elif token.group("long") or short != _password_flag(command):
            continue
        elif token.group("spaced") and command.startswith(("mysql", "mariadb", "7z")):
            continue  # mysql, mariadb, 7z: only attached, "-pX"
        value = _VALUE.match(text, token.end())
        if value is None:
            continue
        found = value.group()
        if userinfo is not None:
            user, colon, password = found.partition(userinfo[1])
            quote = found[0] if found[0] in "\"'" else ""
            if not colon or password.rstrip(quote) in ("", REDACTED):
                continue
            hidden = user + colon + REDACTED + (quote if password.endswith(quote) else "")
        else:
            if found == REDACTED:
                command = None  # hidden by an earlier pass: the options after it stay
                continue
            hidden = REDACTED
            command = None  # its first password only: "sshpass -p X ssh -p 22"
        parts.append(text[pos : token.end()] + hidden)
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _quoted_redacted(found: str) -> str:
    """REDACTED in the quotes ``found`` (a _VALUE) is written in, if any."""
    entity = _ENTITY_QUOTE_RE.match(found)
    if entity is not None:
        quote = entity.group()
    else:
        quote = '\\"' if found.startswith('\\"') else found[0] if found[0] in "\"'" else ""
        if found[:3] in ('"""', "'''"):
            quote = found[:3]
    return quote + REDACTED + quote


def _redact_tuple_pairs(text: str) -> str:
    parts = []
    pos = 0
    for pair in _TUPLE_PAIR.finditer(text):
        if pair.start() < pos or not is_secret_key(pair.group(2)):
            continue
        value = _VALUE.match(text, pair.end())
        if value is None or value.group()[1:-1] == REDACTED:
            continue
        parts.append(text[pos : pair.end()] + _quoted_redacted(value.group()))
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _redact_calls(text: str, calls: re.Pattern[str] = _CALL_PASSWORD) -> str:
    parts = []
    pos = 0
    for call in calls.finditer(text):
        if call.start() < pos:
            continue
        value = _LITERAL_RE.match(text, call.end())
        if value is None or value.group().strip("\\\"'") == REDACTED:
            continue
        parts.append(text[pos : call.end()] + _quoted_redacted(value.group()))
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _hidden_items(sequence: str, key: str) -> str:
    """A tuple or list of literals after a secret ``key``, each literal hidden; the first kept
    in an auth pair ("auth=('admin', 'PW')": the user)."""
    items = list(_LITERAL_RE.finditer(sequence))
    keep = 1 if len(items) == 2 and key.lower().endswith("auth") else 0
    parts = []
    pos = 0
    for item in items[keep:]:
        if item.group().strip("\\\"'") != REDACTED:
            parts.append(sequence[pos : item.start()] + _quoted_redacted(item.group()))
            pos = item.end()
    parts.append(sequence[pos:])
    return "".join(parts)


def _hide_crypt_hash(match: re.Match[str]) -> str:
    user = match.group("user")
    return REDACTED if user is None else user + ":" + REDACTED


def _redact_shapes(text: str) -> str:
    """Secrets told by their shape or by the file format they are written in."""
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    if "hooks.slack.com" in text or "api.telegram.org" in text:
        text = _PATH_TOKEN.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
    if "(" in text:
        text = _redact_calls(text)
    if "args" in text and _RPC_METHOD.search(text):
        text = _redact_calls(text, _RPC_ARGS)
    if "\\\\" in text:
        text = _NET_USE.sub(
            lambda m: m.group(0) if m.group(2) == REDACTED else m.group(1) + REDACTED, text
        )
    if "$" in text:
        text = _CRYPT_HASH.sub(_hide_crypt_hash, text)
    if "}" in text:
        text = _SCHEME_HASH.sub(_hide_crypt_hash, text)
    if "'" in text:
        text = _SQL_PASSWORD.sub(lambda m: m.group(1) + "'" + REDACTED + "'", text)
    if ":" in text:
        text = _PGPASS.sub(lambda m: m.group(1) + REDACTED, text)
    if "password" in text:
        text = _NETRC.sub(lambda m: m.group(0)[: m.start(1) - m.start()] + REDACTED, text)
    if "," in text:
        text = _redact_tuple_pairs(text)
    return text


def _is_plain(word: str) -> bool:
    """A word of prose: letters only, no capital after its first letter ("Passwort", "ungültig")."""
    return word.isalpha() and not any(ch.isupper() for ch in word[1:])


def _looks_secret(word: str) -> bool:
    """Not a plain word, 6 characters or more ("token v2", "password n/a" are prose), and letters
    with digits, 12 characters or more, or a secret's symbols."""
    if _is_plain(word) or len(word) < 6:
        return False
    return (
        (any(ch.isalpha() for ch in word) and any(ch.isdigit() for ch in word))
        or len(word) >= 12
        or _SECRET_SYMBOLS.search(word) is not None
    )


def _hide_prose(text: str) -> str:
    parts = []
    pos = 0
    at = 0
    while True:
        said = _PROSE.search(text, at)
        if said is None:
            break
        at = said.end("key")
        key = said.group("key")
        if said.group("phrase"):
            key = key.rstrip(" \t:=")
        if not is_secret_key(re.sub(r"\s+", "_", key)):
            continue
        value = _VALUE.match(text, said.end())
        if value is None or value.group() == REDACTED:
            continue
        found = value.group()
        quoted = found != found.lstrip("\"'")
        word = found.strip("\"'").rstrip(".!?:,;")
        if word.startswith(REDACTED) or not word:
            continue
        if said.group("call"):
            if not quoted or (_CALL_NAMES.fullmatch(key) and _CALL_TAIL.match(text, said.end())):
                continue  # a call _redact_calls reads: its password, not its first argument
        elif said.group("said") or said.group("phrase"):
            if _is_plain(word):
                continue
        elif (
            not _looks_secret(word)
            or (not quoted and any(ch.isspace() for ch in found))
            or _NEXT_PAIR.match(text, value.start())
            or _ADDRESS.match(word)
        ):
            continue
        parts.append(text[pos : said.end()] + _quoted_redacted(found))
        pos = at = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _hide_basic(match: re.Match[str]) -> str:
    payload = match.group(2)
    try:
        decoded = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return match.group(0) if not _looks_secret(payload) else match.group(1) + REDACTED
    if ":" not in decoded or not decoded.isprintable():
        return match.group(0) if not _looks_secret(payload) else match.group(1) + REDACTED
    return match.group(1) + REDACTED


def _hide_data_uri(match: re.Match[str]) -> str:
    """A data: URI's payload replaced whole when its bytes, read as text, show a secret or a
    secret key ("password=" followed by bytes no text rule reads as a value)."""
    payload = match.group(2)
    try:
        raw = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return match.group(0)
    decoded = raw.decode("latin-1")  # every byte one character
    if _redact_text_fixed(decoded) == decoded and not any(
        is_secret_key(pair.group(1)) for pair in _PAIR.finditer(decoded)
    ):
        return match.group(0)
    return match.group(1) + REDACTED


def _redact_text_once(text: str) -> str:
    text = _PEM.sub(lambda m: REDACTED if _secret_pem(m.group(0)[:80]) else m.group(0), text)
    text = _redact_shapes(text)
    if "Basic" in text:
        text = _BASIC.sub(_hide_basic, text)
    if "base64," in text or "BASE64," in text:
        text = _DATA_URI.sub(_hide_data_uri, text)
    # a command's password before prose: a password ending in "secret" is no key of the next word
    if any(command in text for command in _COMMANDS):
        text = _redact_commands(text)
    text = _redact_options(text)
    text = _hide_prose(text)
    text = _SPECIAL_USERINFO.sub(_hide_userinfo, text)
    text = _URL_USERINFO.sub(_hide_userinfo, text)
    if "@" in text:
        text = _ENCODED_WORD.sub(_hide_loose_userinfo, text)
    if "=" in text:
        text = _QUERY_PAIR.sub(_hide_query_value, text)
    if "@" in text:
        text = _BARE_USERINFO.sub(_hide_bare_userinfo, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    if "<" in text:
        text = _redact_xml(text)
    if "-" in text:
        text = _redact_header_words(text)
    parts = []
    pos = 0
    while True:
        pair = _PAIR.search(text, pos)
        if pair is None:
            break
        parts.append(text[pos : pair.end()])
        pos = pair.end()
        if not is_secret_key(pair.group(1)):
            continue
        value = _VALUE.match(text, pos)
        if value is not None and value.group() in ("(", "["):
            sequence = _SEQUENCE.match(text, pos)
            if sequence is not None:
                parts.append(_hidden_items(sequence.group(), pair.group(1)))
                pos = sequence.end()
                continue
        if value is None:
            nested = _yaml_nested(text, pair.start(), pos) if ":" in pair.group(2) else None
            if nested is not None:
                parts.append(nested[0])
                pos = nested[1]
                continue
            value = _next_line_value(text, pos, pair.group(2))
            if value is None:
                continue
            parts.append(text[pos : value.start()])
        parts.append(_quoted_redacted(value.group()))
        pos = _yaml_block_end(text, pair.start(), value) or value.end()
    parts.append(text[pos:])
    text = "".join(parts)
    if "%" in text or "+" in text:
        text = _redact_encoded(text)
    return text


# A secret key's separator with nothing after it on its line ("password=", "password:"), and
# on the next line a lone value: that value is the secret ("password=\nS3cr3t",
# "password:\r\n  S3cr3t"); not a line that is plainly another key ("user=bob", "user:").
_LINE_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*(?=\S)")
_LINE_REST = re.compile(r"[ \t]*(?:\r?\n|\Z)")
_NEXT_KEY = re.compile(r"[\w.\-\[\]]+[ \t]*(?:=>|:=|[=:](?![=:]))")


def _next_line_value(text: str, pos: int, separator: str) -> re.Match[str] | None:
    """The value on the line after a secret key's separator (``pos`` after it), when it is
    the line's only word and no key; else None. Not after a key followed by spaces alone."""
    if not separator.strip(" \t\"'\\" + _WIDE_SPACE[1:-1]):
        return None
    line = _LINE_BREAK.match(text, pos)
    if line is None or _NEXT_KEY.match(text, line.end()):
        return None
    value = _VALUE.match(text, line.end())
    if value is None or value.group() == REDACTED or not _LINE_REST.match(text, value.end()):
        return None
    return value


_YAML_NESTED_LINE = re.compile(
    r"([ \t]*(?:-[ \t]+)?(?:[^\s:#][^:\n]{0,127}:(?=[ \t]|$))?)[ \t]*(.*)"
)


def _yaml_nested(text: str, key_start: int, pos: int) -> tuple[str, int] | None:
    """A secret key with nothing after it on its line ("secret:") and a YAML mapping or list
    nested under it ("  value: X"): that block with every value hidden ("  value: ***"), and
    where it ends. None if no line is nested under it."""
    rest = _YAML_LINE_END.match(text, pos)
    if rest is None:
        return None
    line_start = text.rfind("\n", 0, key_start) + 1
    indent = len(text[line_start:key_start]) - len(text[line_start:key_start].lstrip(" "))
    shown: list[str] = []
    last = -1
    end = pos
    at = rest.end()
    while at < len(text):
        newline = text.find("\n", at)
        stop = len(text) if newline < 0 else newline
        line = text[at:stop]
        if line.strip():
            if len(line) - len(line.lstrip(" ")) <= indent:
                break
            lead, value = _YAML_NESTED_LINE.fullmatch(line).groups()  # type: ignore[union-attr]
            if value not in ("", REDACTED):
                line = lead + (" " if lead.endswith(":") else "") + REDACTED
            last, end = len(shown), stop
        shown.append(line)
        if newline < 0:
            break
        at = newline + 1
    if last < 0:
        return None
    return text[pos : rest.end()] + "\n".join(shown[: last + 1]), end


def _yaml_block_end(text: str, key_start: int, value: re.Match[str]) -> int | None:
    """Where a YAML block scalar ("password: |", ">-", "|2") that ``value`` opens ends: its
    lines are those indented deeper than the key's line (blank lines within it too). None if
    ``value`` opens no block with any line."""
    if not _YAML_BLOCK.fullmatch(value.group()):
        return None
    rest = _YAML_LINE_END.match(text, value.end())
    if rest is None:
        return None
    line_start = text.rfind("\n", 0, key_start) + 1
    indent = len(text[line_start:key_start]) - len(text[line_start:key_start].lstrip(" "))
    end = None
    pos = rest.end()
    while pos < len(text):
        newline = text.find("\n", pos)
        line = text[pos : len(text) if newline < 0 else newline]
        if line.strip():
            if len(line) - len(line.lstrip(" ")) <= indent:
                break
            end = pos + len(line)
        if newline < 0:
            break
        pos = newline + 1
    return end


def _redact_options(text: str) -> str:
    parts = []
    pos = 0
    for option in _OPTION.finditer(text):
        name = option.group(1)
        if option.start() < pos or name.lower().endswith("stdin"):
            continue  # "--password-stdin": a flag, the word after it no value
        if not (is_secret_key(name) or name.lower() in _SECRET_OPTIONS):
            continue
        value = _VALUE.match(text, option.end())
        if value is None or value.group() == REDACTED:
            continue
        parts.append(text[pos : option.end()] + REDACTED)
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    """The object or array a string holds as JSON, else None."""
    if text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return inner if isinstance(inner, (dict, list)) else None


def _json_string(text: str) -> str | None:
    """The string a string holds as a JSON string literal (JSON encoded twice), else None."""
    if text.lstrip()[:1] != '"':
        return None
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return inner if isinstance(inner, str) else None


def _redact_string(text: str, depth: int) -> str:
    if depth > MAX_DEPTH:
        return REDACTED
    encoded = _json_string(text)
    if encoded is not None:
        hidden_string = _redact_string(encoded, depth + 1)
        return text if hidden_string == encoded else json.dumps(hidden_string, ensure_ascii=False)
    inner = _json_container(text)
    if inner is None:
        return redact_text(text)
    hidden = _redact(inner, depth + 1)
    return text if hidden == inner else json.dumps(hidden, ensure_ascii=False)


def _redact(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        # {"name": "Authorization", "value": "..."}: a header, a form field, a parameter, a
        # row of settings ({"key": "password", "val": ...}, {"label": "Password", "text": ...})
        # names and values spelled in any case ({"Name": "Password", "Value": ...}: AWS, .NET)
        named = any(
            isinstance(key, str)
            and key.lower() in _NAMES
            and isinstance(item, str)
            and is_secret_key(item)
            for key, item in value.items()
        )
        hidden = {}
        for key, item in value.items():
            shown, secret = _shown_key(key)
            valued = named and isinstance(key, str) and key.lower() in _VALUES
            hidden[shown] = _redact_item(secret or valued, item, depth)
        args = hidden.get("args")
        method = value.get("method")
        rpc_call = isinstance(method, str) and method in _RPC_PASSWORD_METHODS
        if rpc_call and isinstance(args, list) and len(args) > 2:
            # Odoo's external API as JSON-RPC data: {"method": "execute_kw", "args": [db, uid,
            # "PW", ...]}; the password is the third positional argument (as _CALL_PASSWORD)
            hidden["args"] = [*args[:2], _redact_item(True, args[2], depth), *args[3:]]
        return hidden
    if isinstance(value, (list, tuple)):
        # pairs: [["Authorization", "Basic ..."], ["Accept", "*/*"]], each one as it stands,
        # whatever else the list holds ([["password", "x"], null]: outside round 33)
        return [
            _redact_pair(item, depth) if _is_pair(item) else _redact(item, depth + 1)
            for item in value
        ]
    if isinstance(value, str):
        return _redact_string(value, depth)
    return value


_RPC_PASSWORD_METHODS = frozenset({"execute_kw", "execute", "login", "authenticate"})
_NAMES = ("name", "key", "header", "field", "param", "label", "k")
_VALUES = ("value", "val", "text", "data", "content", "v")


def _redact_pair(pair: Any, depth: int) -> list[Any]:
    key, item = pair
    shown, secret = _shown_key(key)
    return [shown, _redact_item(secret, item, depth + 1)]


def _is_pair(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)


def _shown_key(key: Any) -> tuple[Any, bool]:
    """A key as shown, and whether the value under it is a secret."""
    shown = redact_text(key) if isinstance(key, str) else key
    # the shown key is checked too: redacting twice must not find a new secret key
    return shown, is_secret_key(key) or is_secret_key(shown)


def _redact_item(secret: bool, item: Any, depth: int) -> Any:
    return REDACTED if secret and value_is_set(item) else _redact(item, depth + 1)


def value_is_set(value: Any) -> bool:
    """Whether a value under a secret key can hold a secret (None, "" and booleans cannot)."""
    return value is not None and value != "" and not isinstance(value, bool)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced by ``***``, for storage and display."""
    return _redact(value, 0)


# --- known secrets: hidden by value ---------------------------------------------------------

# A known secret shorter than this is not searched for in its many forms (every "a" of a text
# would go): it is hidden only where it stands as a whole token (_short_forms).
MIN_KNOWN_SECRET = 4
# The shortest known secret hidden at all (as a whole token): one or two characters ("x",
# "pw") would hide every such word or number of a text.
MIN_SHORT_SECRET = 3
# A character that makes a short known secret part of a longer word or number (not hidden).
_TOKEN_CHAR = r"\w"


def _escaped_forms(secret: str) -> set[str]:
    """A secret as it is and as a text quotes it: escaped in JSON, in a Python repr (either
    quote escaped), percent-encoded (a URL, a form), HTML-escaped (html.escape, markupsafe)."""
    backslashed = secret.replace("\\", "\\\\")
    return {
        secret,
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        backslashed.replace("'", "\\'"),
        backslashed.replace('"', '\\"'),
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
        html.escape(secret, quote=False).replace('"', "&#34;").replace("'", "&#39;"),
    }


def _base64_forms(raw: str) -> set[str]:
    """``raw``'s UTF-8 in base64, standard and URL-safe, with and without its padding."""
    forms = set()
    for encoded in (base64.b64encode(raw.encode()), base64.urlsafe_b64encode(raw.encode())):
        forms.update((encoded.decode(), encoded.decode().rstrip("=")))
    return forms


# Base-N encodings: (encode, bytes in a group, bits a character carries or None when a group is
# encoded whole (base85), case-sensitive).
_BASES: tuple[tuple[Any, int, int | None, bool], ...] = (
    (base64.b64encode, 3, 6, True),
    (base64.urlsafe_b64encode, 3, 6, True),
    (base64.b32encode, 5, 5, False),
    (base64.b32hexencode, 5, 5, False),
    (base64.b85encode, 4, None, True),
    (base64.a85encode, 4, None, True),
)


def _base_forms(raw: bytes) -> tuple[set[str], set[str]]:
    """``raw`` in base64 (standard, URL-safe), base32 (standard, hex) and base85 (RFC 1924,
    Ascii85) at each byte offset it can have in a longer text so encoded (after "login:" or any
    prefix): the characters fully set by ``raw`` alone, which every encoding of a text holding
    ``raw`` at that offset contains; and ``raw`` encoded alone. (case-sensitive forms,
    case-insensitive forms: base32 is decoded in either case)."""
    sensitive: set[str] = set()
    insensitive: set[str] = set()
    for encode, group, bits, cased in _BASES:
        forms = sensitive if cased else insensitive
        alone = encode(raw).decode()
        forms.update((alone, alone.rstrip("=")))
        for offset in range(group):
            # a filler no encoder shortens (Ascii85 writes a group of zero bytes as "z")
            encoded = encode(b"\x01" * offset + raw + b"\x01" * group).decode()
            if bits is None:  # a group of 4 bytes in 5 characters
                first, last = -(-offset // group) * 5, (offset + len(raw)) // group * 5
            else:
                first, last = -(-8 * offset // bits), 8 * (offset + len(raw)) // bits
            if last - first >= MIN_KNOWN_SECRET:
                forms.add(encoded[first:last])
    return sensitive, insensitive


_HTML_NAMES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
_CONTROL_ESCAPES = {"\n": "n", "\t": "t", "\r": "r", "\b": "b", "\f": "f", "\v": "v", "\0": "0"}


def _cases(char: str) -> list[str]:
    """``char`` and the characters a case change makes of it."""
    variants = {char, char.lower(), char.upper(), char.casefold(), char.swapcase()}
    return sorted(variant for variant in variants if len(variant) == 1)


def _char_forms(char: str) -> tuple[list[tuple[str, str]], list[str]]:
    """One character of a secret as a text may show it: itself, percent-encoded (each UTF-8 byte
    as %XX, or %25XX encoded twice; "+" for a space), as an HTML character reference (decimal,
    hex, named; "&amp;" for an escaped "&"), as (first character, the rest as a pattern); and
    after a backslash (\\uXXXX, \\U, \\u{X}, \\xNN, \\x{X}, octal, its UTF-8 bytes as \\xNN, a
    UTF-16 surrogate pair, \\n and the like), as patterns. Matched case-insensitively."""
    code = ord(char)
    data = char.encode("utf-8", "surrogatepass")
    plain = [(variant, "") for variant in _cases(char)]
    percent = "".join(f"%(?:25)*{byte:02x}" for byte in data)
    plain.append(("%", percent[1:]))
    plain.append(("&", f"(?:amp;)*#(?:0*{code}|x0*{code:x});?"))
    if char == " ":
        plain.append(("+", ""))
    if char in _HTML_NAMES:
        plain.append(("&", f"(?:amp;)*{_HTML_NAMES[char]};?"))
    escaped = [f"u\\{{?0*{code:x}\\}}?", f"x\\{{?0*{code:x}\\}}?"]
    if code < 0o1000:
        escaped.append(f"0*{code:o}(?![0-7])")
    if len(data) > 1:
        escaped.append(r"\\+".join(f"x{byte:02x}" for byte in data))
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        escaped.append(f"u{high:04x}\\\\+u{low:04x}")
    if char in _CONTROL_ESCAPES:
        escaped.append(_CONTROL_ESCAPES[char])
    return plain, escaped


# The most backslashes before a character of a secret (an escape escaped again, JSON in JSON):
# bounded, so that a long run of them costs the search little.
_MAX_BACKSLASHES = 8


# A secret spaced out: a short run of these (SPACER_RUN characters at most) between two of its
# characters ("S 3 c r e t", "S-3-c-r-e-t", "S, 3, c", "S - 3 - c", one per line with "\r\n",
# with a zero-width space).
_SPACERS = " \t\r\n\u00a0\u00ad\u200b\u200c\u200d\u2060\ufeff\\-._,:;/|"
SPACER_RUN = 3


def _spacer(following: str) -> str:
    """An optional run of spacers before a character of a secret, read one way only so that
    the search stays linear: taken only when that character (in any case) follows it, and
    holding none of that character's cases (a secret holding a spacer, "a-b", is read as
    itself); its last not a backslash (backslashes before a character are _text_form's)."""
    cases = _cases(following)
    ahead = "".join(re.escape(variant) for variant in cases)
    allowed = "".join(re.escape(ch) for ch in _SPACERS if ch not in cases)
    last = "".join(re.escape(ch) for ch in _SPACERS if ch not in cases and ch != "\\")
    return f"(?:[{allowed}]{{0,{SPACER_RUN - 1}}}[{last}](?=[{ahead}]))?"


def _text_form(text: str) -> str:
    """``text`` in any case, each character as _char_forms has it (after some backslashes, past
    the first), a short run of spacers allowed before each (_spacer), as one pattern: its
    first character's forms in one group before the rest, which is written once (a copy of
    the rest for each form of the first character made the pattern five times longer to
    compile)."""
    units = []
    starts: list[str] = []
    backslashes = rf"\\{{0,{_MAX_BACKSLASHES}}}"
    for index, char in enumerate(text):
        plain, escaped = _char_forms(char)
        # the character's cases as one class: as alternatives, each would match the same
        # character (the pattern is case-insensitive), and a near miss would be tried in
        # two ways per character, 2 ** len(text) in all
        alone = "".join(re.escape(first) for first, rest in plain if not rest)
        forms = ["[" + alone + "]"] + [re.escape(first) + rest for first, rest in plain if rest]
        if index == 0:
            starts += forms
            starts.append("\\\\(?:" + "|".join(escaped) + ")")
        else:
            plain_any = "|".join(forms)
            units.append(
                _spacer(char)
                + f"(?:{backslashes}(?:{plain_any})|{backslashes}\\\\(?:{'|'.join(escaped)}))"
            )
    # behind a test of the characters it can start with: elsewhere it fails at once
    gate = "[" + "".join(map(re.escape, sorted({"%", "&", "+", "\\", *_cases(text[0])}))) + "]"
    return "(?=" + gate + ")(?i:(?:" + "|".join(starts) + ")" + "".join(units) + ")"


def _hex_forms(raw: bytes) -> list[tuple[str, str]]:
    """``raw`` in hex, in either case, its bytes apart or not (":", "-", a space, "0x" before
    each): as (first character, the rest as a pattern)."""
    digits = [f"{byte:02x}" for byte in raw]
    tail = "".join(r"[\s:,.-]{0,2}(?:0x)?" + pair for pair in digits[1:])
    forms = [("0", "(?i:x" + digits[0] + tail + ")")]
    forms.extend((first, "(?i:" + digits[0][1:] + tail + ")") for first in _cases(digits[0][0]))
    return forms


# A known secret this long or longer is also hidden in parts: every run of at least half of
# it (MIN_RUN characters at least) as it is, so that its two halves shown apart are hidden
# each; from each position the longest run is taken (up to MAX_RUN_TAIL more characters).
MIN_RUN_SECRET = 10
MIN_RUN = 6
MAX_RUN_TAIL = 64


def _run_forms(secret: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Every run of at least max(MIN_RUN, half) consecutive characters of ``secret`` (but one
    of letters in a single case or capitalised: a word), as (first character, the rest as a
    pattern), the longest from each position; and the blocks one of
    which every such run holds (its pieces of half that length at multiples of it): a text
    without any of them holds no run, and is not searched for one."""
    if len(secret) < MIN_RUN_SECRET:
        return [], []
    least = max(MIN_RUN, len(secret) // 2)
    forms = []
    for start in range(len(secret) - least + 1):
        run = secret[start : start + least]
        if run.isalpha() and (run.islower() or run.isupper() or run.istitle()):
            continue  # maybe a word ("password" of "S3cr-db-password"), not hidden alone
        tail = ""
        for char in reversed(secret[start + least : start + least + MAX_RUN_TAIL]):
            tail = f"(?:{re.escape(char)}{tail})?"
        forms.append((secret[start], re.escape(secret[start + 1 : start + least]) + tail))
    block = (least + 1) // 2  # a run of 2 * block - 1 characters holds a whole block
    blocks = [secret[at : at + block] for at in range(0, len(secret) - block + 1, block)]
    return forms, blocks


def _grouped(alternatives: list[tuple[str, str]]) -> str:
    """One pattern of (first character, the rest) alternatives, grouped by their first
    character, which each names exactly: the search skips at once every position no
    alternative can start at, and tries there only those that can."""
    by_first: dict[str, list[str]] = {}
    for first, rest in alternatives:
        by_first.setdefault(first, []).append(rest)
    return "|".join(
        re.escape(first) + "(?:" + "|".join(rests) + ")" for first, rests in by_first.items()
    )


# Base64 wrapped in lines (MIME at 76 columns, PEM at 64; "\n" or "\r\n", or those escaped as
# in JSON text): a run of lines of at least 16 base64 characters each (the first may follow
# other words on its line), then the last, maybe shorter. It starts only where no base64
# character is before it, so each run of them is tried from its start once (linear).
_B64 = "A-Za-z0-9+/_\\-"
_WRAPPED_BASE64 = re.compile(
    rf"(?<![{_B64}=])(?:[{_B64}]{{16,}}(?:\r?\n|(?:\\r)?\\n))+[{_B64}]*={{0,2}}(?![{_B64}=])"
)
_LINE_BREAKS = re.compile(r"\r|\n|\\r|\\n")
# A list of byte values written out ("[84, 114, ...]", Java's signed bytes, "{84,114,...}"):
# at least MIN_KNOWN_SECRET numbers of up to three digits, between brackets or braces.
_BYTE_LIST = re.compile(r"[\[{(]\s*-?\d{1,3}(?:\s*,\s*-?\d{1,3}){3,}\s*,?\s*[\]})]")
# The most items of a list judged as bytes (a longer one is no secret written out).
MAX_BYTE_LIST = 4096


def _as_bytes(numbers: Any) -> bytes | None:
    """The bytes a list of integers spells (-128 to 255: Java's bytes are signed), or None
    when it is not one (another item)."""
    if not all(type(item) is int and -128 <= item <= 255 for item in numbers):
        return None
    return bytes(item % 256 for item in numbers)


def _bytes_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class KnownForms:
    """The forms of some known secrets in a text (_known_forms), replaced by ``sub``: base64
    wrapped in lines or a list of byte values written out, hidden whole when it holds one;
    the whole secrets' forms, then, in a text holding a block of one (_run_forms), their
    parts."""

    def __init__(
        self,
        whole: re.Pattern[str],
        parts: re.Pattern[str] | None,
        blocks: Any,
        shortest: int,
        short: re.Pattern[str] | None = None,
    ):
        self.whole, self.parts, self.blocks, self.short = whole, parts, blocks, short
        # the fewest characters a form of a whole secret has: fewer bytes cannot show one
        self.shortest = max(MIN_KNOWN_SECRET, shortest)

    def _may_hold(self, count: int) -> bool:
        """A list of ``count`` byte values is long enough to show a secret, and not so long
        that it is none written out (MAX_BYTE_LIST): the cheap test before decoding it."""
        return self.shortest <= count <= MAX_BYTE_LIST

    def holds(self, text: str) -> bool:
        """``text`` shows a whole known secret (in any form ``whole`` knows)."""
        return self.whole.search(text) is not None

    def holds_bytes(self, numbers: Any) -> bool:
        """``numbers`` is a list of byte values (Node's Buffer JSON's ``data``, a byte array)
        whose text (UTF-8, else Latin-1) shows a known secret."""
        if not self._may_hold(len(numbers)):
            return False
        raw = _as_bytes(numbers)
        return raw is not None and self.holds(_bytes_text(raw))

    def hide_wrapped(self, repl: str, match: re.Match[str]) -> str:
        """A block of base64 lines (_WRAPPED_BASE64) hidden whole when, its lines joined, a
        known secret's form runs across a break (one within a line is hidden as it is, with
        the rest kept: a header's value on the line before a name)."""
        found = match.group()
        pieces = _LINE_BREAKS.split(found)
        breaks, at = set(), 0
        for piece in pieces[:-1]:
            at += len(piece)
            breaks.add(at)
        joined = "".join(pieces)
        for form in self.whole.finditer(joined):
            if any(form.start() < at < form.end() for at in breaks):
                return repl
        return found

    def _hide_byte_list(self, repl: str, match: re.Match[str]) -> str:
        found = match.group()
        if not self._may_hold(found.count(",") + 1):
            return found
        numbers = [int(item) for item in re.findall(r"-?\d+", found)]
        # a JSON string: JSON text (a Buffer's "data") stays JSON, as its structure would be
        return json.dumps(repl) if self.holds_bytes(numbers) else found

    def sub(self, repl: str, text: str, parts: bool = True) -> str:
        if "\n" in text or "\\n" in text:  # quick tests first: most texts hold neither
            text = _WRAPPED_BASE64.sub(lambda m: self.hide_wrapped(repl, m), text)
        if "," in text:
            text = _BYTE_LIST.sub(lambda m: self._hide_byte_list(repl, m), text)
        text = self.whole.sub(repl, text)
        if parts and self.parts is not None and self.blocks.search(text):
            text = self.parts.sub(repl, text)
        if parts and self.short is not None:  # not in a key: "id", "uri" name fields
            text = self.short.sub(repl, text)
        return text


def _known_forms(secrets: Any, login: str | None = None) -> KnownForms | None:
    """The forms a known secret takes in a text: _escaped_forms; in any case, reversed, each
    character escaped, spaced out (_text_form); in hex (_hex_forms); in base-N at every offset
    (_base_forms); its base64 as HTTP Basic credentials with ``login`` ("login:secret"); and a
    long one's parts (_run_forms: its halves shown apart). A secret shorter than
    MIN_KNOWN_SECRET (MIN_SHORT_SECRET at least): only as it is or escaped, as a whole token
    (_short_forms).
    Built once for the same secrets and login (_pattern_for)."""
    known = tuple(
        sorted({s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SHORT_SECRET})
    )
    if not known:
        return None
    return _pattern_for(known, login or None)


def _short_forms(secrets: Sequence[str]) -> re.Pattern[str] | None:
    """Secrets shorter than MIN_KNOWN_SECRET (a forwarded password "abc"), as they are or
    escaped (_escaped_forms), where they stand as a whole token: not next to a letter, a
    digit or "_" ("abc" in "abc." or "pw: abc", not in "abcd" or "xabc1"), in that case."""
    forms = {form for secret in secrets for form in _escaped_forms(secret)}
    if not forms:
        return None
    either = "|".join(map(re.escape, sorted(forms, key=len, reverse=True)))
    return re.compile(f"(?<!{_TOKEN_CHAR})(?:{either})(?!{_TOKEN_CHAR})")


@functools.lru_cache(maxsize=16)
def _pattern_for(given: tuple[str, ...], login: str | None) -> KnownForms:
    secrets = tuple(secret for secret in given if len(secret) >= MIN_KNOWN_SECRET)
    short = _short_forms([secret for secret in given if len(secret) < MIN_KNOWN_SECRET])
    literal: set[str] = set()
    uncased: set[str] = set()
    forms: list[tuple[str, str]] = []
    texts: list[str] = []
    openers = {"%", "&", "+", "\\"}  # the first characters of the text forms (_char_forms)
    runs: list[tuple[str, str]] = []
    blocks: set[str] = set()
    for secret in secrets:
        raw = secret.encode("utf-8", "surrogatepass")
        literal.update(_escaped_forms(secret))
        if login:
            literal.update(_base64_forms(login + ":" + secret))
        cased, insensitive = _base_forms(raw)
        literal.update(cased)
        uncased.update(insensitive)
        texts += [_text_form(secret), _text_form(secret[::-1])]
        openers.update(_cases(secret[0]) + _cases(secret[-1]))
        forms += _hex_forms(raw)
        secret_runs, secret_blocks = _run_forms(secret)
        runs += secret_runs
        blocks.update(secret_blocks)
    # the longest literal first, so that a whole encoding goes rather than a part of it
    alternatives = [
        (form[0], re.escape(form[1:])) for form in sorted(literal, key=len, reverse=True)
    ]
    for form in sorted(uncased, key=len, reverse=True):
        alternatives += [(first, "(?i:" + re.escape(form[1:]) + ")") for first in _cases(form[0])]
    parts = re.compile(_grouped(runs)) if runs else None
    found = re.compile("|".join(map(re.escape, sorted(blocks, key=len, reverse=True))))
    # the text forms behind one test of the character they start with: the search tries them
    # only where one can start
    gate = "(?=[" + "".join(map(re.escape, sorted(openers))) + "])"
    if secrets:
        whole = re.compile(
            _grouped(alternatives + forms) + "|" + gate + "(?:" + "|".join(texts) + ")"
        )
    else:  # short secrets only
        whole = re.compile("(?!)")
    shortest = min(map(len, [*literal, *uncased, *secrets]), default=MIN_KNOWN_SECRET)
    return KnownForms(whole, parts, found, shortest, short)


def _hide_known(value: Any, pattern: KnownForms, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {
            # a key loses a whole secret only: a part can be a word ("password" of
            # "S3cr-db-password"), and the key names what its value is
            (pattern.sub(REDACTED, key, parts=False) if isinstance(key, str) else key): (
                _hide_known(item, pattern, depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        if pattern.holds_bytes(value):  # a byte array ({"type": "Buffer", "data": [...]})
            return REDACTED
        return [_hide_known(item, pattern, depth + 1) for item in value]
    return value


def redact_known(value: Any, secrets: Any, login: str | None = None) -> Any:
    """``redact(value)``, after each of ``secrets`` (the values a caller knows are secret, such
    as the password and API key of the connection in use) is replaced by ``***`` wherever it
    appears, in any string or key at any depth, also escaped, encoded or in base64 (with
    ``login``, the user they belong to, as HTTP Basic credentials too): a secret that no
    pattern recognises (an Odoo fault quoting the password it refused) is still hidden."""
    # The structure first: a known secret's parts can be words ("password" in
    # "S3cr-db-password"), and hidden first they would hide the keys and labels that tell
    # ``redact`` what else is secret.
    pattern = _known_forms(secrets, login)
    redacted = redact(value)
    return redacted if pattern is None else _hide_known(redacted, pattern, 0)


def arguments_secrets(arguments: Any, depth: int = 0) -> tuple[str, ...]:
    """The strings under secret keys (``is_secret_key``) in a call's arguments, at any depth:
    the password or API key the call itself carries."""
    found: list[str] = []
    if depth > 32:
        return ()
    if isinstance(arguments, dict):
        for key, item in arguments.items():
            if is_secret_key(key) and isinstance(item, str):
                found.append(item)
            elif isinstance(item, (dict, list)):
                found.extend(arguments_secrets(item, depth + 1))
    elif isinstance(arguments, list):
        for item in arguments:
            found.extend(arguments_secrets(item, depth + 1))
    return tuple(sorted({value for value in found if len(value.strip()) >= MIN_SHORT_SECRET}))


def redact_arguments(arguments: Any) -> Any:
    """A call's arguments as they are stored and shown (an approval request): ``redact``, and
    the call's own secrets hidden by value in its other fields too, so an ``odoo_connect``
    whose ``db`` repeats its password does not show the password to approvers (outside round
    19)."""
    return redact_known(arguments, arguments_secrets(arguments))


def redact_known_text(text: str, secrets: Any, login: str | None = None) -> str:
    """``redact_text(text)`` after each of ``secrets`` is replaced, as ``redact_known``."""
    pattern = _known_forms(secrets, login)
    redacted = redact_text(text)  # the structure first, as in redact_known
    return redacted if pattern is None else pattern.sub(REDACTED, redacted)


# --- a text that arrives line by line -------------------------------------------------------

# The most lines of a secret PEM block hidden while waiting for its END line: past it, the
# copy resumes (a BEGIN line with no END must not silence a stream for good).
PEM_LINE_CAP = 200
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,64})-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,64}-----")


def _secret_pem(label: str) -> bool:
    return "PRIVATE" in label or "SECRET" in label


# A line read cut short (longer than its reader takes at once) is redacted with what follows:
# its last CUT_HOLD characters, from the start of the word there and the three words before it
# (a key, its separator, "the password is"), are held back and shown with the continuation,
# so that a secret key and its value cut apart are redacted as one.
CUT_HOLD = 4096
_WORDS_BEFORE = re.compile(r"(?:\S+\s+){0,3}\S*$")


# A line of an upstream's stderr that may begin a block of wrapped base64 (or go on with one):
# it ends in a run of at least this many base64 characters (MIME wraps at 76, PEM at 64).
HELD_BASE64_RUN = 40
_BASE64_LINE_END = re.compile(rf"[{_B64}]{{{HELD_BASE64_RUN}}}\Z")
# The most lines of an upstream's stderr held as one block of base64.
MAX_HELD_LINES = 64
# A line this short (but not empty) may be a character of a known secret written one per
# line ("\r\n".join(secret)): held with those after it, like base64, and judged with them.
SHORT_LINE = 3


def _held_line(text: str) -> bool:
    """A line of stderr held while there are known secrets: the end of a run of base64, or
    a character or so of a secret spaced out one per line."""
    return 0 < len(text) <= SHORT_LINE or _BASE64_LINE_END.search(text) is not None


# The end of the last line shown kept to judge a held block with (a secret one character per
# line may begin at the end of a longer line: "spread: S\r\n3\r\nc...").
TAIL_KEPT = 64


def _hide_continued(pattern: KnownForms, tail: str, block: str) -> str:
    """``block`` (held lines) with every known secret's form hidden, also one that began in
    ``tail`` (the end of the line before, already shown): its part in the block."""
    joined = tail + "\n" + block if tail else block
    offset = len(joined) - len(block)
    pieces, pos = [], offset
    for found in pattern.whole.finditer(joined):
        if found.end() <= offset:
            continue
        start = max(found.start(), offset)
        pieces += [joined[pos:start], REDACTED]
        pos = found.end()
    pieces.append(joined[pos:])
    return pattern.sub(REDACTED, "".join(pieces))


class LineRedaction:
    """``redact_text`` for a text read one line at a time (an upstream's stderr): a secret PEM
    block is hidden whole across lines (its body and END line too), which a line alone cannot
    show; a line cut short (``cut``) is redacted together with its continuation (CUT_HOLD).
    ``known``: a callable answering the known secrets hidden by value (``redact_known_text``)
    at the time of each line. ``line`` answers what to show for a line, or None for nothing."""

    def __init__(self, known: Callable[[], Any] | None = None) -> None:
        self._hidden_lines: int | None = None  # inside a secret block: lines hidden so far
        self._held = ""  # the end of a line cut short, shown with its continuation
        self._known = known
        self._base64: list[str] = []  # lines that may be wrapped base64, judged together
        self._tail = ""  # the end of the last line shown: where a held block may begin

    def lines(self, text: str, cut: bool = False) -> list[str]:
        """``line`` for a text in which base64 wrapped in lines (MIME, PEM) is hidden whole when
        it holds a known secret: while there are known secrets, a line ending in a run of
        HELD_BASE64_RUN base64 characters, or of SHORT_LINE characters at most (a secret
        spaced out one character per line), is held with those after it (MAX_HELD_LINES at
        most) until one is neither (the block's last line), then all are judged together. Answers
        the lines to show now, maybe none; ``finish`` answers those still held."""
        begins = not self._base64 and _held_line(text)
        holding = self._base64 or (begins and self._known is not None and bool(self._known()))
        if cut or self._held or self._hidden_lines is not None or not holding:
            return [*self.finish(), *self._shown(text, cut)]
        self._base64.append(text)
        if len(self._base64) < MAX_HELD_LINES and _held_line(text):
            return []  # the block may go on
        return self.finish()

    def finish(self) -> list[str]:
        """The lines held by ``lines``, a wrapped base64 block holding a known secret hidden."""
        if not self._base64:
            return []
        block, self._base64 = "\n".join(self._base64), []
        pattern = _known_forms(self._known() if self._known is not None else ())
        if pattern is not None:
            block = _WRAPPED_BASE64.sub(lambda m: pattern.hide_wrapped(REDACTED, m), block)
            block = _hide_continued(pattern, self._tail, block)
        return [shown for part in block.split("\n") for shown in self._shown(part, False)]

    def _shown(self, text: str, cut: bool) -> list[str]:
        self._tail = text[-TAIL_KEPT:]
        shown = self.line(text, cut)
        return [] if shown is None else [shown]

    def line(self, text: str, cut: bool = False) -> str | None:
        text, self._held = self._held + text, ""
        if cut:
            split = max(0, len(text) - CUT_HOLD)
            if split:
                words = _WORDS_BEFORE.search(text, max(0, split - 256), split)
                split = words.start() if words is not None else split
            text, self._held = text[:split], text[split:]
            if not text:
                return None
        return self._line(text)

    def _redact(self, text: str) -> str:
        secrets = self._known() if self._known is not None else ()
        return redact_known_text(text, secrets) if secrets else redact_text(text)

    def _line(self, text: str) -> str | None:
        if self._hidden_lines is not None:
            end = _PEM_END.search(text)
            if end is None:
                self._hidden_lines += 1
                if self._hidden_lines >= PEM_LINE_CAP:
                    self._hidden_lines = None
                return None
            self._hidden_lines = None
            rest = text[end.end() :]  # may open another block
            return self._line(rest) if rest.strip() else None
        for begin in _PEM_BEGIN.finditer(text):
            if _secret_pem(begin.group(1)) and not _PEM_END.search(text, begin.end()):
                self._hidden_lines = 0
                return self._redact(text[: begin.start()]) + REDACTED
        return self._redact(text)


# --- redaction of MCP messages: results with binary payloads, tool definitions -------------

# Where MCP puts binary (base64): ``data`` of an image or audio content block, ``blob`` of an
# embedded resource. Nowhere else is a string taken for base64 (structuredContent, _meta...).
_BINARY_BLOCKS = {"image": "data", "audio": "data"}
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2}", re.ASCII)


def _redact_base64(text: str, depth: int) -> str:
    """A base64 payload: kept as it is only when it is base64 of bytes in which the rule finds
    no secret. Fail closed: a string that is not base64 is redacted as text; a payload whose
    bytes read as text with a secret (or binary bytes holding one in ASCII) is replaced by the
    base64 of the redacted bytes."""
    as_text = _redact_string(text, depth)
    compact = "".join(text.split())  # MIME base64 breaks lines
    if as_text != text or not _BASE64_RE.fullmatch(compact) or len(compact) % 4 == 1:
        return as_text
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return as_text
    try:
        decoded, codec = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        decoded, codec = raw.decode("latin-1"), "latin-1"  # every byte one character
    hidden = _redact_string(decoded, depth + 1)
    if hidden == decoded:
        return text
    return base64.b64encode(hidden.encode(codec, "replace")).decode("ascii")


def _redact_block(block: Any, depth: int) -> Any:
    """A content block: its binary payload (if any) as base64, the rest through the rule."""
    if not isinstance(block, dict):
        return _redact(block, depth)
    kind = block.get("type")
    binary_key = _BINARY_BLOCKS.get(kind) if isinstance(kind, str) else None
    resource = block.get("resource") if kind == "resource" else None
    hidden = _redact({k: v for k, v in block.items() if k not in (binary_key, "resource")}, depth)
    if binary_key is not None and binary_key in block:
        value = block[binary_key]
        hidden[binary_key] = (
            _redact_base64(value, depth + 1) if isinstance(value, str) else _redact(value, depth)
        )
    if "resource" in block:
        hidden["resource"] = (
            _redact_resource(resource, depth + 1)
            if isinstance(resource, dict)
            else _redact(block["resource"], depth + 1)
        )
    return hidden


def _redact_resource(resource: dict[str, Any], depth: int) -> dict[str, Any]:
    hidden = _redact({k: v for k, v in resource.items() if k != "blob"}, depth)
    if "blob" in resource:
        blob = resource["blob"]
        hidden["blob"] = (
            _redact_base64(blob, depth + 1) if isinstance(blob, str) else _redact(blob, depth)
        )
    return hidden


def redact_result(result: Any) -> Any:
    """A dumped MCP result (a tool's result, an input request, read resource contents) with
    every secret replaced: through ``redact``, but for the binary payloads where MCP puts
    them (``content[].data`` of image and audio blocks, ``resource.blob`` of embedded
    resources, ``contents[].blob``), which are redacted as base64 (``_redact_base64``)."""
    if not isinstance(result, dict):
        return redact(result)
    hidden = redact({k: v for k, v in result.items() if k not in ("content", "contents")})
    for key, walk in (("content", _redact_block), ("contents", _redact_resource)):
        if key not in result:
            continue
        items = result[key]
        if isinstance(items, list):
            hidden[key] = [
                walk(item, 1) if isinstance(item, dict) else _redact(item, 1) for item in items
            ]
        elif isinstance(items, dict):
            hidden[key] = walk(items, 1)
        else:
            hidden[key] = redact(items)
    return hidden


# JSON Schema keywords whose values are data an upstream chose (a default, examples, allowed
# values), not structure: under a parameter with a secret's name they are a secret.
_SCHEMA_DATA = frozenset(("default", "examples", "example", "enum", "const"))
# Keywords whose values are maps of parameter name -> schema.
_SCHEMA_MAPS = frozenset(("properties", "patternProperties", "$defs", "definitions"))
# Marks a pinned definition whose redaction hid something: the SHA-256 of the definition as the
# upstream served it, so that a change the redaction hides is still a change of the pin.
SOURCE_HASH_KEY = "x-odoo-mcp-guard-source"


def _redact_schema(schema: Any, secret: bool, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(schema, list):
        return [_redact_schema(item, secret, depth + 1) for item in schema]
    if not isinstance(schema, dict):
        return REDACTED if secret and value_is_set(schema) else _redact(schema, depth)
    hidden: dict[Any, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_DATA:
            hidden[key] = REDACTED if secret and value_is_set(value) else _redact(value, depth + 1)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            # the parameter names stay (they are the call's keys); each its own secret or not
            hidden[key] = {
                name: _redact_schema(sub, _shown_key(name)[1], depth + 1)
                for name, sub in value.items()
            }
        elif isinstance(value, (dict, list)):
            hidden[key] = _redact_schema(value, secret, depth + 1)
        else:
            hidden[key] = _redact(value, depth + 1)  # description, title, unknown keywords
    return hidden


def redact_schema(schema: Any) -> Any:
    """A JSON schema as a client is shown it (a tool's input or output schema, a question's
    requested schema): its shape kept; descriptions, titles, defaults, examples, enum and
    const values redacted, those of a parameter named as a secret replaced whole."""
    return _redact_schema(schema, False, 1)


def redact_tool(definition: dict[str, Any]) -> dict[str, Any]:
    """A dumped tool definition as clients are shown it and pins hold it: its input and
    output schemas through ``_redact_schema`` (descriptions, titles, defaults, examples, enum
    and const values; any of these under a parameter named as a secret replaced whole); its
    name as it is; everything else (annotations, _meta, icons...) through ``redact``."""
    hidden: dict[str, Any] = {}
    for key, value in definition.items():
        if key in ("inputSchema", "outputSchema"):
            hidden[key] = redact_schema(value)
        elif key == "name":
            hidden[key] = value
        else:
            hidden[key] = redact(value)
    return hidden


def pinned_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition pinned and hashed for a tool served as ``definition``: redacted
    (``redact_tool``); when the redaction hid something, its input schema also carries
    ``SOURCE_HASH_KEY``, the SHA-256 of the served definition, so that the pin's hash changes
    with the real definition, never only with its redacted form."""
    hidden = redact_tool(definition)
    if hidden == definition or not isinstance(hidden.get("inputSchema"), dict):
        return hidden
    source = hashlib.sha256(canonical_bytes(definition)).hexdigest()
    return {**hidden, "inputSchema": {**hidden["inputSchema"], SOURCE_HASH_KEY: source}}


# --- names ---------------------------------------------------------------------------------

# The MCP tool-name alphabet. Matching is exact: no case folding, no Unicode normalisation,
# no trimming (fullmatch: "$" would let a trailing newline through).
TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}", re.ASCII)
# A rule key or hide entry: a tool name, or a glob over tool names (``*`` and ``?``).
TOOL_PATTERN_RE = re.compile(r"[A-Za-z0-9_.\-*?]{1,128}", re.ASCII)
SERVER_NAME_MAX = 200


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def valid_tool_name(name: object) -> bool:
    return isinstance(name, str) and TOOL_NAME_RE.fullmatch(name) is not None


def valid_approver_group(name: object) -> bool:
    return isinstance(name, str) and APPROVER_GROUP_RE.fullmatch(name) is not None


def valid_server_name(name: object) -> bool:
    """The name a front-end keeps its tool catalog under: 1 to 200 printable characters."""
    return isinstance(name, str) and 0 < len(name) <= SERVER_NAME_MAX and name.isprintable()


# --- the policy document: constants and bounds ----------------------------------------------

Action = Literal["allow", "deny", "require_approval"]
RiskClass = Literal["read", "write", "destructive", "critical"]

ACTIONS: tuple[Action, ...] = ("allow", "deny", "require_approval")
# deny > require_approval > allow
STRICTNESS = {"allow": 0, "require_approval": 1, "deny": 2}
# Risk classes of the tool catalog, lowest to highest.
RISK_CLASSES: tuple[RiskClass, ...] = ("read", "write", "destructive", "critical")
RISK_RANK: dict[str, int] = {name: rank for rank, name in enumerate(RISK_CLASSES)}
DEFAULT_ACTION: Action = "deny"
DEFAULT_RISK_APPROVAL: tuple[RiskClass, ...] = ("destructive", "critical")
DEFAULT_EXPIRES_IN = 3600
# One bound for both halves: what the add-on stores, the front-end loads (a longer approval
# or window is refused where it is edited, never later by the front-end).
MAX_SECONDS = 86400 * 31  # approval.expires_in and rate_limit.window
# rate_limit.window's least: a window of a microsecond is no limit at all (outside round 32);
# the add-on's rules hold whole seconds.
MIN_WINDOW = 1
MAX_CALLS = 2**31 - 1  # rate_limit.max (an Odoo Integer field)
MAX_REASON = 500
MAX_POLICY_BYTES = 1 << 20
MAX_NUMBER_DIGITS = 30  # no setting needs more; Python refuses ints past 4300 digits anyway
# Approver routing: the group whose members decide a rule's requests (in Odoo the external id
# of a res.groups, on the embedded store a name listed in ``approvers``), and how many
# distinct approvers, never the requester, must approve.
DEFAULT_APPROVER_GROUP = "mcp_guard.group_mcp_approver"
APPROVER_GROUP_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", re.ASCII)
MAX_QUORUM = 10
MAX_APPROVERS = 100  # names listed for one group in ``approvers``
MAX_APPROVER_NAME = 200
MAX_PEOPLE = 1000  # persons under ``people``
MAX_PRINCIPALS = 100  # principals listed for one person

TOP_KEYS = ("version", "default", "hide", "rules", "risk", "approvers", "people")
RULE_KEYS = ("action", "reason", "rate_limit", "approval")
APPROVAL_KEYS = ("expires_in", "approver_group", "quorum")
RISK_KEYS = ("require_approval", "servers", "overrides")

# Between the readable part of a proxy's derived server name and the digest of its whole
# upstream ("server~1a2b3c4d"): no chosen --server-name holds it.
DERIVED_SERVER_MARK = "~"


def server_names(server: str | None) -> tuple[str, ...]:
    """The names a per-server risk entry may use for ``server``, the most specific first: a
    derived name ("server~1a2b3c4d") is also found under its readable part ("server"), the
    name proxies were known by before the digest was added, so an entry written for it still
    applies after the upgrade rather than silently dropping out."""
    if server is None:
        return ()
    readable, mark, digest = server.rpartition(DERIVED_SERVER_MARK)
    return (server, readable) if mark and readable and digest else (server,)


OVERRIDE_KEYS = ("server", "tool", "class", "reason")
BAD_PATTERN = "invalid tool name or glob (allowed: A-Z a-z 0-9 _ . - * ?, 1 to 128)"
BAD_TOOL = "invalid tool name (allowed: A-Z a-z 0-9 _ . -, 1 to 128)"
BAD_SERVER = "invalid server name (1 to 200 printable characters)"
BAD_GROUP = "invalid approver group (allowed: A-Z a-z 0-9 _ . -, 1 to 128; e.g. module.group_id)"

Loc = tuple[Any, ...]
Fault = tuple[Loc, str]


class PolicyFault(ValueError):
    """A policy document that cannot be used; ``faults`` holds one line per fault."""

    def __init__(self, faults: list[str]):
        self.faults = faults
        super().__init__("; ".join(faults))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(loc: Loc) -> str:
    """``("rules", "odoo x", "action")`` → ``$.rules["odoo x"].action``."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=True)}]"
    return out


# --- validation: every fault with its JSON path ----------------------------------------------


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _object(value: Any, loc: Loc, keys: tuple[str, ...] | None, out: list[Fault]) -> bool:
    if not isinstance(value, dict):
        out.append((loc, f"must be an object, not {_type_name(value)}"))
        return False
    if keys is not None:
        out.extend(((*loc, key), "unknown key") for key in value if key not in keys)
    return True


def _integer(value: Any, loc: Loc, low: int, high: int, out: list[Fault]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        out.append((loc, "Input should be a valid integer"))
    elif not low <= value <= high:
        out.append((loc, f"must be an integer from {low} to {high}"))


def _reason(entry: dict[str, Any], loc: Loc, out: list[Fault]) -> None:
    if "reason" not in entry or entry["reason"] is None:
        return
    if not isinstance(entry["reason"], str):
        out.append(((*loc, "reason"), "Input should be a valid string"))
    elif len(entry["reason"]) > MAX_REASON:
        out.append(((*loc, "reason"), f"at most {MAX_REASON} characters"))


def rule_faults(key: object, entry: Any, loc: Loc = ()) -> list[Fault]:
    """The faults of one rule (``key``: its tool name or glob), paths under ``loc``."""
    out: list[Fault] = []
    if not isinstance(key, str) or not TOOL_PATTERN_RE.fullmatch(key):
        out.append((loc, BAD_PATTERN))
    if not _object(entry, loc, RULE_KEYS, out):
        return out
    if "action" not in entry:
        out.append(((*loc, "action"), "Field required"))
    elif entry["action"] not in ACTIONS:
        out.append(((*loc, "action"), "must be one of " + ", ".join(ACTIONS)))
    _reason(entry, loc, out)
    limit = entry.get("rate_limit")
    if limit is not None and _object(limit, (*loc, "rate_limit"), ("max", "window"), out):
        if "max" not in limit:
            out.append(((*loc, "rate_limit", "max"), "Field required"))
        else:
            _integer(limit["max"], (*loc, "rate_limit", "max"), 1, MAX_CALLS, out)
        window = limit.get("window")
        if "window" not in limit:
            out.append(((*loc, "rate_limit", "window"), "Field required"))
        elif isinstance(window, bool) or not isinstance(window, (int, float)):
            out.append(((*loc, "rate_limit", "window"), "Input should be a valid number"))
        elif not (MIN_WINDOW <= window <= MAX_SECONDS):
            out.append(
                (
                    (*loc, "rate_limit", "window"),
                    f"must be at least {MIN_WINDOW} second and at most {MAX_SECONDS}",
                )
            )
    approval = entry.get("approval")
    if approval is not None and _object(approval, (*loc, "approval"), APPROVAL_KEYS, out):
        if "expires_in" in approval:
            _integer(approval["expires_in"], (*loc, "approval", "expires_in"), 1, MAX_SECONDS, out)
        if "approver_group" in approval and not valid_approver_group(approval["approver_group"]):
            out.append(((*loc, "approval", "approver_group"), BAD_GROUP))
        if "quorum" in approval:
            _integer(approval["quorum"], (*loc, "approval", "quorum"), 1, MAX_QUORUM, out)
        if entry.get("action") in ACTIONS and entry["action"] != "require_approval":
            out.append(((*loc, "approval"), "only valid with the action require_approval"))
    return out


def _classes(value: Any, loc: Loc, out: list[Fault]) -> None:
    if not isinstance(value, list):
        out.append((loc, f"must be a list, not {_type_name(value)}"))
        return
    for index, cls in enumerate(value):
        if cls not in RISK_CLASSES:
            out.append(((*loc, index), "must be one of " + ", ".join(RISK_CLASSES)))
    named = [cls for cls in value if isinstance(cls, str)]
    if len(set(named)) != len(named):
        out.append((loc, "lists a class twice"))


def override_faults(entry: Any, loc: Loc = ()) -> list[Fault]:
    """The faults of one entry of ``risk.overrides``."""
    out: list[Fault] = []
    if not _object(entry, loc, OVERRIDE_KEYS, out):
        return out
    for key in ("server", "tool", "class"):
        if key not in entry:
            out.append(((*loc, key), "Field required"))
    if "server" in entry and not valid_server_name(entry["server"]):
        out.append(((*loc, "server"), BAD_SERVER))
    if "tool" in entry and not valid_tool_name(entry["tool"]):
        out.append(((*loc, "tool"), BAD_TOOL))
    if "class" in entry and entry["class"] not in RISK_CLASSES:
        out.append(((*loc, "class"), "must be one of " + ", ".join(RISK_CLASSES)))
    _reason(entry, loc, out)
    return out


def _risk_faults(risk: Any, out: list[Fault]) -> None:
    loc: Loc = ("risk",)
    if not _object(risk, loc, RISK_KEYS, out):
        return
    if "require_approval" in risk:
        _classes(risk["require_approval"], (*loc, "require_approval"), out)
    servers = risk.get("servers", {})
    if _object(servers, (*loc, "servers"), None, out):
        for name, entry in servers.items():
            at = (*loc, "servers", name)
            if not valid_server_name(name):
                out.append((at, BAD_SERVER))
            if _object(entry, at, ("require_approval",), out):
                if "require_approval" not in entry:
                    out.append(((*at, "require_approval"), "Field required"))
                else:
                    _classes(entry["require_approval"], (*at, "require_approval"), out)
    overrides = risk.get("overrides", [])
    if not isinstance(overrides, list):
        out.append(((*loc, "overrides"), f"must be a list, not {_type_name(overrides)}"))
        return
    seen: set[tuple[Any, Any]] = set()
    for index, entry in enumerate(overrides):
        at = (*loc, "overrides", index)
        faults = override_faults(entry, at)
        out.extend(faults)
        if faults:
            continue
        key = (entry["server"], entry["tool"])
        if key in seen:
            out.append((at, f"a second override for {entry['tool']} of {entry['server']}"))
        seen.add(key)


def _approvers_faults(approvers: Any, out: list[Fault]) -> None:
    """``approvers``: {group: [names]}, the embedded store's approver groups (Odoo keeps its
    approvers as members of its own groups)."""
    if not _object(approvers, ("approvers",), None, out):
        return
    for group, names in approvers.items():
        at = ("approvers", group)
        if not valid_approver_group(group):
            out.append((at, BAD_GROUP))
        if not isinstance(names, list):
            out.append((at, f"must be a list, not {_type_name(names)}"))
            continue
        if not 1 <= len(names) <= MAX_APPROVERS:
            out.append((at, f"must list 1 to {MAX_APPROVERS} names"))
        for index, name in enumerate(names):
            if (
                not isinstance(name, str)
                or not name.strip()
                or len(name) > MAX_APPROVER_NAME
                or not name.isprintable()
            ):
                why = f"must be a printable name of 1 to {MAX_APPROVER_NAME} characters"
                out.append(((*at, index), why))
            elif (problem := check_decider(name)) is not None:
                # a name no decider can type (mixed scripts: "c\u0430rol"): the group would
                # quietly have fewer voters than it lists (outside round 27)
                out.append(((*at, index), f"no one can approve as {name!a}: {problem}"))


def _people_faults(people: Any, out: list[Fault]) -> None:
    """``people``: {person: [principals]}, who each principal acts for on the embedded store
    (Odoo binds principals to users: res.users.mcp_principals). A person is named once (case
    and width aside), a principal (without its transport prefix, case and width aside: identity.
    principal_key) belongs to one person."""
    if not _object(people, ("people",), None, out):
        return
    if len(people) > MAX_PEOPLE:
        out.append((("people",), f"must list at most {MAX_PEOPLE} persons"))
    persons: dict[str, str] = {}
    owners: dict[str, str] = {}
    for person, principals in people.items():
        at = ("people", person)
        problem = check_identity(person)
        if problem is not None:
            out.append((at, f"not a person's name: {problem}"))
        elif listed_form(person) in persons:
            out.append((at, f"the same person as {persons[listed_form(person)]!r}"))
        else:
            persons[listed_form(person)] = person
        if not isinstance(principals, list):
            out.append((at, f"must be a list, not {_type_name(principals)}"))
            continue
        if not 1 <= len(principals) <= MAX_PRINCIPALS:
            out.append((at, f"must list 1 to {MAX_PRINCIPALS} principals"))
        for index, principal in enumerate(principals):
            problem = check_identity(principal)
            if problem is not None:
                out.append(((*at, index), f"not a principal: {problem}"))
                continue
            form = principal_form(principal)
            key = principal_key(principal)  # the form it is matched in (case, width aside)
            if not form or not key:
                out.append(((*at, index), "not a principal: nothing after its transport prefix"))
            elif owners.get(key, person) != person:
                out.append(((*at, index), f"{form!r} is already listed for {owners[key]!r}"))
            else:
                owners[key] = person


def policy_size(document: Any) -> int:
    """THE size of a policy document, one measure for both halves: the bytes of its canonical
    JSON (UTF-8, ``canonical_json``). The front-end loads Odoo's answer as exactly this text,
    and Odoo measures every document it would serve the same way, so Odoo never stores a
    policy that the front-end refuses as too large (an emoji is 4 bytes here, on both sides,
    not the 12 of an ASCII escape)."""
    return len(canonical_json(document).encode("utf-8", "surrogatepass"))


def size_fault(document: Any) -> Fault | None:
    """The fault of a document larger than MAX_POLICY_BYTES (see ``policy_size``), or None
    (also for a value that is not JSON at all: its other faults say what is wrong)."""
    try:
        size = policy_size(document)
    except (TypeError, ValueError, RecursionError):
        return None
    if size <= MAX_POLICY_BYTES:
        return None
    return (
        (),
        f"the policy is {size} bytes as canonical JSON (UTF-8), "
        f"more than the {MAX_POLICY_BYTES} allowed",
    )


def policy_faults(document: Any) -> list[Fault]:
    """Every fault of a parsed policy document, each with its location; [] when it is valid."""
    out: list[Fault] = []
    if not isinstance(document, dict):
        return [((), f"the policy must be a JSON object, not {_type_name(document)}")]
    too_large = size_fault(document)
    if too_large is not None:
        out.append(too_large)
    out.extend(((key,), "unknown key") for key in document if key not in TOP_KEYS)
    if "version" not in document:
        out.append((("version",), "Field required"))
    elif document["version"] != "1":
        out.append((("version",), 'must be the string "1"'))
    if "default" in document and document["default"] not in ACTIONS:
        out.append((("default",), "must be one of " + ", ".join(ACTIONS)))
    hide = document.get("hide", [])
    if not isinstance(hide, list):
        out.append((("hide",), f"must be a list, not {_type_name(hide)}"))
    else:
        out.extend(
            (("hide", index), BAD_PATTERN)
            for index, name in enumerate(hide)
            if not isinstance(name, str) or not TOOL_PATTERN_RE.fullmatch(name)
        )
    rules = document.get("rules", {})
    if _object(rules, ("rules",), None, out):
        for key, entry in rules.items():
            out.extend(rule_faults(key, entry, ("rules", key)))
    if document.get("risk") is not None:
        _risk_faults(document["risk"], out)
    if "approvers" in document:
        _approvers_faults(document["approvers"], out)
    if "people" in document:
        _people_faults(document["people"], out)
    return out


def check_policy(document: Any) -> dict[str, Any]:
    """``document`` if it is a valid policy, else PolicyFault naming the path of each fault."""
    faults = policy_faults(document)
    if faults:
        raise PolicyFault([f"{json_path(loc)}: {message}" for loc, message in faults])
    return document


# --- parsing JSON text, with the line of every fault -----------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where ``pattern`` ends at ``pos`` (on text ``json.loads`` accepted, it matches)."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


class _Locator:
    """Walks JSON text that ``json.loads`` accepted, noting the line of every value and
    refusing duplicate keys (a second ``"odoo_disconnect"`` must not silently win)."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int]] = []
        self._value(0, ())

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def _ws(self, pos: int) -> int:
        return _match_end(_WS, self.text, pos)

    def _value(self, pos: int, path: Loc) -> int:
        text = self.text
        pos = self._ws(pos)
        self.lines.setdefault(path, self.line(pos))
        char = text[pos]
        if char == "{":
            seen: set[str] = set()
            pos = self._ws(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                pos = self._ws(pos)
                key_pos = pos
                key, pos = scanstring(text, pos + 1)
                if key in seen:
                    self.duplicates.append(((*path, key), self.line(key_pos)))
                seen.add(key)
                pos = self._ws(pos) + 1  # the colon
                pos = self._ws(self._value(pos, (*path, key)))
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1
        if char == "[":
            index = 0
            pos = self._ws(pos + 1)
            if text[pos] == "]":
                return pos + 1
            while True:
                pos = self._ws(self._value(pos, (*path, index)))
                index += 1
                if text[pos] == ",":
                    pos += 1
                    continue
                return pos + 1
        if char == '"':
            return scanstring(text, pos + 1)[1]
        for literal in ("true", "false", "null", "NaN", "Infinity", "-Infinity"):
            if text.startswith(literal, pos):
                return pos + len(literal)
        return _match_end(_NUMBER, text, pos)

    def line_of(self, loc: Loc) -> int:
        # A missing field has no line of its own: report the object that lacks it.
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)


class _BadNumber:
    """A number JSON allows but a policy cannot hold; reported with its line and path."""

    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why

    @staticmethod
    def constant(name: str) -> _BadNumber:
        return _BadNumber(f"{name} is not a number a policy can hold (JSON has no {name})")

    @staticmethod
    def integer(digits: str) -> int | _BadNumber:
        if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
            return _BadNumber(f"a number of {len(digits.lstrip('-'))} digits is too long")
        return int(digits)

    @staticmethod
    def real(digits: str) -> float | _BadNumber:
        value = float(digits)
        if len(digits) > MAX_NUMBER_DIGITS * 3 or not math.isfinite(value):
            return _BadNumber(f"{digits[:20]}{'…' if len(digits) > 20 else ''} is out of range")
        return value


def _bad_numbers(data: Any) -> list[tuple[Loc, _BadNumber]]:
    """Every ``_BadNumber`` in the parsed document, with its path (iteratively: no depth limit)."""
    found: list[tuple[Loc, _BadNumber]] = []
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _BadNumber):
            found.append((path, value))
        elif isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(value))))
    return found


def _parse(text: str) -> tuple[Any, _Locator, list[str], list[tuple[Loc, _BadNumber]]]:
    """The JSON value of ``text``, its locator, its duplicate keys (as faults with their line)
    and its bad numbers. Text that is not JSON, or too large, raises PolicyFault."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyFault([f"line 1: $: the policy is larger than {MAX_POLICY_BYTES} bytes"])
    try:
        data = json.loads(
            text,
            parse_constant=_BadNumber.constant,
            parse_int=_BadNumber.integer,
            parse_float=_BadNumber.real,
        )
        locator = _Locator(text)
    except json.JSONDecodeError as exc:
        raise PolicyFault(
            [f"line {exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"]
        ) from None
    except RecursionError:
        raise PolicyFault(["line 1: $: the document is nested too deeply"]) from None
    # a duplicate is reported at the second key, every other fault at its value
    duplicates = [
        f"line {line}: {json_path(loc)}: duplicate key" for loc, line in locator.duplicates
    ]
    return data, locator, duplicates, _bad_numbers(data)


def parse_json_text(text: str) -> Any:
    """JSON text as a value, refusing (PolicyFault, with lines) what ``load_policy_text``
    refuses before validation: invalid JSON, duplicate keys, NaN/Infinity, huge numbers."""
    data, locator, faults, bad_numbers = _parse(text)
    faults += [f"line {locator.line_of(loc)}: {json_path(loc)}: {b.why}" for loc, b in bad_numbers]
    if faults:
        raise PolicyFault(faults)
    return data


def load_policy_text(text: str) -> dict[str, Any]:
    """Parse and validate a policy document; PolicyFault names each fault's line and path."""
    data, locator, faults, bad_numbers = _parse(text)
    found = [(loc, bad.why) for loc, bad in bad_numbers] or policy_faults(data)
    faults += [f"line {locator.line_of(loc)}: {json_path(loc)}: {why}" for loc, why in found]
    if faults:
        raise PolicyFault(faults)
    return data


# --- matching and the decision ---------------------------------------------------------------


class RateLimit(NamedTuple):
    max: int
    window: float


class Verdict(NamedTuple):
    """The decision for one tool. ``rule``: the rule key that matched, None for the default;
    ``risk_class``/``risk_reason``: the class the decision was taken with, if any;
    ``raised``: the class turned the rule's ``allow`` into ``require_approval``."""

    tool: str
    action: Action
    hidden: bool
    reason: str | None
    rate_limit: RateLimit | None
    expires_in: int
    rule: str | None
    risk_class: RiskClass | None
    risk_reason: str | None
    raised: bool
    approver_group: str = DEFAULT_APPROVER_GROUP
    quorum: int = 1
    binding: str = ""


class ApprovalTerms(NamedTuple):
    """What an approval given under a rule is bound to: who decides (``approver_group``), how
    many distinct approvers (``quorum``), and ``binding``, the SHA-256 of the rule's key,
    action, approver group and quorum, and of what else decides whether and how long it holds:
    whether the tool is hidden, and the rule's approval lifetime (``expires_in``; each only
    when it is not the default, so that a binding of a rule without them is what it always
    was, and both halves, whichever writes the default out, bind the same). An approval is
    used only while ``binding`` is unchanged: a rule changed since refuses it (both halves,
    ``CompiledPolicy.terms``)."""

    approver_group: str
    quorum: int
    binding: str


def approval_terms(
    key: str | None, rule: dict[str, Any] | None, default: str, hidden: bool = False
) -> ApprovalTerms:
    """The terms of the rule ``key`` (None: the document's ``default`` decides), for a tool
    the policy hides (``hidden``) or not."""
    approval = (rule or {}).get("approval") or {}
    action = rule["action"] if rule is not None else default
    group = approval.get("approver_group", DEFAULT_APPROVER_GROUP)
    quorum = approval.get("quorum", 1)
    bound: dict[str, Any] = {
        "rule": key,
        "action": action,
        "approver_group": group,
        "quorum": quorum,
    }
    if hidden:
        bound["hidden"] = True
    # the lifetime in force (the default when none is set, which a reader may also write out)
    expires_in = approval.get("expires_in") or DEFAULT_EXPIRES_IN
    if expires_in != DEFAULT_EXPIRES_IN:
        bound["expires_in"] = expires_in
    return ApprovalTerms(group, quorum, hashlib.sha256(canonical_bytes(bound)).hexdigest())


class GatingTerms(NamedTuple):
    """Who decides a call that passes several rules (a replacement is also a removal,
    DESIGN.md invariant 11): ``approver_groups``, every gating rule's group in order without
    repeats (an approver must be in each: the stricter), the largest ``quorum``, the shortest
    lifetime ``expires_in``; ``refusal``: why no request can be filed for it, or None."""

    approver_groups: tuple[str, ...]
    quorum: int
    expires_in: int
    refusal: str | None


def gating_terms(verdicts: Sequence[Any]) -> GatingTerms:
    """The terms of an approval for a call deciding ``verdicts`` (its own first, then what it
    also does; ``Verdict`` or the front-end's ``Decision``), the one rule of both halves. A
    request stands only while every rule it passes lets it: one that hides or denies its tool
    refuses it; none requiring approval leaves nothing to approve (the call runs without one)."""
    refusal = None
    for verdict in verdicts:
        if verdict.hidden:
            refusal = f"'{verdict.tool}' is hidden by the policy"
        elif verdict.action == "deny":
            refusal = f"the policy denies '{verdict.tool}'"
        if refusal:
            break
    gating = [verdict for verdict in verdicts if verdict.action == "require_approval"]
    if refusal is None and not gating:
        refusal = (
            f"the policy allows '{verdicts[0].tool}' without approval: there is nothing to approve"
            if verdicts
            else "no rule to approve under"
        )
    rules = gating or list(verdicts[:1])
    groups = tuple(dict.fromkeys(verdict.approver_group for verdict in rules))
    return GatingTerms(
        groups or (DEFAULT_APPROVER_GROUP,),
        max((verdict.quorum for verdict in rules), default=1),
        min((verdict.expires_in for verdict in rules), default=DEFAULT_EXPIRES_IN),
        refusal,
    )


class CompiledPolicy:
    """A valid policy document (``check_policy``), ready to decide. ``decide`` is pure."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.default: Action = document.get("default", DEFAULT_ACTION)
        rules: dict[str, dict[str, Any]] = document.get("rules", {})
        self.rules = rules
        self.exact = {key: rule for key, rule in rules.items() if not is_glob(key)}
        # The longest glob is the most specific; ties are broken by name to stay deterministic.
        self.globs = sorted(
            ((key, rule) for key, rule in rules.items() if is_glob(key)),
            key=lambda item: (-len(item[0]), item[0]),
        )
        hide = document.get("hide", [])
        self.hide_exact = {name for name in hide if not is_glob(name)}
        self.hide_globs = [name for name in hide if is_glob(name)]
        risk = document.get("risk") or {}
        self.risk_approval = frozenset(risk.get("require_approval", DEFAULT_RISK_APPROVAL))
        self.risk_servers = {
            name: frozenset(entry["require_approval"])
            for name, entry in risk.get("servers", {}).items()
        }
        self.overrides = {(o["server"], o["tool"]): o for o in risk.get("overrides", [])}
        self.approvers: dict[str, list[str]] = document.get("approvers") or {}
        # None: no ``people`` (four-eyes by the names as given); else {person: [principals]}
        self.people: dict[str, list[str]] | None = document.get("people")

    def terms(self, tool: str) -> ApprovalTerms:
        """The approval terms of the rule deciding ``tool`` (its risk class aside)."""
        key, rule = self.rule_for(tool)
        return approval_terms(key, rule, self.default, self.is_hidden(tool))

    def electorate(self, group: str) -> dict[str, Any]:
        """Who may decide a request routed to ``group`` (identity.frozen_electorate), frozen on
        it when filed (the embedded store): the names ``approvers`` lists for it; none listed:
        anyone for the default group, nobody for another."""
        return frozen_electorate(self._members(group), self.people)

    def _members(self, group: str) -> list[str] | None:
        members = self.approvers.get(group)
        if members is None and group != DEFAULT_APPROVER_GROUP:
            members = []
        return members

    def electorate_of(self, groups: Sequence[str]) -> dict[str, Any]:
        """Who may decide a request every one of ``groups`` must decide (``gating_terms``: a
        replacement is also a removal): the names listed in each (``electorate``)."""
        members: list[str] | None = None
        for group in groups:
            listed = self._members(group)
            if listed is None:
                continue
            if members is None:
                members = list(listed)
            else:
                keys = {principal_key(name) for name in listed}
                members = [name for name in members if principal_key(name) in keys]
        return frozen_electorate(members, self.people)

    def is_hidden(self, tool: str) -> bool:
        return tool in self.hide_exact or any(
            fnmatch.fnmatchcase(tool, pattern) for pattern in self.hide_globs
        )

    def rule_for(self, tool: str) -> tuple[str | None, dict[str, Any] | None]:
        """The rule deciding ``tool``: the exact name wins, then the longest glob."""
        rule = self.exact.get(tool)
        if rule is not None:
            return tool, rule
        for key, glob_rule in self.globs:
            if fnmatch.fnmatchcase(tool, key):
                return key, glob_rule
        return None, None

    def approval_classes(self, server: str | None) -> frozenset[str]:
        """The risk classes that need approval on ``server`` when no exact rule names a tool."""
        for name in server_names(server):
            if name in self.risk_servers:
                return self.risk_servers[name]
        return self.risk_approval

    def risk_of(
        self,
        tool: str,
        server: str | None,
        risk_class: RiskClass | None,
        risk_reason: str | None,
    ) -> tuple[RiskClass | None, str | None]:
        """The class a tool is judged by: a Manager's override, else the front-end's own."""
        override = next(
            (
                self.overrides[key]
                for key in ((name, tool) for name in server_names(server))
                if key in self.overrides
            ),
            None,
        )
        if override is None:
            return risk_class, risk_reason
        why = f": {override['reason']}" if override.get("reason") else ""
        return override["class"], f"set by a Manager{why}"

    def decide(
        self,
        tool: str,
        server: str | None = None,
        risk_class: RiskClass | None = None,
        risk_reason: str | None = None,
    ) -> Verdict:
        """The decision for ``tool``; ``risk_class`` is its class in the catalog of ``server``."""
        key, rule = self.rule_for(tool)
        if rule is None:
            action, reason, limit, expires_in = self.default, None, None, None
        else:
            action, reason = rule["action"], rule.get("reason")
            limit = rule.get("rate_limit")
            expires_in = (rule.get("approval") or {}).get("expires_in")
        risk_class, risk_reason = self.risk_of(tool, server, risk_class, risk_reason)
        # A glob or the default never lets a risky tool run unapproved: only an exact rule
        # can (the stricter of the two wins: deny > require_approval > allow).
        raised = (
            risk_class is not None
            and action == "allow"
            and tool not in self.exact
            and risk_class in self.approval_classes(server)
        )
        if raised:
            action = "require_approval"
            reason = (
                f"classified {risk_class} ({risk_reason}); such tools need approval "
                "unless a rule names them"
            )
        terms = approval_terms(key, rule, self.default, self.is_hidden(tool))
        return Verdict(
            tool,
            action,
            self.is_hidden(tool),
            reason,
            RateLimit(limit["max"], limit["window"]) if limit else None,
            expires_in or DEFAULT_EXPIRES_IN,
            key,
            risk_class,
            risk_reason,
            raised,
            terms.approver_group,
            terms.quorum,
            terms.binding,
        )


ALIAS_RULE = "alias must be 1 to 64 characters from A-Z a-z 0-9 _ . -"
MAX_ALIAS_LENGTH = 64


def alias_problem(alias: object) -> str | None:
    """Why ``alias`` cannot name a connection, in one line naming the first character outside
    the alphabet (a zero-width space, a bidi override, a space), or None. The one alias rule
    of both halves: odoo_connect's arguments (front-end) and mcp.connection (add-on)."""
    if not isinstance(alias, str) or not alias:
        return ALIAS_RULE
    if len(alias) > MAX_ALIAS_LENGTH:
        return f"{ALIAS_RULE} (it has {len(alias)})"
    bad = next((ch for ch in alias if not TOOL_NAME_RE.fullmatch(ch)), None)
    return None if bad is None else f"{ALIAS_RULE} (it contains {bad!a})"


# Letters that show nothing (Hangul fillers): an upstream may drop them as it drops a
# zero-width space (outside round 26: "pr\u3164od" written over prod).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def fold_alias(alias: str) -> str:
    """The form in which two connection aliases name the same connection for the matching of
    what a change puts at stake: compatibility-decomposed (NFKD: "prod\u2122" is "prodtm",
    "pro\u0301d" "prod"), case-folded, and its letters and digits alone: no invisible
    characters, controls, spaces, punctuation, symbols or combining marks (an upstream may
    normalise the alias it is given, as odoo-claude-mcp's admin API does with
    ``alias.strip().lower()``; outside rounds 25 and 26). Matching over-approximates: any
    alias that folds equal is the requested one's (fail closed)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", alias).casefold())
    return "".join(
        ch for ch in folded if unicodedata.category(ch)[0] in "LN" and ch not in _BLANK_LETTERS
    )


def alias_form_kinds(text: str) -> tuple[str, str, str]:
    """The folded forms by which ``text`` may name a connection, by kind (each may be ""):
    ``fold_alias`` of it; of it without its characters outside ASCII (an upstream may drop
    them: "prod\u00b2" is "prod2" folded, "prod" so); and of its TR39 confusable skeleton (an
    upstream may read look-alike letters as the Latin ones: "pr\u03bfd" with a Greek omicron
    is "prod"; outside round 27)."""
    folded = fold_alias(text)
    ascii_only = "".join(ch for ch in text if ch.isascii())
    return folded, fold_alias(ascii_only), fold_alias(skeleton(folded))


def alias_forms(text: str) -> frozenset[str]:
    """The folded forms of ``alias_form_kinds``: two aliases name the same connection when
    their forms meet."""
    return frozenset(form for form in alias_form_kinds(text) if form)


URL_CREDENTIALS_MESSAGE = (
    "url must not contain credentials (user:password@host): put them in password or api_key"
)


def url_has_credentials(url: str) -> bool:
    """Whether a URL carries credentials: userinfo (``scheme://user:pw@host``, also
    scheme-relative ``//user:pw@host``; for a special scheme, http, https, ws, wss, ftp, read
    as a WHATWG parser reads it: ``https:/user:pw@host``, ``https:user:pw@host``,
    ``https:\\\\user:pw@host``), a secret query or fragment parameter (``?key=...``,
    ``?X-Amz-Signature=...``, ``#access_token=...``: is_secret_query_key), or a path, query or
    fragment that the redaction masks. The front-end and the add-on refuse such a URL, which
    would otherwise be shown in clear wherever the URL is: one rule with the redaction, so what
    it would hide is never stored. (The host and port are not judged as key=value text.)"""
    # read as the redaction reads it, through its NFKC form: "u:pw\uff20host" (a fullwidth
    # "@") is "u:pw@host" to a person and to the redaction (attack 17, finding 1)
    url = unicodedata.normalize("NFKC", url)
    # a WHATWG parser drops tabs and newlines anywhere, C0 controls and spaces at the ends
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21))))
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url)
    if scheme and scheme.group(1).lower() in _SPECIAL_SCHEMES:
        rest, stops = url[scheme.end() :].lstrip("/\\"), "/\\?#"
    else:
        _scheme, sep, rest = url.partition("://")
        rest, stops = (rest if sep else url.lstrip("/\\")), "/?#"
    if "@" in rest:
        # userinfo as some reader takes it: Python's urlsplit ("http://u:p\\@h", the
        # authority ends at "/" only), or one reading to the last "@" ("http://u:Pa/ss@h")
        return True
    cut = min((i for i in map(rest.find, stops) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority or redact_text(tail) != tail:
        return True
    # the query's and the fragment's parameters (what follows the path's first "?" or "#")
    params = (part.partition("=") for part in re.split(r"[?&;#]", tail)[1:])
    return any(value and is_secret_query_key(key) for key, _eq, value in params)


# A segment of a URL's path plainly not a credential: words (letters in one case or
# capitalised), a version ("v2"), a short number (a date's parts, a page), joined by "-", "_"
# or "." ("odoo-mcp", "2024-11-05", "sse.json"). Any other segment may be an access token, as
# hosted MCP servers take one ("https://mcp.example.com/t/TOKEN/mcp"): letters and digits
# mixed, a UUID, anything encoded.
_PLAIN_PATH_PART = r"(?:[a-z]{1,20}|[A-Z][a-z]{0,19}|[A-Z]{1,8}|v\d{1,4}|\d{1,8})"
_PLAIN_PATH_SEGMENT = re.compile(rf"{_PLAIN_PATH_PART}(?:[\-_.]{_PLAIN_PATH_PART})*")
# An http(s) URL in a text (a message quoting where an upstream redirects to), without the
# punctuation that ends a sentence after it.
_HTTP_URL = re.compile(r"""(?i)(?<![\w.+\-])https?://[^\s"'<>]*[^\s"'<>.,;:!?)\]]""")


# A segment that names a credential: the one after it may be one even in letters alone
# ("/api/token/qwertyuiopasdfgh/mcp", "/key/ABCDEFGHIJKLMNOP"): LETTERS_TOKEN letters or more
# in one word ("/auth/login", "/token/refresh" are words).
_SECRET_PATH_SEGMENTS = frozenset(
    {"token", "tokens", "key", "keys", "secret", "secrets", "password", "passwords"}
    | {"apikey", "api_key", "api-key", "apikeys", "auth", "access_token", "access-token"}
)
LETTERS_TOKEN = 12


def _plain_path_segment(segment: str, after: str = "") -> bool:
    """``segment`` plainly no credential (_PLAIN_PATH_SEGMENT); ``after``: the segment
    before it, which when it names a credential makes a long word of letters one."""
    if (
        after.lower() in _SECRET_PATH_SEGMENTS
        and segment.isalpha()
        and len(segment) >= LETTERS_TOKEN
    ):
        return False
    return not segment or (
        _PLAIN_PATH_SEGMENT.fullmatch(segment) is not None
        and not _TOKEN_SHAPES.search(segment)
        and redact_text(segment) == segment
    )


def _path_shown(path: str) -> list[tuple[str, bool]]:
    """A URL path's segments, each with whether it is plainly no credential."""
    segments = path.split("/")
    befores = ["", *map(unquote, segments[:-1])]
    return [
        (segment, _plain_path_segment(segment, before))
        for segment, before in zip(segments, befores, strict=True)
    ]


def url_path_secrets(url: str) -> tuple[str, ...]:
    """The segments of a URL's path that may be credentials (all but those plainly not one:
    _PLAIN_PATH_SEGMENT), as written and decoded: known secrets of whoever was given it."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ()
    found = {
        form
        for segment, plain in _path_shown(path)
        if not plain
        for form in (segment, unquote(segment))
    }
    return tuple(sorted(found))


def display_url(url: str) -> str:
    """A URL as it may be shown: scheme://host:port and its path, each segment that may be a
    credential (url_path_secrets) as ``***``; no userinfo; a query and a fragment as ``***``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return REDACTED
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    path = "/".join(segment if plain else REDACTED for segment, plain in _path_shown(parts.path))
    shown = f"{parts.scheme}://{host}{'' if port is None else f':{port}'}{path}"
    return (
        shown + ("?" + REDACTED if parts.query else "") + ("#" + REDACTED if parts.fragment else "")
    )


def hide_url_paths(text: str) -> str:
    """``text`` with every http(s) URL in it shown as display_url shows it."""
    return _HTTP_URL.sub(lambda match: display_url(match.group()), text)
