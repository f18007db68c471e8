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
    with pytest.raises(SourceConfigError, match=r"sources\.yaml: sources\[0\]\.kind"):
        load_sources(path)


def test_repository_sources_config_loads():
    names = [s.name for s in load_sources()]
    assert names == ["demo"]
