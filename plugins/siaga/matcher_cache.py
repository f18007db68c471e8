"""Compiled matchers kept on disk, so a process starts tagging in a fraction of a second.

Building the geotagger's automata from 91.6k names takes seconds, and every `siaga` command that
tags and every detect task would pay it again. So the built matcher is pickled once into the
cache folder (`settings.cache_dir()`) under a key that is a fingerprint of everything it was
built from: the bytes of its input files (gazetteer, aliases, roads, hazard lists, abbreviation
table, PySastrawi's word list), the options it was built with, and the code version (every
source file of the `siaga` package, pyahocorasick's binary and the Python version). Change any
of them and the key changes, so the matcher is rebuilt on next use: no invalidation step to
forget, and stale entries are pruned.

Concurrent workers need no lock: a writer pickles into a temporary file in the cache folder and
renames it into place (`files.write_atomically`: `os.replace`, atomic on POSIX and Windows), so a reader sees a whole
entry or none; two workers building the same entry at once both write a valid file and the last
rename wins. A file that cannot be read back (truncated, corrupt, from an incompatible library)
is treated as missing: rebuilt and replaced, never a crash. A cache folder that cannot be written
only costs the speed. The folder must be writable by the service's user alone, as any place code
is loaded from: unpickling runs code.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from siaga.collector import LOADING_GEN0, fewer_collections
from siaga.files import NotARegularFile, open_regular_file, read_regular_file, write_atomically

log = logging.getLogger(__name__)

T = TypeVar("T")
# Entries of one kind kept besides the one in use (another deployment's config, a backtest's
# candidate lists); older ones are deleted when a new entry is written.
KEEP_PER_KIND = 8
_FORMAT = 1  # bump when the layout of an entry changes
_PACKAGE_DIR = Path(__file__).resolve().parent


def digest_files(paths: Iterable[Path], into: "hashlib._Hash | None" = None) -> "hashlib._Hash":
    """sha256 over the names and bytes of `paths` (a missing file counts as missing, not as an
    error: the loader that reads it reports that)."""
    h = into or hashlib.sha256()
    for path in paths:
        path = Path(path)
        h.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
        try:
            # read only when a regular file, a piece at a time: a device or a pipe in a config
            # file's place (aliases.yaml -> /dev/zero, a FIFO) was read until memory ran out, or
            # for ever, before its loader could refuse it
            with open_regular_file(path) as handle:
                for piece in iter(lambda: handle.read(1 << 20), b""):
                    h.update(piece)
        except (NotARegularFile, IsADirectoryError):
            h.update(b"\0(not a regular file)")
        except OSError:
            h.update(b"\0(missing)")
        h.update(b"\0\0")
    return h


_CODE_VERSION: str | None = None


def code_version() -> str:
    """A fingerprint of the code a cached matcher was built by: the `siaga` package's sources
    (any of them may change how a matcher is built or what it holds), pyahocorasick's binary
    and the Python version (the pickle format of both)."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import ahocorasick

        sources = sorted(p for p in _PACKAGE_DIR.rglob("*") if p.suffix in (".py", ".json") and p.is_file())
        h = digest_files(sources)
        h.update(sys.version.encode())
        digest_files([Path(ahocorasick.__file__)], h)
        _CODE_VERSION = h.hexdigest()
    return _CODE_VERSION


def fingerprint(kind: str, files: Iterable[Path], options: Any = None) -> str:
    """The cache key of a matcher of `kind` built from `files` with `options` by this code."""
    h = hashlib.sha256(f"{kind}\0{_FORMAT}\0{code_version()}\0{options!r}\0".encode("utf-8", "surrogateescape"))
    return digest_files(files, h).hexdigest()


def entry_path(kind: str, key: str, directory: Path | None = None) -> Path:
    from siaga.settings import cache_dir

    return Path(directory or cache_dir()) / f"{kind}-{key[:32]}.pickle"


