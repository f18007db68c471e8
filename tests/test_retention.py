"""Retention purge keeps alert evidence; cross-source dedup stores a post once and links copies."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from siaga import ingest, store
from siaga.retention import purge_old_posts
from siaga.sources import IncomingPost
from support.fixed_source import Fixed

T0 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def post(source, sid, days, url=None, reposts=None, text="banjir di Banjar"):
    return IncomingPost(source, sid, T0 + timedelta(days=days), text, "anon:x", url, None, None, {}, reposts=reposts)


def test_purge_keeps_evidence(db_url):
    ingest.ingest(Fixed("s", [post("s", str(i), i) for i in range(5)]), T0 + timedelta(days=5), db_url)
    with store.session_scope(db_url) as session:
        ids = dict(session.execute(sa.select(store.Post.source_id, store.Post.id)).all())
        session.add(store.Alert(hazard="flood", level="village", area_code="5108", window_start=T0, window_end=T0 + timedelta(hours=1),
                                observed=2, expected=0.1, authors=2, score=5, explanation={"post_ids": [ids["0"], str(ids["2"])]}))
    with store.session_scope(db_url) as session:
        assert purge_old_posts(session, T0 + timedelta(days=3, hours=1)) == 2
    with store.session_scope(db_url) as session:
        left = sorted(session.scalars(sa.select(store.Post.source_id)))
    assert left == ["0", "2", "4"]


@pytest.mark.parametrize("in_slice", [2, 5000])
def test_purge_of_a_backlog_deletes_every_old_post_but_the_evidence(db_url, in_slice, monkeypatch):
    """A backlog purged in one go, in slices of `in_slice` ids: every old post goes but those
    alerts cite, every newer one stays."""
    monkeypatch.setattr(store, "IN_SLICE", in_slice)
    rng = random.Random(in_slice)
    days = {str(i): rng.randint(0, 9) for i in range(40)}
    ingest.ingest(Fixed("s", [post("s", sid, d, text=f"banjir di Banjar {sid}") for sid, d in days.items()]), T0 + timedelta(days=10), db_url)
    with store.session_scope(db_url) as session:
        ids = dict(session.execute(sa.select(store.Post.source_id, store.Post.id)).all())
        cited = set(rng.sample(sorted(ids), 8))
        session.add(store.Alert(hazard="flood", level="village", area_code="5108", window_start=T0, window_end=T0 + timedelta(hours=1),
                                observed=2, expected=0.1, authors=2, score=5, explanation={"post_ids": [ids[s] for s in cited]}))
    old = {sid for sid, d in days.items() if d < 5}
    with store.session_scope(db_url) as session:
        assert purge_old_posts(session, T0 + timedelta(days=5)) == len(old - cited)
    with store.session_scope(db_url) as session:
        assert set(session.scalars(sa.select(store.Post.source_id))) == (set(days) - old) | cited


def test_same_url_from_two_sources_stored_once_and_copies_linked(db_url):
    a = Fixed("masto", [post("masto", "1", 0, url="https://berita.example/banjir?utm_source=masto")])
    # the quote arrives before what it quotes; the second quote quotes the first (a chain)
    b = Fixed("bsky", [
        post("bsky", "q1", 0, url="https://bsky.app/profile/d/post/q1", reposts="https://berita.example/banjir"),
        post("bsky", "q2", 0, url="https://bsky.app/profile/d/post/q2", reposts="https://bsky.app/profile/d/post/q1"),
    ])
    c = Fixed("rss", [post("rss", "r1", 0, url="https://www.berita.example/banjir/")])
    assert ingest.ingest(b, T0, db_url).new_posts == 2
    assert ingest.ingest(a, T0, db_url).new_posts == 1
    report = ingest.ingest(c, T0, db_url)
    assert (report.new_posts, report.duplicates) == (0, 1)
    with store.session_scope(db_url) as session:
        rows = {r.source_id: r for r in session.scalars(sa.select(store.Post))}
    assert rows["q1"].duplicate_of == rows["1"].id and rows["q2"].duplicate_of == rows["1"].id
    assert rows["1"].duplicate_of is None and rows["1"].canonical_url == "https://berita.example/banjir"


def test_retention_comes_from_sources_config(tmp_path):
    from datetime import timedelta

    import pytest

    from siaga.retention import DEFAULT_RETENTION, configured_retention

    path = tmp_path / "sources.yaml"
    path.write_text("retention_days: 7\nsources: []\n")
    assert configured_retention(path) == timedelta(days=7)
    path.write_text("sources: []\n")
    assert configured_retention(path) == DEFAULT_RETENTION
    path.write_text("retention_days: forever\n")
    with pytest.raises(ValueError, match=r"sources\.yaml:1:17: retention_days: 'forever' is not of type 'integer'"):
        configured_retention(path)


def test_a_retention_the_dates_cannot_hold_is_refused_by_the_check_and_the_task(tmp_path, capsys):
    """`retention_days: 1000000000` passed `siaga check`; the retention task then failed on
    "now minus the retention" with an OverflowError traceback. A YAML syntax error was a
    traceback from PyYAML too, not the file's line."""
    import shutil

    import pytest

    from siaga import cli, settings
    from siaga.retention import configured_retention
    from siaga.sources.config_file import MAX_RETENTION_DAYS

    folder = tmp_path / "config"
    shutil.copytree(settings.config_dir(), folder)
    path = folder / "sources.yaml"
    text = path.read_text(encoding="utf-8")
    for days in (MAX_RETENTION_DAYS + 1, 10**9, 10**30):
        path.write_text(text.replace("retention_days: 30\n", f"retention_days: {days}\n", 1), encoding="utf-8")
        line = path.read_text(encoding="utf-8").splitlines().index(f"retention_days: {days}") + 1
        with pytest.raises(ValueError, match=rf"sources\.yaml:{line}:17: retention_days: {days} is greater than the maximum"):
            configured_retention(path)
        assert cli.main(["check", str(folder)]) == 1
        assert f"{path}:{line}:17: retention_days: {days} is greater than the maximum" in capsys.readouterr().err
    path.write_text(text.replace("retention_days: 30\n", f"retention_days: {MAX_RETENTION_DAYS}\n", 1), encoding="utf-8")
    retention = configured_retention(path)
    assert retention.days == MAX_RETENTION_DAYS and (T0 - retention).year > 1900
    path.write_text("retention_days: [7\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sources\.yaml:1:17: \(syntax\)"):
        configured_retention(path)

