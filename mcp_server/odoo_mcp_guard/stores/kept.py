"""Audit events the store could not take before the guard exited (locked past
MCP_GUARD_STORE_BUSY_SECONDS, down): kept in a file of the data directory, written
atomically, and written to the store at the next start of anything that opens it
(idempotent: an event is stored once by its uuid). Invariant 7: never dropped silently."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from odoo_mcp_guard.files import FileReadError, read_regular_file
from odoo_mcp_guard.policy_core import redact_text
from odoo_mcp_guard.stores.models import AuditEvent

log = logging.getLogger(__name__)

KEPT_FILENAME = "audit-kept.jsonl"
KEPT_LIMIT = 64 * 1024 * 1024  # bytes read back; a larger file is left for the operator


def kept_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEPT_FILENAME


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """One process at a time adds to or replays the kept file (two guards exiting at once
    lose nothing; a replay does not remove events kept while it ran)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks here: one guard per data directory
        yield
        return
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(data_dir) / (KEPT_FILENAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(path: Path) -> list[AuditEvent]:
    raw = read_regular_file(path, KEPT_LIMIT)
    events = []
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            events.append(AuditEvent.model_validate_json(line))
    return events


def save_kept(data_dir: Path, events: Sequence[AuditEvent]) -> Path:
    """Add ``events`` to the kept file (write-then-rename: a crash leaves the old file or the
    new one, never half of one). Raises OSError if it cannot be written."""
    with _exclusive(data_dir):
        return _save(data_dir, events)


def _save(data_dir: Path, events: Sequence[AuditEvent]) -> Path:
    path = kept_path(data_dir)
    earlier: list[AuditEvent] = []
    if os.path.lexists(path):
        try:
            earlier = _read(path)
        except (FileReadError, ValueError) as exc:
            raise OSError(f"cannot read the kept audit file {path}: {exc}") from None
    seen = {event.uuid for event in earlier}
    lines = [e.model_dump_json() for e in [*earlier, *(e for e in events if e.uuid not in seen)]]
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".audit-kept-", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path


def replay_kept(data_dir: Path, append: Callable[[AuditEvent], None]) -> int:
    """Write the events kept by an earlier run (if any) with ``append``, then remove the file;
    one log line either way. Returns how many were written. Never raises: a store that still
    cannot take them leaves the file for the next start."""
    if not os.path.lexists(kept_path(data_dir)):
        return 0
    try:
        with _exclusive(data_dir):
            return _replay(data_dir, append)
    except OSError as exc:
        log.error("audit events kept in %s not written yet: %s", kept_path(data_dir), exc)
        return 0


def _replay(data_dir: Path, append: Callable[[AuditEvent], None]) -> int:
    path = kept_path(data_dir)
    try:
        if not os.path.lexists(path):
            return 0
        events = _read(path)
    except (OSError, ValueError) as exc:
        log.error("audit events kept in %s not read (left for the operator): %s", path, exc)
        return 0
    try:
        for event in events:
            append(event)  # idempotent: ON CONFLICT (uuid) DO NOTHING
    except Exception as exc:
        log.error(
            "%d audit events kept in %s not written yet (left for the next start): %s",
            len(events),
            path,
            " ".join(redact_text(str(exc) or type(exc).__name__).split())[:300],
        )
        return 0
    try:
        os.unlink(path)
    except OSError as exc:
        log.error("audit events kept in %s written, but the file not removed: %s", path, exc)
    log.warning(
        "%d kept audit events written from %s (the store takes them now)", len(events), path
    )
    return len(events)
