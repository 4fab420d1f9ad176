"""Reading a file an operator names (a policy, a connections export): a regular file only,
bounded, and without ever waiting on it (a FIFO or a device never stalls the guard)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileReadError(OSError):
    """A file that is not read: one line saying why."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, if it is a regular file of at most ``limit`` bytes."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(
                "not a regular file (a directory, FIFO, socket or device is not read)"
            )
        if info.st_size > limit:
            raise FileReadError(f"the file is larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:  # the file may grow while it is read: stop past the limit
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except FileReadError:
        raise
    except OSError as exc:
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileReadError(f"the file is larger than {limit} bytes")
    return b"".join(chunks)
