"""Files written whole or not at all (`siaga.files.write_atomically`): what a failed write
leaves is the file from before, never part of the new one."""
from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from siaga.files import write_atomically


class Refused(OSError):
    pass


@settings(max_examples=50, deadline=None)
@given(old=st.binary(max_size=2000), new=st.binary(min_size=1, max_size=5000), fail_after=st.integers(0, 4999))
def test_a_write_that_fails_part_way_leaves_the_old_file_and_no_litter(tmp_path_factory, old, new, fail_after):
    folder = tmp_path_factory.mktemp("w")
    target = folder / "report.csv"
    target.write_bytes(old)

    def write(out):
        out.write(new[:fail_after])
        if fail_after < len(new):
            raise Refused(28, "No space left on device")
        out.write(new[fail_after:])

    if fail_after < len(new):
        with pytest.raises(Refused):
            write_atomically(target, write)
        assert target.read_bytes() == old
    else:
        write_atomically(target, write)
        assert target.read_bytes() == new
    assert [p.name for p in folder.iterdir()] == ["report.csv"]


def test_the_mode_is_the_replaced_file_s_or_the_umask_s(tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    os.chmod(kept, 0o640)
    write_atomically(kept, lambda out: out.write(b"new"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
    old_umask = os.umask(0o027)
    try:
        write_atomically(tmp_path / "fresh.csv", lambda out: out.write(b"x"))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "fresh.csv").stat().st_mode) == 0o640  # not a temporary file's 0600
    write_atomically(tmp_path / "private", lambda out: out.write(b"x"), mode=0o600)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_a_path_that_is_no_regular_file_is_written_in_place(tmp_path):
    """`--out /dev/stdout` or a pipe cannot be replaced by a rename: it is written to."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    write_atomically(fifo, lambda out: out.write(b"through the pipe"))
    assert reader.communicate(timeout=30)[0] == b"through the pipe"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def _limit_file_size() -> None:
    """A file size limit makes every write past it fail with EFBIG, as a full disk fails with
    ENOSPC (without SIGXFSZ, which would kill the process instead)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40, 40))


def test_an_export_that_cannot_be_written_leaves_the_last_one_whole(sqlite_url, tmp_path):
    target = tmp_path / "incidents.csv"
    last = "the export of last week, which a manager still needs\n" * 3
    target.write_text(last)
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "export", "--from", "2026-01-01", "--to", "2026-01-31",
                          "--db", sqlite_url, "--out", str(target)], capture_output=True, text=True, timeout=300,
                         preexec_fn=_limit_file_size)
    assert out.returncode == 1 and f"cannot write {target}: File too large" in out.stderr, out.stderr[-2000:]
    assert target.read_text() == last
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
