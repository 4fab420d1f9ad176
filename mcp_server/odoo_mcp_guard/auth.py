"""Bearer tokens for the HTTP transport: each token maps to a principal; only hashes are kept."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from odoo_mcp_guard.files import FileReadError, read_regular_file
from odoo_mcp_guard.names import check_decider, shown

TOKENS_FILENAME = "tokens.json"
TOKENS_ENV = "MCP_GUARD_TOKENS"  # "principal=sha256hex,principal2=sha256hex"
PRINCIPAL_RE = re.compile(r"[A-Za-z0-9_.@:\-]{1,128}", re.ASCII)
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_TOKENS_BYTES = 4 * 1024 * 1024  # far above 10,000 principals


# The principals the guard gives without a token: every client of --allow-anonymous, and the
# stdio client (stdio:<OS user>). A token under one of these would share their approvals.
ANONYMOUS_PRINCIPAL = "anonymous"
STDIO_PREFIX = "stdio:"


def reserved_principal(principal: str) -> str | None:
    """Why a token cannot name ``principal`` (a name the guard gives itself), or None."""
    folded = principal.casefold()
    if folded == ANONYMOUS_PRINCIPAL:
        return "'anonymous' is every client without a token (--allow-anonymous)"
    if folded.startswith(STDIO_PREFIX):
        return "'stdio:' names the local stdio client (stdio:<OS user>)"
    return None


class TokenFile(BaseModel):
    """tokens.json: {"tokens": {"principal": "sha256 hex of the token"}}; nothing else (a file
    of another shape is refused, never read as "no tokens")."""

    model_config = ConfigDict(extra="forbid")

    tokens: dict[str, str] = Field(default_factory=dict)

    @field_validator("tokens")
    @classmethod
    def _entries(cls, tokens: dict[str, str]) -> dict[str, str]:
        for principal, digest in tokens.items():
            if not PRINCIPAL_RE.fullmatch(principal):
                raise ValueError(
                    f"principal {shown(principal)[:80]!r}: use 1-128 of A-Z a-z 0-9 _ . @ : -"
                )
            if not _HEX64.fullmatch(digest):
                raise ValueError(f"{principal}: expected the sha256 hex of its token")
            reserved = reserved_principal(principal)
            if reserved is not None:
                raise ValueError(f"principal {principal!r} is reserved: {reserved}")
        return tokens


class TokenError(ValueError):
    pass


def check_principal(principal: str, where: str) -> None:
    """A principal is compared with approvers: it passes the approvers' own name check (a
    plain name after a transport prefix; "x:alice" would let alice decide her own requests)."""
    problem = check_decider(principal)
    if problem is not None:
        raise TokenError(f"{where} {shown(principal)!r} refused: {problem}")


def check_token_principal(principal: str, where: str) -> None:
    """A principal a token may name: a checked name, not one the guard gives itself."""
    check_principal(principal, where)
    reserved = reserved_principal(principal)
    if reserved is not None:
        raise TokenError(f"{where} {shown(principal)!r} refused: reserved, {reserved}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> TokenFile:
        if not os.path.lexists(self.path):
            return TokenFile()
        try:
            # A FIFO or a device (a symlink to /dev/zero) is refused, never waited on or read
            # without end.
            raw = read_regular_file(self.path, MAX_TOKENS_BYTES)
        except FileReadError as exc:
            raise TokenError(f"{self.path}: the tokens file is refused: {exc}") from None
        try:
            data = TokenFile.model_validate_json(raw)
        except ValidationError as exc:
            raise self._invalid(exc) from None
        # A name approvers cannot be compared with ("x:alice", from before names were checked)
        # is still read: its requests are filed and can never be decided (Guard, stores).
        return data

    def _invalid(self, exc: ValidationError) -> TokenError:
        # One line: the first fault and where (never a token hash: they are not secrets,
        # but a whole pydantic report is no help).
        first = exc.errors()[0]
        where = ".".join(shown(str(part))[:80] for part in first["loc"]) or "the file"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return TokenError(
            f"{self.path}: not a valid tokens file: {where}: {first['msg']}{more}; expected "
            '{"tokens": {"principal": "<sha256 hex>"}}'
        )

    def _env_tokens(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in os.environ.get(TOKENS_ENV, "").split(","))):
            principal, _, digest = item.partition("=")
            if not PRINCIPAL_RE.fullmatch(principal) or not _HEX64.fullmatch(digest):
                raise TokenError(f"{TOKENS_ENV}: expected principal=<sha256 hex>, got {item!r}")
            check_token_principal(principal, TOKENS_ENV)
            if principal in entries:
                raise TokenError(f"{TOKENS_ENV}: {principal} is given twice")
            entries[principal] = digest
        return entries

    def hashes(self) -> dict[str, str]:
        """Principal -> token hash (the environment's entry wins over the file's); one hash
        under two principals is refused: a token names exactly one principal."""
        merged = {**self._read().tokens, **self._env_tokens()}
        owners: dict[str, str] = {}
        for principal, digest in merged.items():
            if digest in owners:
                raise TokenError(
                    f"{TOKENS_ENV} / {self.path}: {owners[digest]} and {principal} have the same "
                    "token (a token names one principal; give each its own)"
                )
            owners[digest] = principal
        return merged

    def principals(self) -> list[str]:
        return sorted(self.hashes())

    def add(self, principal: str) -> str:
        """Create (or replace) the token of a principal; the plaintext is returned once."""
        if not PRINCIPAL_RE.fullmatch(principal):
            raise TokenError(f"invalid principal {principal!r}: use 1-128 of A-Z a-z 0-9 _ . @ : -")
        check_token_principal(principal, "principal")
        token = "mcpg_" + secrets.token_urlsafe(32)
        data = self._read()
        data.tokens[principal] = token_hash(token)
        self._write(data)
        return token

    def remove(self, principal: str) -> bool:
        data = self._read()
        if data.tokens.pop(principal, None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: TokenFile) -> None:
        # Write-then-rename: a crash leaves the old file or the new one, never half of one.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data.model_dump(), handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise TokenError(f"{self.path}: cannot write the tokens file: {exc.strerror}") from None

    def verify(self, token: str) -> str | None:
        """The principal whose token this is, or None. Constant-time on the hash."""
        digest = token_hash(token)
        found = None
        for principal, expected in self.hashes().items():
            if hmac.compare_digest(digest, expected):
                found = principal
        return found
