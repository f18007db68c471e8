"""Files read only when they are files, and written whole or not at all.

A device, a pipe or a folder where a file belongs (`ln -s /dev/zero routing.yaml`, a FIFO, a
replay path mistyped to its folder) was read until memory ran out, waited on for ever, or
failed with a traceback: `read_regular_file` opens without blocking, looks at what it opened
and reads at most a limit.

An export re-run on a full disk, or a process killed while it writes a cache entry, used to
leave half a file where the whole one was: the manager's last good export replaced by a cut
CSV, a matcher cache entry every worker then fails to read. So a file is written beside its
place under a temporary name, flushed to disk, and renamed over it (`os.replace`, atomic on
POSIX and Windows): a reader sees the old file or the new one, never a part. The standard
library has the pieces but no function for this, and one small function is less than a
dependency for it.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

_NOT_FILES = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISSOCK, "a socket"))


class NotARegularFile(OSError):
    """A device, pipe or socket where a file was expected; `strerror` says which."""


@contextmanager
def open_regular_file(path: Path) -> Iterator[BinaryIO]:
    """`path` opened for reading without blocking, when it is a regular file. Raises
    IsADirectoryError for a folder, NotARegularFile for anything else that is not a regular
    file, and the OSError of a file that cannot be opened."""
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        kind = next((name for test, name in _NOT_FILES if test(mode)), None)
        if kind is not None:
            raise NotARegularFile(errno.EINVAL, f"not a regular file but {kind}", str(path))
        yield handle


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file at `path` (`open_regular_file`), at most `limit` + 1 of
    them (a caller that set a limit tells a file over it by its length)."""
    with open_regular_file(path) as handle:
        return handle.read() if limit is None else handle.read(limit + 1)


def write_atomically(path: Path, write: Callable[[BinaryIO], None], mode: int | None = None) -> None:
    """Write `path` through `write` (given the open temporary file), all or nothing. The file
    gets `mode`, else the mode of the file it replaces, else what the umask gives a new file
    (a temporary file is made private, 0600; an export should not silently become so). A
    path that is not a regular file (a device such as /dev/stdout, a pipe) is written in
    place, since it cannot be replaced. Raises the OSError of a failed write; the temporary
    file is removed then and the old file is left as it was."""
    path = Path(path)
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, "wb") as out:
            write(out)
        return
    if mode is None:
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o666 & ~_umask()
    tmp_name = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
        tmp_name = None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    current = os.umask(0o022)
    os.umask(current)
    return current