def load(kind: str, key: str, directory: Path | None = None) -> Any | None:
    """The object cached under (kind, key), or None when there is none or it cannot be read."""
    path = entry_path(kind, key, directory)
    try:
        # tens of thousands of objects, all long-lived: no collector pass while they arrive
        with open(path, "rb") as handle, fewer_collections(LOADING_GEN0):
            stored_key, value = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 -- truncated, corrupt or incompatible: rebuild it
        log.warning("matcher cache %s unreadable (%s: %s); rebuilding it", path, type(exc).__name__, exc)
        return None
    if stored_key != key:
        log.warning("matcher cache %s holds another key; rebuilding it", path)
        return None
    return value


def store(kind: str, key: str, value: Any, directory: Path | None = None) -> Path | None:
    """Write `value` under (kind, key) atomically; None (and a warning) if the folder cannot be
    written. Older entries of the same kind beyond KEEP_PER_KIND are deleted."""
    path = entry_path(kind, key, directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda out: pickle.dump((key, value), out, protocol=pickle.HIGHEST_PROTOCOL), mode=0o600)
    except OSError as exc:
        log.warning("matcher cache %s not written (%s); matchers are rebuilt by each process", path, exc)
        return None
    _prune(path.parent, kind, keep=path)
    return path


# The last good copy of a config file a matcher is built from, beside the entries: the alias
# file is read by every process that tags, with or without a database (`siaga tag`), so its last
# good version is kept here rather than with the other config files' (`siaga.last_good`).
LAST_GOOD = "last-good"


def file_bytes(path: Path) -> bytes | None:
    """The bytes of the file at `path`, None when it cannot be read (`keep_last_good`)."""
    try:
        return read_regular_file(Path(path))
    except OSError:
        return None


def keep_last_good(path: Path, validated: bytes | None, directory: Path | None = None) -> None:
    """Keep a copy of `path`, a file a matcher was just built or loaded from (so it is valid),
    unless the copy already holds the same bytes. `validated` is the file as read before the
    matcher was made: only when the file still holds exactly those bytes are they what the
    matcher was made from. A file read again afterwards could be an operator's next save (a
    typo) and became the "last good" copy: with the file and its copy both refused, every
    detect run failed. Written as entries are, atomically; a folder that cannot be written
    only costs the fallback."""
    copy = last_good_path(Path(path).name, directory)
    try:
        data = read_regular_file(Path(path))
        if validated is None or data != validated:
            log.warning("%s changed while its matcher was made: its last good copy is left as it was", path)
            return
        if copy.is_file() and copy.read_bytes() == data:
            return
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(copy, lambda out: out.write(data), mode=0o600)
    except OSError as exc:
        log.warning("last good copy of %s not kept (%s)", path, exc)


def last_good_path(name: str, directory: Path | None = None) -> Path:
    """Where the last good copy of the file called `name` is kept (it may not exist)."""
    from siaga.settings import cache_dir

    return Path(directory or cache_dir()) / LAST_GOOD / name


def _prune(directory: Path, kind: str, keep: Path) -> None:
    try:
        others = [p for p in directory.glob(f"{kind}-*.pickle") if p != keep]
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in others[KEEP_PER_KIND:]:
            old.unlink(missing_ok=True)
    except OSError:  # another worker pruned first: nothing to do
        pass


def cached(kind: str, key: str, build: Callable[[], T], directory: Path | None = None) -> T:
    """The matcher under (kind, key) from the cache, else `build()` it and cache it.

    A matcher just built is returned as read back from its entry, the form every later process
    loads: the built object still holds what building it needed (the gazetteer's 91.6k outside
    places as objects, about 60 MB more with the national list), which its pickled form packs.
    The built one is dropped first, so the two are never held at once (issue 14: a detect task
    on a cold cache stays under its memory budget)."""
    value = load(kind, key, directory)
    if value is None:
        value = build()
        if store(kind, key, value, directory) is not None:
            del value
            value = load(kind, key, directory)
            if value is None:  # the entry vanished or was unreadable right after writing it
                value = build()
    return value
