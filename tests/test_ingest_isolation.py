"""Ingest on both databases: a post the database refuses is quarantined and its neighbours are
stored; different posts sharing a URL are all kept (copies linked); quarantine rows are one per
bad record's content; migration 0005 carries existing rows over."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy.exc import OperationalError

from siaga import ingest, store
from siaga.sources import BadInput, IncomingPost
from siaga.sources.base import same_post_key
from support.fixed_source import Fixed

T0 = datetime(2026, 1, 15, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=1)


def post(sid, text="Banjir di Banjar", author="anon:a", url=None, source="s", **raw):
    return IncomingPost(source, sid, T0, text, author, url, None, None, {"id": sid, **raw})


@pytest.mark.parametrize("piece", [store.COPY_SLICE, 2], ids=["one-piece", "in-pieces"])
def test_a_row_the_database_refuses_is_quarantined_and_its_neighbours_stored(db_url, monkeypatch, piece):
    monkeypatch.setattr(ingest, "check_post", lambda post, now: post)  # as if a source let these through
    monkeypatch.setattr(store, "COPY_SLICE", piece)  # PostgreSQL: refused rows in later pieces of the COPY text
    refused = [post("surrogate", author="anon:\ud800")]
    if db_url.startswith("postgresql"):  # SQLite takes these as they are
        refused += [post("nul", text="air\x00naik"), post("x" * 300), post("nan", n=float("nan")), post("long-author", author="a" * 300)]
    good = [post(f"ok{i}", text=f"Banjir {i}") for i in range(3)]
    batch = good[:1] + refused + good[1:]
    calls = []
    monkeypatch.setattr(ingest, "_insert_each", lambda *a, _real=ingest._insert_each: calls.append(1) or _real(*a))
    report = ingest.ingest(Fixed("s", batch), NOW, db_url)
    assert (report.new_posts, report.quarantined, report.duplicates) == (3, len(refused), 0)
    with store.session_scope(db_url) as session:
        assert sorted(session.scalars(sa.select(store.Post.source_id))) == ["ok0", "ok1", "ok2"]
        rows = session.execute(sa.select(store.Quarantine.location, store.Quarantine.reason)).all()
        assert ingest.read_cursor(session, "s") == {"polled": True}
    assert all("the database refused it" in r.reason for r in rows) and len(rows) == len(refused)
    assert calls  # the slow path ran for this batch only
    calls.clear()
    assert ingest.ingest(Fixed("s", [post("ok9")]), NOW, db_url).new_posts == 1 and not calls  # and the fast one again


def test_the_schema_refuses_before_the_database_does(db_url):
    batch = [post("ok"), post("nul", text="a\x00"), post("x" * 300), post("nan", n=float("nan")),
             replace(post("future"), created_at=NOW + timedelta(days=1))]
    report = ingest.ingest(Fixed("s", batch), NOW, db_url)
    assert (report.new_posts, report.quarantined) == (1, 4)
    with store.session_scope(db_url) as session:
        reasons = sorted(session.scalars(sa.select(store.Quarantine.reason)))
    assert any("NUL" in r for r in reasons) and any("300 characters" in r for r in reasons) and any("in the future" in r for r in reasons)


def test_a_lost_database_fails_the_task_and_keeps_the_cursor(sqlite_url, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(ingest, "_insert_ignoring_duplicates", down)
    with pytest.raises(OperationalError):
        ingest.ingest(Fixed("s", [post("1")], [BadInput("f:1", "bad", "x")]), NOW, sqlite_url)
    monkeypatch.undo()
    with store.session_scope(sqlite_url) as session:
        assert ingest.read_cursor(session, "s") is None
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Quarantine)) == 0


def test_posts_sharing_a_url_are_all_kept_and_copies_linked(db_url):
    link = "https://chat.whatsapp.com/GrupWargaSawan"
    group = [post(f"g{i}", text=f"Banjir di Sangsit, info di grup ({i})", author=f"anon:{i}", url=link) for i in range(5)]
    forwarded = [post(f"f{i}", text="Air naik di Kubutambahan! " + link, author=f"anon:f{i}", url=link + "?utm_source=wa") for i in range(3)]
    assert ingest.ingest(Fixed("wa", group + forwarded), NOW, db_url).new_posts == 8
    same_post = [post("r1", text="Air naik di Kubutambahan! " + link, author="anon:f0", url=link, source="other")]
    report = ingest.ingest(Fixed("other", same_post), NOW, db_url)
    assert (report.new_posts, report.duplicates) == (0, 1)  # one post seen through two sources is stored once
    with store.session_scope(db_url) as session:
        rows = {r.source_id: r for r in session.scalars(sa.select(store.Post))}
    assert len(rows) == 8 and {r.canonical_url for r in rows.values()} == {link}
    assert all(rows[f"g{i}"].duplicate_of is None for i in range(5))  # different texts: related by URL only
    assert rows["f0"].duplicate_of is None and rows["f1"].duplicate_of == rows["f2"].duplicate_of == rows["f0"].id


def test_quarantine_is_one_row_per_content_with_its_place_kept(db_url):
    first = [BadInput("a.jsonl:3", "not valid JSON", "{rusak"), BadInput("a.jsonl:4", "not valid JSON", "{rusak")]
    assert ingest.ingest(Fixed("s", [], first), NOW, db_url).quarantined == 1
    assert ingest.ingest(Fixed("s", [], [BadInput("a.jsonl:3", "x", "{rusak")]), NOW, db_url).quarantined == 0
    assert ingest.ingest(Fixed("s", [], [BadInput("a.jsonl:3", "x", "{lain")]), NOW, db_url).quarantined == 1
    page_failures = [BadInput("page after 5", "not valid JSON", ""), BadInput("page after 9", "not valid JSON", "")]
    assert ingest.ingest(Fixed("s", [], page_failures), NOW, db_url).quarantined == 2  # no record: where and why decide
    assert ingest.ingest(Fixed("t", [], first), NOW, db_url).quarantined == 1  # per source
    hostile = [BadInput("f:\x00" + "x" * 600, "why \ud800", "raw \x00 \udcff " + "r" * 20_000)]
    assert ingest.ingest(Fixed("s", [], hostile), NOW, db_url).quarantined == 1
    with store.session_scope(db_url) as session:
        row = session.scalars(sa.select(store.Quarantine).order_by(store.Quarantine.id.desc())).first()
    assert row.location.startswith("f:\\x00") and len(row.location) == 512 and "\\ud800" in row.reason
    assert row.raw.startswith("raw \\x00 \\udcff") and len(row.raw) == 10_000


def test_the_same_bad_line_in_many_exports_is_counted_at_each_place_and_once_per_place(db_url, tmp_path):
    """A bad line repeated across 40 inbox exports was one quarantine row at its first place:
    `siaga quarantine` said 1, and the other 39 places were named nowhere."""
    from siaga.sources import InboxSource

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = {"created_at": "2026-01-15T08:10:00+08:00", "text": "Banjir di Sambangan"}
    for i in range(40):
        (inbox / f"p{i:02}.jsonl").write_text(json.dumps({"id": f"ok{i}", **good}) + '\n{"id":"x"}\n{"id":"x"}\n')
    source = InboxSource("inbox", inbox)
    report = ingest.ingest(source, NOW, db_url)
    assert (report.new_posts, report.quarantined) == (40, 80)
    for name in ("p00.jsonl", "p39.jsonl"):
        (inbox / name).touch()  # changed: read again, nothing new
    again = ingest.ingest(source, NOW, db_url)
    assert (again.new_posts, again.quarantined) == (0, 0)
    with store.session_scope(db_url) as session:
        places = set(session.scalars(sa.select(store.Quarantine.location).where(store.Quarantine.source == "inbox")))
    assert places == {f"p{i:02}.jsonl:{n}" for i in range(40) for n in (2, 3)}


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(store.MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def test_migration_0005_carries_existing_rows_over_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic(url), "0004")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i, (raw, location) in enumerate([("{rusak", "a:1"), ("{rusak", "a:2"), ("", "page 1"), ("x", "a:3")]):
            conn.execute(sa.text("insert into quarantine (source, location, reason, raw, created_at) values ('s', :l, 'r', :raw, '2026-01-01')"),
                         {"l": location, "raw": raw})
        conn.execute(sa.text("insert into posts (source, source_id, created_at, text, text_hash, raw, ingested_at, canonical_url, author_pseudonymised)"
                             " values ('s', '1', '2026-01-01', 't', 'h', '{}', '2026-01-01', 'https://e.example/a', 0)"))
    engine.dispose()
    command.upgrade(_alembic(url), "head")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select location, fingerprint from quarantine order by id")).all()
        key = conn.execute(sa.text("select same_post_key from posts")).scalar_one()
    assert [r.location for r in rows] == ["a:1", "page 1", "a:3"]  # the same bad record twice is kept once
    assert [r.fingerprint for r in rows][0] == BadInput("a:1", "r", "{rusak").identity
    assert key == same_post_key("https://e.example/a", "h", None)
    with engine.begin() as conn:  # now a second post may share the URL
        conn.execute(sa.text("insert into posts (source, source_id, created_at, text, text_hash, raw, ingested_at, canonical_url, author_pseudonymised)"
                             " values ('s', '2', '2026-01-01', 'u', 'h2', '{}', '2026-01-01', 'https://e.example/a', 0)"))
    engine.dispose()
    command.downgrade(_alembic(url), "0004")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        urls = dict(conn.execute(sa.text("select source_id, canonical_url from posts")).all())
    engine.dispose()
    assert urls == {"1": "https://e.example/a", "2": None}  # nothing deleted going back


def test_same_post_key_is_what_the_migration_computes():
    p = replace(post("1", url="https://www.e.example/a/?utm_source=x"), author="anon:z")
    assert p.same_post_key == same_post_key("https://e.example/a", p.text_hash, "anon:z")
    assert replace(p, author="anon:y").same_post_key != p.same_post_key and replace(p, url=None).same_post_key is None


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(location=st.text(), reason=st.text())
def test_bad_input_is_logged_on_one_line_whatever_it_holds(sqlite_url, location, reason):
    """A bad record's place and reason come from hostile input: logged raw, a line break forged
    log lines, and a lone surrogate made a handler writing UTF-8 drop the line (and pytest-xdist
    fail to send the test's captured log)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("siaga.ingest")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        ingest.ingest(Fixed("s", [], [BadInput(location, reason, location + reason + "!")]), NOW, sqlite_url)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    logged = [r.getMessage() for r in records if r.getMessage().startswith("bad input")]
    assert len(logged) == 1
    assert logged[0].isprintable() and logged[0].encode("utf-8")
