"""Tagging state in its own tables (migration 0008): every post inserted is queued to tag by the
database, whoever inserts it; tagging moves it from the queue to `post_tags` once; deleting a
post drops it from both; a database migrated from 0007 keeps what was tagged and what was not."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterator
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from siaga import ingest, store, tagging
from siaga.retention import purge_old_posts
from siaga.sources import IncomingPost
from support.fixed_source import Fixed
from conftest import _drop_pg_database, _new_pg_database, require_postgres

T0 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def incoming(sid: str, days: float = 0, text: str = "Banjir setinggi lutut di Desa Sangsit") -> IncomingPost:
    return IncomingPost("s", sid, T0 + timedelta(days=days), text, "anon:x", None, None, None, {})


def queued(url: str) -> list[int]:
    with store.engine_for(url).connect() as conn:
        return sorted(conn.execute(sa.text("select post_id from posts_to_tag")).scalars())


def tagged(url: str) -> dict[int, bool]:
    with store.engine_for(url).connect() as conn:
        return dict(conn.execute(sa.text("select post_id, in_region from post_tags")).all())


def post_ids(url: str) -> dict[str, int]:
    with store.engine_for(url).connect() as conn:
        return dict(conn.execute(sa.text("select source_id, id from posts")).all())


def test_every_post_inserted_is_queued_whoever_inserts_it(db_url):
    ingest.ingest(Fixed("s", [incoming("1"), incoming("2")]), T0, db_url)
    ingest.ingest(Fixed("s", [incoming("2"), incoming("3")]), T0, db_url)  # "2" again: not queued twice
    with store.session_scope(db_url) as session:  # an ORM object, as tests and tools add posts
        session.add(store.Post(source="o", source_id="orm", created_at=T0, text="x", text_hash="h", raw={}))
    assert queued(db_url) == sorted(post_ids(db_url).values()) and len(queued(db_url)) == 4
    assert tagged(db_url) == {}


def test_tagging_moves_posts_from_the_queue_to_post_tags_once(db_url, hazard_set):
    ingest.ingest(Fixed("s", [incoming("in"), incoming("out", text="Banjir di Denpasar")]), T0, db_url)
    tagger = tagging.Tagger(hazard_set)
    assert tagging.tag_pending(tagger, T0, db_url) == 2
    ids = post_ids(db_url)
    assert queued(db_url) == [] and tagged(db_url) == {ids["in"]: True, ids["out"]: False}
    assert tagging.tag_pending(tagger, T0, db_url) == 0


def test_a_post_created_after_now_stays_queued_for_a_later_run(db_url, hazard_set):
    ingest.ingest(Fixed("s", [incoming("now"), incoming("later", days=1)]), T0 + timedelta(days=1), db_url)
    tagger = tagging.Tagger(hazard_set)
    assert tagging.tag_pending(tagger, T0, db_url) == 1
    assert queued(db_url) == [post_ids(db_url)["later"]]
    assert tagging.tag_pending(tagger, T0 + timedelta(days=1), db_url) == 1
    assert queued(db_url) == [] and len(tagged(db_url)) == 2


def test_a_batch_another_run_already_stored_is_not_stored_again(db_url, hazard_set):
    """Two overlapping runs tag the same posts: the second run's write finds them off the queue
    and stores nothing (no second geotag, no duplicate match)."""
    ingest.ingest(Fixed("s", [incoming("1"), incoming("2")]), T0, db_url)
    tagger = tagging.Tagger(hazard_set)
    with store.session_scope(db_url) as session:
        batch = [(row.id, tagger.tag(row.text)) for row in session.execute(sa.select(store.Post.id, store.Post.text))]
    for _ in range(2):
        with store.session_scope(db_url) as session:
            tagging.store_tags(session, batch, "fp")
    with store.engine_for(db_url).connect() as conn:
        geotags = conn.execute(sa.text("select count(*) from geotags")).scalar_one()
        matches = conn.execute(sa.text("select count(*) from hazard_matches")).scalar_one()
    assert geotags == 2 and matches == 2 and len(tagged(db_url)) == 2


def test_deleting_posts_drops_their_queue_and_tag_rows(db_url, hazard_set):
    ingest.ingest(Fixed("s", [incoming(str(i), days=i) for i in range(4)]), T0 + timedelta(days=4), db_url)
    ids = post_ids(db_url)
    with store.session_scope(db_url) as session:
        tagging.store_tags(session, [(ids["0"], tagging.Tagger(hazard_set).tag("banjir di Sangsit"))], "fp")
    with store.session_scope(db_url) as session:
        assert purge_old_posts(session, T0 + timedelta(days=1, hours=1)) == 2  # "0" tagged, "1" queued
    assert queued(db_url) == [ids["2"], ids["3"]] and tagged(db_url) == {}


TEXTS = ("Banjir setinggi lutut di Desa Sangsit", "Banjir di Denpasar", "Ngopi dulu di Lovina", "pohon tumbang di Kubutambahan")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    posts=st.lists(st.tuples(st.booleans(), st.sampled_from(TEXTS), st.booleans()), max_size=30),
    batch=st.integers(1, 6),
    partition=st.one_of(st.none(), st.integers(1, 3).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))),
)
def test_tag_pending_takes_exactly_the_due_queued_posts_of_its_partition(db_url, hazard_set, posts, batch, partition):
    """Whatever the queue holds (gaps left by posts tagged before, posts created after `now`),
    however it is cut into batches (each read while the one before is tagged and written, on
    PostgreSQL) and whichever partition runs: every queued post of the partition created by
    `now` is tagged once, as `Tagger.tag` tags it, and everything else stays as it was."""
    with store.session_scope(db_url) as session:  # the previous example's posts, with their tags
        session.execute(sa.delete(store.Post))
        store.bulk_insert(session, store.Post.__table__, [
            {"source": "s", "source_id": str(i), "created_at": T0 + timedelta(hours=1 if late else 0), "text": text,
             "text_hash": str(i), "raw": {}, "ingested_at": T0} for i, (late, text, _) in enumerate(posts)])
    ids = sorted(post_ids(db_url).values())
    gone = [post_id for post_id, (_, _, off_queue) in zip(ids, posts) if off_queue]
    with store.session_scope(db_url) as session:  # tagged by an earlier run
        session.execute(sa.delete(store.PostToTag).where(store.PostToTag.post_id.in_(gone)))
    mine = [post_id for post_id in ids if partition is None or post_id % partition[1] == partition[0]]
    due = {post_id for post_id, (late, _, _) in zip(ids, posts) if not late and post_id not in gone and post_id in mine}
    tagger = tagging.Tagger(hazard_set)
    with mock.patch.object(tagging, "TAG_BATCH", batch):
        assert tagging.tag_pending(tagger, T0, db_url, partition=partition) == len(due)
    assert queued(db_url) == sorted(set(ids) - set(gone) - due)
    texts = {post_id: text for post_id, (_, text, _) in zip(ids, posts)}
    assert tagged(db_url) == {post_id: tagger.tag(texts[post_id]).geotag.in_region for post_id in due}
    with store.engine_for(db_url).connect() as conn:
        matches = sorted(conn.execute(sa.text("select post_id, hazard from hazard_matches")).all())
    assert matches == sorted((post_id, m.hazard) for post_id in due for m in tagger.tag(texts[post_id]).hazards)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url_at_0007(request, tmp_path) -> Iterator[str]:
    """A database migrated up to 0007 only: posts still carry tagged_at and in_region."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        cleanup = lambda: store.engine_for(url).dispose()  # noqa: E731
    else:
        require_postgres()
        url, admin, name = _new_pg_database()
        cleanup = lambda: _drop_pg_database(admin, name, url)  # noqa: E731
    from alembic import command

    command.upgrade(store._alembic_config(url), "0007")
    try:
        yield url
    finally:
        cleanup()


def test_migration_0008_keeps_what_was_tagged_and_queues_the_rest(url_at_0007):
    url = url_at_0007
    with store.engine_for(url).begin() as conn:
        for sid, tagged_at, in_region in (("a", T0, True), ("b", T0, False), ("c", None, None)):
            conn.execute(sa.text(
                "insert into posts (source, source_id, created_at, text, text_hash, raw, ingested_at, tagged_at, in_region,"
                " author_pseudonymised) values ('s', :sid, :t, 'x', :sid, '{}', :t, :tagged_at, :in_region, false)"),
                {"sid": sid, "t": T0, "tagged_at": tagged_at, "in_region": in_region})
    store.migrate(url)
    ids = post_ids(url)
    assert tagged(url) == {ids["a"]: True, ids["b"]: False} and queued(url) == [ids["c"]]
    with store.session_scope(url) as session:
        assert session.get(store.PostTag, ids["a"]).tagged_at == T0
    with store.engine_for(url).connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("posts")}
    assert not {"tagged_at", "in_region"} & columns
    ingest.ingest(Fixed("s", [incoming("d")]), T0, url)  # the triggers are in place after the rebuild
    assert queued(url) == sorted([ids["c"], post_ids(url)["d"]])
