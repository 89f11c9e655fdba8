"""Files the operator's commands write: atomic replacement and one lock per folder.

Workers read key files and the settings file while commands write them, so a reader must see
the old file or the whole new one, never a part (temp file, fsync, rename, fsync the folder);
two commands writing the same folder at once run one after the other (an flock on the folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("jwtauth")

# A writer's temp file is `.<target name>.<random>.tmp`: hidden, and never `*.json` or `*.toml`.
TEMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder (not a file in it, whose inode a rename replaces)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` with `data`: readers see the old file or the whole new one, even after a crash."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)


def remove_orphans(folder: Path) -> None:
    """Delete temp files left by a writer that died; call only with the folder lock held."""
    # Every writer holds the lock, so while we hold it no temp file belongs to a live writer.
    for path in folder.glob(f".*{TEMP_SUFFIX}"):
        log.warning("removing %s, left by an interrupted write", path)
        path.unlink(missing_ok=True)
