"""JSON inbox: exported posts validated against the schema, each refusal naming file, line and
field; a file is read again only when it changes."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from support.fakeapis import T0
from siaga.sources import load_sources
from siaga.sources.inbox import InboxSource

pytestmark = pytest.mark.usefixtures("author_key")
NOW = T0 + timedelta(hours=3)


def test_jsonl_and_json_files_validated(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "wa-sukasada.jsonl").write_text("\n".join([
        json.dumps({"id": "wa1", "created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir di Desa Sambangan", "author": "Pak Wayan"}),
        "{rusak",
        json.dumps({"id": "wa2", "created_at": "2026-01-15T08:12:00+08:00", "text": "", "author": "Bu Kadek"}),
        json.dumps({"id": "wa3", "created_at": "2026-01-15T08:15:00+08:00", "text": "Pohon tumbang", "lat": 95}),
    ]))
    (inbox / "grup.json").write_text(json.dumps([{"id": 7, "created_at": "2026-01-15T00:20:00Z", "text": "Macet di Seririt", "channel": "FB grup"}]))
    (inbox / "catatan.txt").write_text("ignored")
    result = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in result.posts) == ["7", "wa1"]
    wa1 = next(p for p in result.posts if p.source_id == "wa1")
    assert wa1.author.startswith("anon:") and wa1.created_at == T0 + timedelta(minutes=10)
    bad = {b.location: b.reason for b in result.bad}
    assert set(bad) == {"wa-sukasada.jsonl:2", "wa-sukasada.jsonl:3", "wa-sukasada.jsonl:4"}
    assert "not valid JSON" in bad["wa-sukasada.jsonl:2"]
    assert "field 'text'" in bad["wa-sukasada.jsonl:3"] and "field 'lat'" in bad["wa-sukasada.jsonl:4"]
    again = InboxSource("inbox", inbox).poll(result.cursor, NOW)
    assert again.posts == [] and again.bad == []
    path = inbox / "grup.json"
    path.write_text(json.dumps([{"id": 7, "created_at": "2026-01-15T00:20:00Z", "text": "Macet di Seririt"},
                                {"id": 8, "created_at": "2026-01-15T00:25:00Z", "text": "Macet di Banjar"}]))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    changed = InboxSource("inbox", inbox).poll(again.cursor, NOW)
    assert sorted(p.source_id for p in changed.posts) == ["7", "8"]  # 7 again; the store keeps it once


def test_missing_folder_fails_and_config_loads(tmp_path):
    result = InboxSource("inbox", tmp_path / "nope").poll(None, NOW)
    assert result.failed and "does not exist" in result.bad[0].reason
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "sources.yaml"
    cfg.write_text("sources:\n  - name: wa\n    kind: inbox\n    path: inbox\n")
    (src,) = load_sources(cfg)
    assert src.folder == tmp_path / "inbox"


def test_hostile_lines_and_items_cost_only_themselves(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = {"id": "wa1", "created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir\u2028di Sambangan\u2029lagi"}
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),  # U+2028/2029 inside a string: one line, one post
        b'{"id": "wa2", "created_at": "2026-01-15T08:11:00+08:00", "text": "air \xff naik"}',
        b'{"id": "wa3", "created_at": "2026-01-15T08:11:00+08:00", "text": "x", "n": ' + b"1" * 4400 + b"}",
        b'{"id": "wa4", "created_at": "2026-01-15T08:11:00+08:00", "text": "x", "lat": NaN}',
        b'{"id": "wa5", "created_at": "2026-01-15T08:11:00+08:00", "text": "x", "z": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        b'{"id": "wa6", "created_at": "0001-01-01T00:00:00+14:00", "text": "x"}',
        b'{"id": "wa7", "created_at": "2026-01-15T08:12:00+08:00", "text": "x", "author": "\\ud800"}',
        b'{"id": "wa8", "created_at": "2026-01-15T08:12:00", "text": "no zone"}',
        b'{"id": "wa9", "created_at": "2026-01-16T08:12:00+08:00", "text": "tomorrow"}',
        json.dumps({**good, "id": "wa10", "text": "Pohon tumbang"}).encode() + b"\r",
    ]
    (inbox / "wa.jsonl").write_bytes(b"\n".join(lines))
    items = [json.dumps({**good, "id": 1}).encode(), b'{"id": 2, "created_at": "2026-01-15T00:20:00Z", "text": "x", "d": '
             + b"[" * 5000 + b"]" * 5000 + b"}", b'{"id": 3, "created_at": "2026-01-15T00:20:00Z", "text": "bad \xc3\x28"}',
             json.dumps({**good, "id": 4}).encode()]
    (inbox / "grup.json").write_bytes(b"[" + b",".join(items) + b"]")
    result = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in result.posts) == ["1", "4", "wa1", "wa10"]
    assert next(p for p in result.posts if p.source_id == "wa1").text == good["text"]
    bad = {b.location: b.reason for b in result.bad}
    expected = {"wa.jsonl:2": "not valid UTF-8: byte 0xff", "wa.jsonl:3": "4400 digits", "wa.jsonl:4": "field 'lat'",
                "wa.jsonl:5": "nested deeper", "wa.jsonl:6": "created_at", "wa.jsonl:7": "field 'author'",
                "wa.jsonl:8": "no timezone", "wa.jsonl:9": "in the future", "grup.json[1]": "nested deeper",
                "grup.json[2]": "undecodable byte 0xc3"}
    assert set(bad) == set(expected)
    for where, words in expected.items():
        assert words in bad[where], (where, bad[where])


def test_a_replaced_file_with_a_new_bad_line_at_the_same_place_is_quarantined(tmp_path, db_url):
    from siaga import ingest, store
    import sqlalchemy as sa

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "wa.jsonl"
    ok = json.dumps({"id": "wa1", "created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir"})
    path.write_text(ok + "\n{rusak\n")
    source = InboxSource("inbox", inbox)
    assert ingest.ingest(source, NOW, db_url).quarantined == 1
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)  # touched, same content: read again, nothing new
    assert ingest.ingest(source, NOW, db_url).quarantined == 0
    path.write_text(ok + "\n{rusak lagi\n")  # the same place, another bad record
    os.utime(path, ns=(path.stat().st_mtime_ns + 2 * 10**9,) * 2)
    assert ingest.ingest(source, NOW, db_url).quarantined == 1
    with store.session_scope(db_url) as session:
        rows = session.execute(sa.select(store.Quarantine.location, store.Quarantine.raw).order_by(store.Quarantine.id)).all()
    assert [tuple(r) for r in rows] == [("wa.jsonl:2", "{rusak"), ("wa.jsonl:2", "{rusak lagi")]


def test_a_missing_key_fails_the_poll_instead_of_quarantining_every_post(tmp_path, monkeypatch):
    from siaga.sources.base import MissingAuthorKey

    monkeypatch.delenv("SIAGA_AUTHOR_KEY")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "wa.jsonl").write_text(json.dumps({"id": "1", "created_at": "2026-01-15T08:10:00+08:00", "text": "x", "author": "Bu Kadek"}))
    with pytest.raises(MissingAuthorKey):
        InboxSource("inbox", inbox).poll(None, NOW)


def test_a_file_that_cannot_be_read_costs_that_file_and_is_read_once_it_can(tmp_path, monkeypatch):
    """An unreadable export (permissions, a failing disk) once failed the whole poll, every poll:
    the folder's other files were never stored."""
    from siaga.sources import inbox as module

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, pid in (("a.jsonl", "a1"), ("b.jsonl", "b1"), ("c.jsonl", "c1")):
        (inbox / name).write_text(json.dumps({"id": pid, "created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir di Sambangan"}) + "\n")
    real = module.read_regular_file

    def unreadable_b(path, limit=None):  # root reads any file: the refusal is made here
        if path.name == "b.jsonl":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, limit)

    monkeypatch.setattr(module, "read_regular_file", unreadable_b)
    first = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in first.posts) == ["a1", "c1"]
    [bad] = first.bad
    assert bad.location.startswith("b.jsonl@") and bad.reason == "cannot read the file: Permission denied"
    monkeypatch.setattr(module, "read_regular_file", real)
    second = InboxSource("inbox", inbox).poll(first.cursor, NOW)
    assert [p.source_id for p in second.posts] == ["b1"] and second.bad == []


