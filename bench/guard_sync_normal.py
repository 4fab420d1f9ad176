"""``odoo-mcp-guard`` with its SQLite store at ``synchronous=NORMAL`` (a what-if for the
benchmark only): in WAL mode a commit then survives a kill -9 of the process but not
necessarily a power loss, and the per-call audit write no longer waits for an fsync."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mcp_server"))

from odoo_mcp_guard import cli, store

_init = store.Store.__init__


def _init_normal(self: store.Store, path: Path) -> None:
    _init(self, path)
    self._db.execute("PRAGMA synchronous=NORMAL")


store.Store.__init__ = _init_normal  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(cli.main())
