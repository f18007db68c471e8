"""The pipeline's bulk data path (issue 14) stores exactly what the per-row path it replaced
stored, on SQLite and PostgreSQL, and re-running it changes nothing.

The per-row path is kept callable in `benchmarks/pipeline_legacy.py` (the benchmark prints both
side by side); here both run over the same generated posts, through the same jobs the DAG tasks
call (`siaga.pipeline`), and everything they wrote is compared."""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from siaga import counting, pipeline, store, tagging
from siaga.hazards import HazardSet
from siaga.hazard_config import default_hazard_dir

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_pipeline  # noqa: E402
from pipeline_legacy import legacy_path  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def posts() -> list[dict[str, Any]]:
    """Everyday chatter, hazard reports over all villages and roads, and two events."""
    return bench_pipeline.generate(400, NOW, seed=3, events=2)


def run_pipeline(url: str, posts: list[dict[str, Any]], tmp_path: Path, legacy: bool = False) -> None:
    feed = tmp_path / f"feed-{'legacy' if legacy else 'bulk'}.jsonl"
    feed.write_text("".join(bench_pipeline.json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    with bench_pipeline.deployment(url, feed):
        with legacy_path() if legacy else _nothing():
            pipeline.ingest(bench_pipeline.SOURCE, NOW)
            pipeline.detect_incidents(NOW)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def snapshot(url: str) -> dict[str, list]:
    """What the pipeline wrote, without surrogate ids or wall-clock stamps (posts by source id)."""
    engine = store.engine_for(url)
    with engine.connect() as conn:
        sid = dict(conn.execute(sa.text("select id, source_id from posts")).all())

        def rows(sql: str, post_cols: tuple[int, ...] = ()) -> list:
            out = []
            for row in conn.execute(sa.text(sql)).all():
                row = list(row)
                for i in post_cols:
                    row[i] = sid.get(row[i])
                out.append(tuple(str(v) for v in row))
            return sorted(out)

        return {
            "posts": rows("select id, t.in_region, t.tagged_at is not null, q.post_id is not null, duplicate_of, text_hash,"
                          " same_post_key from posts left join post_tags t on t.post_id = id"
                          " left join posts_to_tag q on q.post_id = id", (0, 4)),
            "geotags": rows("select post_id, kind, name, village, district, code, lon, lat, confidence, span_start, span_end,"
                            " reason, low_confidence, in_region from geotags", (0,)),
            "hazard_matches": rows("select post_id, hazard, terms, severity_cues, via_road, lists_fingerprint from hazard_matches", (0,)),
            "area_counts": rows("select hazard, level, area_code, bucket_start, posts, authors from area_counts"),
            "alerts": rows("select hazard, level, area_code, window_start, window_end, observed, expected, authors, score from alerts"),
            "incidents": rows("select hazard, level, area_code, state, severity, posts, authors, notified_posts from incidents"),
            "incident_events": rows("select incident_id, kind from incident_events"),
            "outbox": rows("select dedup_key, receiver, channel, kind, payload, state from outbox"),
        }


@pytest.fixture
def second_db(db_url, tmp_path):
    """Another empty database on the same backend as `db_url`."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
        store.migrate(url)
        yield url
        store.engine_for(url).dispose()
        return
    from conftest import _drop_pg_database, _new_pg_database

    url, admin, name = _new_pg_database()
    try:
        store.migrate(url)
        yield url
    finally:
        _drop_pg_database(admin, name, url)


def test_bulk_path_stores_what_the_per_row_path_stored(db_url, second_db, posts, tmp_path):
    run_pipeline(db_url, posts, tmp_path)
    run_pipeline(second_db, posts, tmp_path, legacy=True)
    bulk, per_row = snapshot(db_url), snapshot(second_db)
    assert len(bulk["posts"]) == len(posts)
    assert bulk["geotags"] and bulk["hazard_matches"] and bulk["alerts"] and bulk["outbox"]
    for table in bulk:
        assert bulk[table] == per_row[table], table


def test_rerunning_ingest_and_detect_changes_nothing(db_url, posts, tmp_path):
    run_pipeline(db_url, posts, tmp_path)
    first = snapshot(db_url)
    run_pipeline(db_url, posts, tmp_path)
    assert snapshot(db_url) == first


def test_tag_pending_tags_each_post_once_across_batches(db_url, posts, tmp_path, monkeypatch):
    monkeypatch.setattr(tagging, "TAG_BATCH", 7)  # many batches, the last one short
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(bench_pipeline.json.dumps(p) + "\n" for p in posts[:50]), encoding="utf-8")
    with bench_pipeline.deployment(db_url, feed):
        pipeline.ingest(bench_pipeline.SOURCE, NOW)
    tagger = tagging.Tagger(HazardSet.load(default_hazard_dir()))
    assert tagging.tag_pending(tagger, NOW, db_url) == 50
    first = snapshot(db_url)
    assert tagging.tag_pending(tagger, NOW, db_url) == 0
    assert snapshot(db_url) == first
    with store.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from posts_to_tag")).scalar_one() == 0
        assert conn.execute(sa.text("select count(*) from post_tags")).scalar_one() == 50
        assert conn.execute(sa.text("select count(*) from post_tags where in_region")).scalar_one() > 0


def test_a_batch_whose_write_fails_stays_untagged_and_a_rerun_tags_it_once(db_url, posts, tmp_path, monkeypatch):
    monkeypatch.setattr(tagging, "TAG_BATCH", 7)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(bench_pipeline.json.dumps(p) + "\n" for p in posts[:50]), encoding="utf-8")
    with bench_pipeline.deployment(db_url, feed):
        pipeline.ingest(bench_pipeline.SOURCE, NOW)
    tagger = tagging.Tagger(HazardSet.load(default_hazard_dir()))
    real, calls = tagging.store_tags, []

    def failing_third(session, tagged, fingerprint):
        calls.append(len(tagged))
        if len(calls) == 3:
            raise RuntimeError("database gone")
        real(session, tagged, fingerprint)

    monkeypatch.setattr(tagging, "store_tags", failing_third)
    with pytest.raises(RuntimeError, match="database gone"):
        tagging.tag_pending(tagger, NOW, db_url)
    assert calls == [7, 7, 7]  # nothing written after the failed batch
    with store.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from post_tags")).scalar_one() == 14
        assert conn.execute(sa.text("select count(*) from posts_to_tag")).scalar_one() == 36
    monkeypatch.setattr(tagging, "store_tags", real)
    assert tagging.tag_pending(tagger, NOW, db_url) == 36
    with store.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("select count(*) from posts_to_tag")).scalar_one() == 0
        assert conn.execute(sa.text(
            "select count(*) from (select post_id, hazard from hazard_matches group by 1, 2 having count(*) > 1) d")).scalar_one() == 0


def counts_frame(rows: list[tuple[str, str, str, datetime, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["hazard", "level", "area_code", "bucket_start", "posts", "authors"])


def stored_counts(url: str) -> list[tuple]:
    with store.session_scope(url) as session:
        return sorted(tuple(r) for r in session.execute(sa.select(
            store.AreaCount.hazard, store.AreaCount.level, store.AreaCount.area_code,
            store.AreaCount.bucket_start, store.AreaCount.posts, store.AreaCount.authors)).all())


@pytest.mark.parametrize("id_slice", [store.IN_SLICE, 2], ids=["one-slice", "many-slices"])
def test_write_area_counts_inserts_updates_and_deletes_in_bulk(db_url, id_slice, monkeypatch):
    monkeypatch.setattr(store, "IN_SLICE", id_slice)  # stored rows deleted in slices
    monkeypatch.setattr(counting, "COUNT_ROWS", id_slice)  # and streamed in lists
    t0 = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)
    five = timedelta(minutes=5)
    before = [("flood", "village", "a", t0, 3, 2), ("flood", "village", "b", t0, 1, 1), ("fire", "regency", "r", t0 + five, 2, 2)]
    outside = ("flood", "village", "a", t0 - 10 * five, 9, 9)  # before the first bucket: never touched
    with store.session_scope(db_url) as session:
        assert counting.write_area_counts(session, counts_frame(before + [outside]), t0 - 10 * five, t0 + five) == 4
    after = [("flood", "village", "a", t0, 4, 3), ("fire", "regency", "r", t0 + five, 2, 2), ("fire", "village", "c", t0 + five, 1, 1)]
    with store.session_scope(db_url) as session:
        # a changed, b gone, c new; r unchanged
        assert counting.write_area_counts(session, counts_frame(after), t0, t0 + five) == 3
    assert stored_counts(db_url) == sorted(after + [outside])
    with store.session_scope(db_url) as session:
        assert counting.write_area_counts(session, counts_frame(after), t0, t0 + five) == 0
    assert stored_counts(db_url) == sorted(after + [outside])


@pytest.mark.parametrize("write", ["write_area_counts", "_write_counts_diffed"])
def test_area_counts_written_in_sql_or_diffed_end_as_the_counts_say(db_url, write):
    """PostgreSQL takes the difference in one statement (`_write_counts_in_sql`), SQLite diffs
    the rows it reads (`_write_counts_diffed`): over rounds of random counts both leave exactly
    the rows asked for in the range, leave the rest alone and count the rows they changed."""
    import random

    rng = random.Random(7)
    t0 = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)
    five = timedelta(minutes=5)
    wita = timezone(timedelta(hours=8))
    keys = [(h, lv, f"c{c}", t0 + i * five) for h in ("flood", "fire") for lv in ("village", "road") for c in range(3) for i in range(8)]
    stored: dict[tuple, tuple[int, int]] = {}
    for _ in range(6):
        first, until = t0 + rng.randrange(0, 3) * five, t0 + rng.randrange(4, 8) * five
        chosen = rng.sample(keys, rng.randrange(0, len(keys)))
        wanted = {k: (rng.randrange(1, 3), 1) for k in chosen}
        # times in another zone are the same instants; rows outside [first, until] are not written
        rows = [(h, lv, c, when.astimezone(wita) if rng.random() < 0.5 else when, p, a) for (h, lv, c, when), (p, a) in wanted.items()]
        in_range = {k: v for k, v in wanted.items() if first <= k[3] <= until}
        expected = {k: v for k, v in stored.items() if not first <= k[3] <= until} | in_range
        changes = sum(1 for k in stored if first <= k[3] <= until and k not in in_range) \
            + sum(1 for k, v in in_range.items() if stored.get(k) != v)
        with store.session_scope(db_url) as session:
            if write == "write_area_counts":
                got = counting.write_area_counts(session, counts_frame(rows), first, until)
            else:
                got = counting._write_counts_diffed(session, counting._wanted_counts(counts_frame(rows), first, until), first, until)
        assert got == changes
        stored = expected
        assert stored_counts(db_url) == sorted((*k, *v) for k, v in stored.items())


@pytest.mark.parametrize("chunk", [2, 10_000], ids=["many-chunks", "one-chunk"])
def test_the_baseline_history_read_in_chunks_is_the_frame_read_at_once(db_url, chunk, monkeypatch):
    from siaga import baseline

    t0 = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)
    # area codes that read as numbers must stay text (the PostgreSQL read parses CSV)
    rows = [("flood", "village", ["v0", "51.08", "007"][i % 3], t0 + i * timedelta(minutes=5), i, 1) for i in range(7)]
    with store.session_scope(db_url) as session:
        counting.write_area_counts(session, counts_frame(rows), t0, t0 + timedelta(hours=1))
    monkeypatch.setattr(baseline, "READ_CHUNK", chunk)
    table = store.AreaCount
    columns = ["hazard", "level", "area_code", "bucket_start", "posts"]
    for until in (t0 + timedelta(hours=1), t0):  # seven rows, then none
        stmt = sa.select(table.hazard, table.level, table.area_code, table.bucket_start, table.posts) \
            .where(table.bucket_start < until).order_by(table.bucket_start)
        with store.session_scope(db_url) as session:
            whole = pd.DataFrame(session.execute(stmt).all(), columns=columns)
            chunked = baseline._read_frame(session, stmt, columns)
        pd.testing.assert_frame_equal(chunked, whole)
        assert len(chunked) == (7 if until > t0 else 0)


AWKWARD = ["tab\there", "new\nline", "back\\slash \\N", "cr\rlf", "emoji 🌊 and ĕ", "\\.", "", "quote ' \" end"]


def test_bulk_insert_stores_awkward_values_as_an_insert_would(db_url):
    rows = [
        {"source": "s", "fingerprint": f"f{i}", "location": text, "reason": text, "raw": text,
         "created_at": datetime(2026, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=8)))}
        for i, text in enumerate(AWKWARD)
    ]
    table = store.Quarantine.__table__
    with store.session_scope(db_url) as session:
        assert store.bulk_insert(session, table, rows, ignore_duplicates=True) == len(rows)
    with store.session_scope(db_url) as session:  # the same again and one new: only the new one counts
        assert store.bulk_insert(session, table, rows + [{**rows[0], "fingerprint": "new"}], ignore_duplicates=True) == 1
    with store.session_scope(db_url) as session:
        stored = {q.fingerprint: q for q in session.scalars(sa.select(store.Quarantine))}
    for row in rows:
        q = stored[row["fingerprint"]]
        assert (q.location, q.reason, q.raw) == (row["location"],) * 3
        assert q.created_at == datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)


def test_bulk_insert_json_and_null_round_trip(db_url, tmp_path):
    store_post = {"source": "s", "source_id": "1", "created_at": NOW, "author": None, "text": "a\tb\\c\n",
                  "url": None, "lat": -8.1, "lon": 115.09, "text_hash": "h", "raw": {"k": ["v\t", 1, None, 2.5, "\\N"]},
                  "ingested_at": NOW, "canonical_url": None, "same_post_key": None, "reposts_url": None,
                  "author_pseudonymised": True}
    with store.session_scope(db_url) as session:
        assert store.bulk_insert(session, store.Post.__table__, [store_post]) == 1
    with store.session_scope(db_url) as session:
        post = session.scalars(sa.select(store.Post)).one()
        assert (post.author, post.url, post.text, post.raw) == (None, None, "a\tb\\c\n", {"k": ["v\t", 1, None, 2.5, "\\N"]})
        assert (post.lat, post.lon, post.author_pseudonymised, post.created_at) == (-8.1, 115.09, True, NOW)


def test_bulk_insert_refuses_what_an_insert_refuses(db_url):
    row = {"source": "s", "fingerprint": "x" * 65, "location": "l", "reason": "r", "raw": "r",
           "created_at": NOW}
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite does not enforce string lengths")
    with pytest.raises(ValueError):
        with store.session_scope(db_url) as session:
            store.bulk_insert(session, store.Quarantine.__table__, [row])
    with pytest.raises(ValueError):
        with store.session_scope(db_url) as session:
            store.bulk_insert(session, store.Quarantine.__table__, [{**row, "fingerprint": "ok", "reason": "nul\x00"}])


def test_tag_partitions_share_no_post_and_together_tag_what_one_run_tags(db_url, second_db, posts, tmp_path):
    tagger = tagging.Tagger(HazardSet.load(default_hazard_dir()))
    for url in (db_url, second_db):
        feed = tmp_path / "feed.jsonl"
        feed.write_text("".join(bench_pipeline.json.dumps(p) + "\n" for p in posts[:60]), encoding="utf-8")
        with bench_pipeline.deployment(url, feed):
            pipeline.ingest(bench_pipeline.SOURCE, NOW)
    first = tagging.tag_pending(tagger, NOW, db_url, partition=(0, 2))
    with store.engine_for(db_url).connect() as conn:
        tagged_ids = set(conn.execute(sa.text("select post_id from post_tags")).scalars())
    assert tagged_ids and all(i % 2 == 0 for i in tagged_ids) and first == len(tagged_ids)
    second = tagging.tag_pending(tagger, NOW, db_url, partition=(1, 2))
    assert first + second == 60
    assert tagging.tag_pending(tagger, NOW, db_url) == 0  # what the detect run finds left
    assert tagging.tag_pending(tagger, NOW, second_db) == 60
    assert snapshot(db_url) == snapshot(second_db)


def test_bulk_insert_mixes_nulls_with_awkward_strings_and_whole_numbers(db_url):
    """Columns holding NULLs among strings (a place's village) and among numbers (its span)."""
    post = {"source": "s", "source_id": "1", "created_at": NOW, "text": "x", "text_hash": "h", "raw": {},
            "ingested_at": NOW}
    with store.session_scope(db_url) as session:
        store.bulk_insert(session, store.Post.__table__, [post])
        post_id = session.scalar(sa.select(store.Post.id))
    villages = AWKWARD + [None, None]
    rows = [{"post_id": post_id, "kind": "village", "name": f"n{i}", "village": v, "district": None,
             "code": None if i % 2 else str(i), "span_start": None if i % 3 else i, "span_end": i,
             "confidence": 0.5, "reason": "r", "low_confidence": False, "in_region": True}
            for i, v in enumerate(villages)]
    with store.session_scope(db_url) as session:
        assert store.bulk_insert(session, store.Geotag.__table__, rows) == len(rows)
    with store.session_scope(db_url) as session:
        stored = {g.name: g for g in session.scalars(sa.select(store.Geotag))}
    for row in rows:
        g = stored[row["name"]]
        assert (g.village, g.district, g.code, g.span_start, g.span_end) == \
            (row["village"], None, row["code"], row["span_start"], row["span_end"])


def test_bulk_insert_in_pieces_skips_duplicates_and_refuses_a_value_in_a_later_piece(db_url, monkeypatch):
    """PostgreSQL's COPY text is made a few rows at a time as it is sent (`store._CopyStream`):
    duplicates in any piece send the whole text again the way that skips them, and a value that
    cannot be encoded in a later piece fails the call as a ValueError, storing nothing of it."""
    monkeypatch.setattr(store, "COPY_SLICE", 2)
    rows = [{"source": "s", "fingerprint": f"f{i}", "location": AWKWARD[i % len(AWKWARD)], "reason": "r", "raw": f"raw {i}",
             "created_at": NOW} for i in range(7)]
    table = store.Quarantine.__table__
    with store.session_scope(db_url) as session:
        assert store.bulk_insert(session, table, rows[2:5], ignore_duplicates=True) == 3
    with store.session_scope(db_url) as session:  # the stored three are in the second and third pieces
        assert store.bulk_insert(session, table, rows, ignore_duplicates=True) == 4
    with store.session_scope(db_url) as session:
        assert sorted(session.scalars(sa.select(store.Quarantine.raw))) == sorted(r["raw"] for r in rows)
    fresh = [{**row, "fingerprint": f"g{i}"} for i, row in enumerate(rows)]
    fresh[5]["reason"] = "lone \ud800 surrogate"
    for ignore in (False, True):
        with pytest.raises(ValueError) as refused:
            with store.session_scope(db_url) as session:
                store.bulk_insert(session, table, fresh, ignore_duplicates=ignore)
        assert isinstance(refused.value, UnicodeEncodeError)  # itself, not a cancelled COPY
    with store.session_scope(db_url) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(store.Quarantine)) == len(rows)
