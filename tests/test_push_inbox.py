"""Push for an inbox folder: the triggerer watches the folder and a post file dropped or
changed there wakes ingest within `watch_every` seconds instead of at the next poll.

Against a real folder: the first look only learns what is there, a new file wakes once, a file
written again (new size or time) wakes again, other files and folders wake nothing, a missing
folder is a failed look that is looked at again, and the keys the watcher compares are the
poll's own (a file the poll would skip wakes nothing). Then the config that turns it on.
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from support.wakeups import wake_ups_while
from siaga.sources import check_sources_file, inbox, load_sources, push

pytestmark = pytest.mark.usefixtures("new_watchers")

SOURCE = "wa_forward"
EVERY = 0.05  # seconds between looks in these tests (the sources file allows no less than 5)
POST = '{"id": "%s", "created_at": "2026-01-15T01:00:00Z", "text": "Banjir di Desa Sangsit", "author": "staf"}\n'


def _stream(folder: Path) -> push.PushStream:
    return push.PushStream(SOURCE, str(folder), protocol="inbox", every=EVERY)


def test_a_dropped_or_rewritten_post_file_wakes_and_nothing_else_does(tmp_path):
    (tmp_path / "lama.jsonl").write_text(POST % "lama-1", encoding="utf-8")
    stream = _stream(tmp_path)

    async def act() -> None:
        (tmp_path / "catatan.txt").write_text("bukan posting", encoding="utf-8")  # not a post file
        (tmp_path / "arsip.json").mkdir()  # a folder named like one
        await asyncio.sleep(0.3)
        (tmp_path / "baru.jsonl").write_text(POST % "baru-1", encoding="utf-8")
        await asyncio.sleep(0.3)
        with open(tmp_path / "baru.jsonl", "a", encoding="utf-8") as f:  # staff add a line
            f.write(POST % "baru-2")

    got = asyncio.run(asyncio.wait_for(wake_ups_while(stream, act, learn=0.3), 20))
    assert got == [push.WakeUp(1), push.WakeUp(1)]


def test_a_file_the_poll_has_read_wakes_only_when_it_changes(tmp_path, author_key):
    """The watcher's key of a file is the poll's cursor stamp: what the poll would skip wakes
    nothing, what it would read again wakes."""
    path = tmp_path / "satu.jsonl"
    path.write_text(POST % "a-1", encoding="utf-8")
    source = inbox.InboxSource(SOURCE, tmp_path)
    at = datetime(2026, 1, 15, 2, tzinfo=timezone.utc)
    cursor = source.poll(None, at).cursor
    listing = {f"{p.name}@{stamp}" for p, stamp, _ in inbox._files(tmp_path)}
    assert listing == {f"{name}@{stamp}" for name, stamp in cursor["files"].items()}
    assert not source.poll(cursor, at).posts  # unchanged: the poll skips it
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert source.poll(cursor, at).posts  # touched: the poll reads it again
    assert {f"{p.name}@{stamp}" for p, stamp, _ in inbox._files(tmp_path)} != listing  # and the watcher sees it changed


def test_a_missing_folder_is_a_failed_look_and_the_watch_goes_on(tmp_path):
    folder = tmp_path / "inbox"
    stream = _stream(folder)

    async def act() -> None:
        folder.mkdir()
        await asyncio.sleep(0.5)  # looked at again after the backoff: learns the empty folder
        (folder / "baru.jsonl").write_text(POST % "baru-1", encoding="utf-8")

    got = asyncio.run(asyncio.wait_for(wake_ups_while(stream, act, learn=0.3, settle=0.6), 20))
    assert got == [push.WakeUp(1)]


def _write(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  - name: {SOURCE}\n    kind: inbox\n    path: {tmp_path / 'inbox'}\n{entry}", encoding="utf-8")
    return path


def test_push_watches_the_folder_every_watch_every_seconds(tmp_path):
    (source,) = load_sources(_write(tmp_path, "    push: true\n    watch_every: 5\n"))
    assert push.push_streams([source]) == [push.PushStream(SOURCE, str(tmp_path / "inbox"), protocol="inbox", every=5.0)]
    assert push.push_streams(load_sources(_write(tmp_path, ""))) == []
    assert push.reader("inbox") is inbox.folder_announcements


@pytest.mark.parametrize(("entry", "line", "said"), [
    ("    push: true\n    watch_every: 0.5\n", 6, "watch_every: 0.5 is less than the minimum of 5.0"),
    ("    watch_every: 30\n", 5, "watch_every: a source is watched only with push: true; add it, or drop watch_every"),
])
def test_a_watch_the_folder_cannot_keep_is_refused_at_its_line(tmp_path, entry, line, said):
    problems, _ = check_sources_file(_write(tmp_path, entry))
    assert [(p.line, p.field.split(".")[-1] + ": " + p.message) for p in problems] == [(line, said)]