def test_a_jsonl_export_with_a_byte_order_mark_keeps_its_first_post(tmp_path):
    """Notepad's "UTF-8 with BOM" (and Windows line ends): the first post of a .jsonl was
    quarantined as "Unexpected UTF-8 BOM", where the same posts as one .json document were read."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [{"id": f"wa{i}", "created_at": "2026-01-15T08:10:00+08:00", "text": f"Banjir {i}"} for i in (1, 2)]
    (inbox / "wa.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(r).encode() for r in rows) + b"\r\n")
    (inbox / "grup.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([{**rows[0], "id": "j1"}]).encode())
    result = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in result.posts) == ["j1", "wa1", "wa2"] and result.bad == []


def test_exports_named_in_upper_case_are_read_and_odd_entries_are_reported(tmp_path):
    """Staff on Windows save "EXPORT.JSONL"; it was skipped without a word, as were a folder, a
    link to nowhere and a pipe named as post files."""
    import os

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    post = {"created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir di Sambangan"}
    (inbox / "EXPORT.JSONL").write_text(json.dumps({"id": "u1", **post}) + "\n")
    (inbox / "Laporan.Json").write_text(json.dumps([{"id": "u2", **post}]))
    (inbox / "folder.jsonl").mkdir()
    (inbox / "gone.jsonl").symlink_to(tmp_path / "moved.jsonl")
    (inbox / "loop.json").symlink_to(inbox / "loop.json")
    os.mkfifo(inbox / "pipe.jsonl")
    first = InboxSource("inbox", inbox).poll(None, NOW)
    assert sorted(p.source_id for p in first.posts) == ["u1", "u2"]
    assert sorted(b.location for b in first.bad) == ["folder.jsonl", "gone.jsonl", "loop.json", "pipe.jsonl"]
    assert all("not a regular file" in b.reason for b in first.bad)
    again = InboxSource("inbox", inbox).poll(first.cursor, NOW)
    assert again.posts == [] and {b.identity for b in again.bad} == {b.identity for b in first.bad}  # quarantined once
