"""Replay source and ingest: posts released on the clock, stored once, bad lines quarantined
with their line number, cursor advanced only after the posts are committed."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import ingest, store
from siaga.sources import ReplaySource, SourceConfigError, load_sources
from siaga.sources.replay import ReplayClock

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)


def write_feed(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(row if isinstance(row, str) else json.dumps(row))
            fh.write("\n")
    return path


def post(i, minutes, **extra):
    return {"id": str(i), "created_at": (T0 + timedelta(minutes=minutes)).isoformat(), "text": f"post {i}", "author": f"a{i}", **extra}


def test_releases_only_posts_whose_time_has_come(tmp_path):
    feed = write_feed(tmp_path / "f.jsonl", [post(1, 0), post(2, 10), post(3, 20)])
    source = ReplaySource("f", feed)
    first = source.poll(None, T0 + timedelta(minutes=12))
    assert [p.source_id for p in first.posts] == ["1", "2"]
    second = source.poll(first.cursor, T0 + timedelta(minutes=30))
    assert [p.source_id for p in second.posts] == ["3"]


def test_live_clock_retimes_posts_to_when_they_are_played(tmp_path):
    feed = write_feed(tmp_path / "f.jsonl", [post(1, 0), post(2, 60)])
    source = ReplaySource("f", feed, ReplayClock("live", speed=10))
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    first = source.poll(None, now)
    assert [p.created_at for p in first.posts] == [now]
    later = source.poll(first.cursor, now + timedelta(minutes=6))  # 6 real minutes = 60 played
    assert [p.created_at for p in later.posts] == [now + timedelta(minutes=6)]


def test_malformed_lines_are_reported_with_line_and_field(tmp_path):
    feed = write_feed(
        tmp_path / "f.jsonl",
        [post(1, 0), "{not json", json.dumps({"id": "2", "text": "no time"}), post(3, 1, lat="north"), post(4, 2)],
    )
    result = ReplaySource("f", feed).poll(None, T0 + timedelta(hours=1))
    assert [p.source_id for p in result.posts] == ["1", "4"]
    bad = {b.location: b.reason for b in result.bad}
    assert set(bad) == {"f.jsonl:2", "f.jsonl:3", "f.jsonl:4"}
    assert "not valid JSON" in bad["f.jsonl:2"]
    assert "'created_at'" in bad["f.jsonl:3"]
    assert "'lat'" in bad["f.jsonl:4"]


def test_naive_timestamps_are_read_as_bali_time(tmp_path):
    feed = write_feed(tmp_path / "f.jsonl", [{"id": "1", "created_at": "2026-01-15T08:00:00", "text": "x"}])
    (only,) = ReplaySource("f", feed).poll(None, T0 + timedelta(days=1)).posts
    assert only.created_at == datetime(2026, 1, 15, 0, 0, tzinfo=timezone.utc)


def test_ingest_stores_once_quarantines_and_advances_cursor(tmp_path, db_url):
    feed = write_feed(tmp_path / "f.jsonl", [post(1, 0), "garbage", post(2, 5), post(3, 50)])
    source = ReplaySource("f", feed)
    now = T0 + timedelta(minutes=10)
    report = ingest.ingest(source, now, db_url)
    assert (report.new_posts, report.quarantined) == (2, 1)
    again = ingest.ingest(source, now, db_url)  # a retried task instance
    assert (again.new_posts, again.quarantined) == (0, 0)
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Post)) == 2
        (q,) = session.scalars(sa.select(store.Quarantine)).all()
        assert q.location == "f.jsonl:2" and q.raw == "garbage"
        assert ingest.read_cursor(session, "f")["line"] == 3
    later = ingest.ingest(source, T0 + timedelta(hours=1), db_url)
    assert later.new_posts == 1


def test_cursor_not_advanced_when_storing_fails(tmp_path, sqlite_url, monkeypatch):
    feed = write_feed(tmp_path / "f.jsonl", [post(1, 0)])
    source = ReplaySource("f", feed)

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ingest, "_insert_ignoring_duplicates", boom)
    with pytest.raises(RuntimeError):
        ingest.ingest(source, T0 + timedelta(hours=1), sqlite_url)
    with store.session_scope(sqlite_url) as session:
        assert ingest.read_cursor(session, "f") is None


def test_sources_config_errors_name_file_and_field(tmp_path):
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "sources.yaml"
    path.write_text("sources:\n  - name: x\n    kind: carrier-pigeon\n")
    with pytest.raises(SourceConfigError, match=r"sources\.yaml:3:11: sources\[0\]\.kind: .carrier-pigeon. is not one of"):
        load_sources(path)


def test_repository_sources_config_loads():
    names = [s.name for s in load_sources()]
    assert names == ["demo"]


def test_one_hostile_line_costs_only_itself(tmp_path, db_url):
    """Each of these once crashed the whole poll, was mangled, or was stored as it came."""
    hostile = {
        2: '{"id": "d", "created_at": "2026-01-15T08:00:00+08:00", "text": ' + "[" * 50_000 + "]" * 50_000 + "}",
        3: json.dumps(post(3, 1))[:-1] + ', "n": ' + "9" * 5000 + "}",
        4: json.dumps({"id": "4", "created_at": "0001-01-01T00:00:00+14:00", "text": "x"}),
        5: json.dumps({"id": "5", "created_at": "9999-12-31T23:59:59-14:00", "text": "x"}),
        6: '{"id": "6", "created_at": "2026-01-15T08:00:00+08:00", "text": "lone \\ud800 surrogate"}',
        7: '{"id": "7", "created_at": "2026-01-15T08:00:00+08:00", "text": "nul \\u0000 here"}',
        8: json.dumps({"id": "x" * 300, "created_at": "2026-01-15T08:00:00+08:00", "text": "x"}),
        9: json.dumps({**post(9, 1), "author": "a" * 300}),
        10: json.dumps(post(10, 1))[:-1] + ', "lat": NaN}',
        11: json.dumps({**post(11, 1), "id": True}),
        12: json.dumps({**post(12, 1), "id": 1.5}),
        13: json.dumps({**post(13, 1), "id": {}}),
        14: json.dumps({**post(14, 1), "id": []}),
        15: json.dumps({**post(15, 1), "lat": True}),
        16: json.dumps({**post(16, 1), "source": {"x": 1}}),
    }
    rows = [post(1, 0)] + [hostile[n] for n in range(2, 17)] + [post(17, 2)]
    feed = write_feed(tmp_path / "f.jsonl", rows)
    report = ingest.ingest(ReplaySource("f", feed), T0 + timedelta(hours=1), db_url)
    assert (report.new_posts, report.quarantined) == (2, 15)
    with store.session_scope(db_url) as session:
        assert sorted(session.scalars(sa.select(store.Post.source_id))) == ["1", "17"]
        reasons = dict(session.execute(sa.select(store.Quarantine.location, store.Quarantine.reason)).all())
        assert ingest.read_cursor(session, "f")["line"] == 17
    assert set(reasons) == {f"f.jsonl:{n}" for n in range(2, 17)}
    expected = {2: "nested deeper than 64", 3: "5000 digits", 4: "created_at", 5: "created_at", 6: "lone surrogate U+D800",
                7: "NUL", 8: "field 'id': 300 characters", 9: "field 'author'", 10: "field 'lat'", 11: "field 'id'",
                12: "field 'id'", 13: "field 'id'", 14: "field 'id'", 15: "field 'lat'", 16: "field 'source'"}
    for n, words in expected.items():
        assert words in reasons[f"f.jsonl:{n}"], (n, reasons[f"f.jsonl:{n}"])


def test_lines_split_at_newline_only_and_invalid_utf8_is_quarantined(tmp_path):
    path = tmp_path / "f.jsonl"
    with_separators = json.dumps({**post(1, 0), "text": "Banjir\u2028di\u2029Sangsit\u0085lagi"}, ensure_ascii=False)
    path.write_bytes(with_separators.encode() + b"\r\n" + json.dumps(post(2, 0)).encode()[:-2] + b'\xff"}\n' + json.dumps(post(3, 0)).encode())
    result = ReplaySource("f", path).poll(None, T0 + timedelta(hours=1))
    assert [p.text for p in result.posts] == ["Banjir\u2028di\u2029Sangsit\u0085lagi", "post 3"]
    (bad,) = result.bad
    assert bad.location == "f.jsonl:2" and "not valid UTF-8: byte 0xff" in bad.reason and "\\xff" in bad.raw


def test_future_lines_wait_without_holding_the_cursor(tmp_path):
    rows = [post(1, 0), post(2, 600), post(3, 5), post(4, 6), {**post(5, 0), "created_at": "2999-01-01T00:00:00Z"}, post(6, 700)]
    feed = write_feed(tmp_path / "f.jsonl", rows)
    source = ReplaySource("f", feed)
    first = source.poll(None, T0 + timedelta(minutes=10))
    assert [p.source_id for p in first.posts] == ["1", "3", "4"]
    # the cursor moved past line 2, which waits by its content; 2999 is a typo, not a schedule
    assert first.cursor["line"] == 4 and list(first.cursor["waiting"].values()) == [2]
    assert [(b.location, "more than 366 days ahead" in b.reason) for b in first.bad] == [("f.jsonl:5", True)]
    assert source.poll(first.cursor, T0 + timedelta(minutes=20)).posts == []
    later = source.poll(first.cursor, T0 + timedelta(hours=12))
    assert [p.source_id for p in later.posts] == ["2", "6"] and "waiting" not in later.cursor and later.cursor["line"] == 6


def test_waiting_lines_are_bounded(tmp_path, monkeypatch):
    from siaga.sources import replay

    monkeypatch.setattr(replay, "MAX_WAITING", 2)
    rows = [post(1, 500), post(2, 501), post(3, 502), post(4, 1), post(5, 2)]
    source = ReplaySource("f", write_feed(tmp_path / "f.jsonl", rows))
    first = source.poll(None, T0 + timedelta(minutes=10))
    assert [p.source_id for p in first.posts] == ["4", "5"]
    assert first.cursor["line"] == 2 and len(first.cursor["waiting"]) == 2  # stops before the third waiting line
    again = source.poll(first.cursor, T0 + timedelta(minutes=10))
    assert [p.source_id for p in again.posts] == ["4", "5"]  # read again (stored once); nothing skipped


def test_a_replaced_file_is_read_again_from_the_start(tmp_path, db_url):
    feed = write_feed(tmp_path / "f.jsonl", [post(1, 0), post(2, 1)])
    source = ReplaySource("f", feed)
    now = T0 + timedelta(hours=1)
    ingest.ingest(source, now, db_url)
    write_feed(feed, [post(7, 0), "{broken", post(2, 1)])  # a new recording under the same name
    report = ingest.ingest(source, now, db_url)
    assert (report.new_posts, report.quarantined) == (1, 1)
    assert ingest.ingest(source, now, db_url).quarantined == 0  # the same bad line is kept once


def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(tmp_path):
    """A recording saved as "UTF-8 with BOM" (Notepad) lost its first post to quarantine as "not
    valid JSON: Unexpected UTF-8 BOM"; a U+FEFF later in the file is still its line's problem."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(post(1, 0)).encode() + b"\r\n\xef\xbb\xbf" + json.dumps(post(2, 0)).encode() + b"\r\n")
    result = ReplaySource("f", path).poll(None, T0 + timedelta(hours=1))
    assert [p.source_id for p in result.posts] == ["1"]
    assert [b.location for b in result.bad] == ["f.jsonl:2"]
    again = ReplaySource("f", path).poll(result.cursor, T0 + timedelta(hours=2))
    assert again.posts == []  # the cursor's digest of the lines it passed holds: not read again from the start


@pytest.mark.parametrize("kind, says", [
    ("folder", "Is a directory"), ("missing", "No such file or directory"),
    ("device", "not a regular file but a character device"), ("pipe", "not a regular file but a named pipe"),
])
def test_a_replay_path_that_is_no_file_fails_the_poll_in_one_line_naming_it(tmp_path, kind, says):
    """A replay path mistyped to its folder, or a device or pipe in the file's place: a traceback
    (IsADirectoryError), memory read until it ran out (/dev/zero) or a poll waiting for ever (a
    FIFO nobody writes). Now the poll fails naming the path, and the ingest task retries it."""
    import os

    from siaga.sources import SourceError

    path = tmp_path / "feed.jsonl"
    if kind == "folder":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "pipe":
        os.mkfifo(path)
    with pytest.raises(SourceError) as raised:
        ReplaySource("f", path).poll(None, T0)
    assert str(raised.value) == f"f: cannot read the replay file {path}: {says}"
