"""A pushed Mastodon search reads the announced statuses by id, and its poll looks back.

Through the real requests and httpx clients against the fake Mastodon (tests/support/fakeapis.py)
on 127.0.0.1, whose search can be made to lag (`unindexed`: statuses it does not return yet):
- the ids travel from the triggerer's stream to the ingest run (the trigger's payload, stored
  as JSON, read back by `siaga_push.announced_posts`), capped, hostile payloads ignored;
- the woken run reads them by id (`MastodonSource.read_announced`) and stores the posts the
  search would have stored, identical to the search's, only for what the search would return
  (its words, the source's language, an account that opted in to search, a public status);
- a by-id read that fails (deleted, 5xx, hanging, malformed) never fails the run; malformed
  is quarantined; the search cursor never moves for a status read by id;
- a search is polled from `LOOK_BACK` before its cursor, so a status indexed after a newer
  one is still found, and what is read again is neither new nor quarantined again.
"""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from support.fakeapis import FAST, T0, FakeApis
from support.triggers import rebuilt
from siaga import ingest, store
from siaga.redaction import redact_url
from siaga.sources import mastodon as masto, mastodon_public as mp, push
from siaga.sources.mastodon import MastodonSource, Stream

pytestmark = pytest.mark.usefixtures("author_key")

NOW = T0 + timedelta(hours=2)
SEARCH = "banjir buleleng"
CONN = "mastodon_cari"
SECRET = "tok-cari-rahasia"


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("SIAGA_MASTODON_CARI_TOKEN", SECRET)


def sid(seconds: float, seq: int = 0) -> int:
    """A Mastodon id: the status's creation time in ms, shifted 16 bits, plus a sequence."""
    return (int((T0 + timedelta(seconds=seconds)).timestamp() * 1000) << 16) + seq


def source(api: FakeApis, searches: tuple[str, ...] = (SEARCH,), **kw: Any) -> MastodonSource:
    streams = [Stream(api.url, "search", q, CONN) for q in searches] + kw.pop("tags", [])
    return MastodonSource("cari", streams, policy=FAST, sleep=lambda s: None, push=True, **kw)


def toot(api: FakeApis, status_id: int, text: str, indexed: bool = False, **extra: Any) -> dict[str, Any]:
    """A status on the fake, not in its search index unless `indexed`."""
    if not indexed:
        api.unindexed.add(str(status_id))
    return api.toot("lainnya", status_id, 1, text, **extra)


def announced(api: FakeApis, *ids: int) -> list[push.Announced]:
    return [push.Announced(redact_url(mp.mastodon_public_url(api.url)), tuple(map(str, ids)))]


def ids_of(posts: list[Any]) -> list[int]:
    return sorted(int(p.source_id.rsplit(":", 1)[1]) for p in posts)


# --- the ids, from the stream to the run ---------------------------------------------------------------


def _context(*payloads: Any) -> dict[str, Any]:
    from airflow.sdk import Asset

    events = [SimpleNamespace(extra={"from_trigger": True, "payload": p}) for p in payloads]
    return {"triggering_asset_events": {Asset("siaga://push/cari"): events}}


def test_the_announced_ids_go_from_the_trigger_through_the_database_to_the_run_that_reads_them(api):
    """The real trigger (rebuilt as the triggerer rebuilds it) on the fake's public stream: its
    event's payload, stored as JSON, gives the run the status the search cannot find yet."""
    import siaga_push

    src = source(api, language="id")
    (stream,) = src.push_streams()

    async def first_payload() -> Any:
        events = rebuilt(siaga_push.SourcePushTrigger.of(stream)).run()
        pending = asyncio.ensure_future(events.__anext__())
        while api.listening < 1:
            await asyncio.sleep(0.01)
        toot(api, sid(60), "Banjir Buleleng pagi ini, air setinggi lutut")
        event = await pending
        await events.aclose()
        return event.payload

    payload = json.loads(json.dumps(asyncio.run(asyncio.wait_for(first_payload(), 20))))
    assert payload == {"source": "cari", "announced": 1, "ids": [str(sid(60))], "stream": f"{api.url}/api/v1/streaming/public"}
    got = siaga_push.announced_posts(_context(payload), "cari")
    assert got == [push.Announced(payload["stream"], (str(sid(60)),))]
    assert siaga_push.announced_posts(_context(payload), "other") == []
    assert src.poll(None, NOW).posts == []  # the search has not indexed it
    posts, bad = src.read_announced(got, NOW)
    assert ids_of(posts) == [sid(60)] and bad == []


def test_a_burst_carries_at_most_max_ids_the_latest_and_other_readers_carry_none(api, monkeypatch):
    monkeypatch.setattr(push, "GAP", 0.5)
    (stream,) = source(api).push_streams()
    burst = [sid(100 + i) for i in range(push.MAX_IDS + 5)]

    async def wake_ups() -> list[push.WakeUp]:
        wakes = push.wake_ups(stream, gap=0.5)
        pending = asyncio.ensure_future(wakes.__anext__())
        while api.listening < 1:
            await asyncio.sleep(0.01)
        toot(api, sid(99), "Banjir Buleleng")
        got = [await pending]
        for i in burst:  # inside the gap after the first wake-up: one wake-up for all
            toot(api, i, "Banjir Buleleng lagi")
        got.append(await wakes.__anext__())
        await wakes.aclose()
        return got

    first, second = asyncio.run(asyncio.wait_for(wake_ups(), 20))
    assert first == push.WakeUp(1, (str(sid(99)),))
    assert second.count == len(burst) and second.ids == tuple(map(str, burst[-push.MAX_IDS:]))
    assert "ids" not in push.WakeUp(3).payload(push.PushStream("s", "https://m.example/api/v1/streaming/hashtag?tag=x"))


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
                     max_leaves=30)


@hsettings(max_examples=300, deadline=None)
@given(payload=_JSON | st.fixed_dictionaries({"stream": st.text(max_size=40), "ids": st.lists(_JSON | st.from_regex(r"[0-9]{1,40}", fullmatch=True), max_size=40)}))
def test_a_payload_of_any_shape_gives_decimal_ids_within_the_cap_or_nothing(payload):
    """The payload comes back from Airflow's database: whatever it holds, the run gets no more
    than MAX_IDS decimal ids, or none, and never an error."""
    got = push.announced_in(payload)
    if got is not None:
        assert 0 < len(got.ids) <= push.MAX_IDS and len(set(got.ids)) == len(got.ids)
        assert all(i.isascii() and i.isdigit() and len(i) <= 30 for i in got.ids)


# --- reading by id: the post the search would store ------------------------------------------------------


def test_a_status_read_by_id_is_the_post_the_search_stores_later_and_is_stored_once(api, sqlite_url):
    toot(api, sid(10), "Banjir Buleleng, jalan ke Singaraja putus", acct="budi")
    src = source(api)
    first = ingest.ingest(src, NOW, sqlite_url, announced=announced(api, sid(10)))
    assert first.new_posts == 1
    (read,) = api.hits("/api/v1/statuses/")
    assert read.path == f"/api/v1/statuses/{sid(10)}" and read.headers["Authorization"] == f"Bearer {SECRET}"
    api.unindexed.clear()  # now the search finds it
    by_search = src.poll(None, NOW).posts
    with store.session_scope(sqlite_url) as session:
        (row,) = session.query(store.Post).all()
        stored = (row.source_id, row.text, row.author, row.url, row.raw)
    assert [(p.source_id, p.text, p.author, p.url, p.raw) for p in by_search] == [stored]
    again = ingest.ingest(src, NOW, sqlite_url)
    assert (again.new_posts, again.duplicates) == (0, 1)


def _status(words: list[str], lang: str | None, indexable: Any, visibility: str, boost: bool) -> dict[str, Any]:
    account = {"id": "1", "acct": "warga"} if indexable == "missing" else {"id": "1", "acct": "warga", "indexable": indexable}
    return {"id": "5", "content": "<p>" + " ".join(words) + "</p>", "language": lang, "account": account,
            "visibility": visibility, "reblog": {"id": "4"} if boost else None}


@hsettings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(["banjir", "BANJIR", "Buleleng", "buleleng", "bánjir", "banjar", "kebanjiran", "hujan"]),
                      max_size=5),
       lang=st.sampled_from([None, "id", "in", "en", "id-ID"]), indexable=st.sampled_from([True, False, None, "missing"]),
       visibility=st.sampled_from(["public", "unlisted", "private"]), boost=st.booleans())
def test_only_what_the_search_returns_is_kept(words, lang, indexable, visibility, boost):
    """A status read by id is kept when Mastodon's public search for the query returns it: all
    its words, whole (any case, accents); the source's language when both name one; a public
    status, not a boost, by an account that opted in to search (`indexable: true`)."""
    text = mp.searched_text(_status(words, lang, indexable, visibility, boost), "id")
    folded = {w.lower().replace("á", "a") for w in words}
    searchable = indexable is True and visibility == "public" and not boost and lang in (None, "id", "in", "id-ID")
    assert (text is not None) == searchable
    if text is not None:
        assert mp.search_matcher(SEARCH)(text) == ({"banjir", "buleleng"} <= folded)


@pytest.mark.parametrize("query, text, found", [
    ('"pohon tumbang"', "Pohon tumbang di Jalan Ahmad Yani", True),
    ('"pohon tumbang"', "Tumbang sebuah pohon", False),  # the phrase's words, not side by side
    ("+banjir +buleleng", "banjir di buleleng", True),
    ("banjir buleleng", "banjir di Jembrana", False),
])
def test_a_search_of_words_and_phrases_is_checked_here(query, text, found):
    assert mp.search_matcher(query)(text) is found


@pytest.mark.parametrize("query", ["banjir from:bpbd", "banjir has:media", "banjir -jakarta", "banj*", "banjir OR longsor",
                                   "banjir language:id", "is:reply banjir", "from:bpbd", "", '"banjir'])
def test_a_search_this_cannot_check_is_never_read_by_id(api, query):
    """Filters, exclusions, wildcards, operators: the search decides what it returns; such a
    search is left to its poll and no status is read by id for it."""
    assert mp.search_matcher(query) is None
    toot(api, sid(10), "Banjir di Buleleng")
    assert source(api, searches=(query,)).read_announced(announced(api, sid(10)), NOW) == ([], [])
    assert api.hits("/api/v1/statuses/") == []


def test_statuses_the_search_would_not_return_are_read_but_neither_stored_nor_quarantined(api):
    toot(api, sid(1), "Banjir Buleleng", account={"id": "1", "acct": "diam", "indexable": False})
    toot(api, sid(2), "Banjir Buleleng", language="en")
    toot(api, sid(3), "Banjir di Jembrana")
    toot(api, sid(4), "Banjir Buleleng", visibility="unlisted")
    toot(api, sid(5), "Banjir Buleleng lagi")
    posts, bad = source(api, language="id").read_announced(announced(api, *(sid(i) for i in range(1, 6))), NOW)
    assert ids_of(posts) == [sid(5)] and bad == []
    # the first matching search names the stream, as the search that finds it would
    posts, _ = source(api, searches=("pohon tumbang", "banjir", SEARCH)).read_announced(announced(api, sid(5)), NOW)
    assert [p.raw["stream"] for p in posts] == [f"{api.url[7:]}/search:banjir"]


def test_ids_of_another_stream_or_instance_and_ids_the_poll_read_are_not_read(api):
    toot(api, sid(1), "Banjir Buleleng")
    src = source(api)
    other = [push.Announced("https://lain.example/api/v1/streaming/public", (str(sid(1)),))]
    assert src.read_announced(other, NOW) == ([], [])
    assert src.read_announced(announced(api, sid(1)), NOW, skip={f"{api.url[7:]}:{sid(1)}"}) == ([], [])
    assert api.hits("/api/v1/statuses/") == []


def test_at_most_max_read_by_id_statuses_are_read_per_run_the_newest(api, monkeypatch):
    monkeypatch.setattr(masto, "MAX_READ_BY_ID", 3)
    for i in range(6):
        toot(api, sid(i), f"Banjir Buleleng {i}")
    posts, _ = source(api).read_announced(announced(api, *(sid(i) for i in range(6))), NOW)
    assert ids_of(posts) == [sid(3), sid(4), sid(5)] and len(api.hits("/api/v1/statuses/")) == 3


def test_the_cap_holds_across_instances(api, monkeypatch):
    """Once one instance's reads spent the run's budget, another's get none."""
    monkeypatch.setattr(masto, "MAX_READ_BY_ID", 2)
    with FakeApis() as other:
        for fake in (api, other):
            for i in range(3):
                toot(fake, sid(i), f"Banjir Buleleng {i}")
        src = MastodonSource("cari", [Stream(api.url, "search", SEARCH, CONN), Stream(other.url, "search", SEARCH, CONN)],
                             policy=FAST, sleep=lambda s: None)
        posts, _ = src.read_announced(announced(api, sid(0), sid(1), sid(2)) + announced(other, sid(0)), NOW)
        assert ids_of(posts) == [sid(1), sid(2)] and other.hits("/api/v1/statuses/") == []


# --- failures of the by-id read ---------------------------------------------------------------------------


def test_a_deleted_status_is_skipped_and_the_others_still_read(api, caplog):
    toot(api, sid(1), "Banjir Buleleng satu")
    toot(api, sid(2), "Banjir Buleleng dua")
    api.delete_status(sid(2))
    with caplog.at_level("INFO"):
        posts, bad = source(api).read_announced(announced(api, sid(1), sid(2)), NOW)
    assert ids_of(posts) == [sid(1)] and bad == []
    assert "HTTP 404" in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("mode, status", [("server_error", 503), ("hang", 500), ("ratelimit", 429), ("echo", 403)])
def test_a_failing_instance_ends_the_reads_quickly_and_never_fails_the_run(api, sqlite_url, mode, status, caplog):
    """Two tries at most (one retry), then no more reads on that instance this run: the run's
    poll is stored, nothing raises, the token is not logged (not even quoted back by the
    server); the poll finds them once indexed."""
    for i in (1, 2, 3):
        toot(api, sid(i), f"Banjir Buleleng {i}")
    api.fail("/api/v1/statuses/", mode, times=10, seconds=120 if mode == "ratelimit" else 2, status=status)
    with caplog.at_level("INFO"):
        report = ingest.ingest(source(api), NOW, sqlite_url, announced=announced(api, sid(1), sid(2), sid(3)))
    assert report.new_posts == 0 and len(api.hits("/api/v1/statuses/")) <= masto.BY_ID_ATTEMPTS
    assert "the search poll will find it" in caplog.text and SECRET not in caplog.text
    api.unindexed.clear()
    assert ingest.ingest(source(api), NOW, sqlite_url).new_posts == 3


@pytest.mark.parametrize("mode", ["malformed", "wrong_shape"])
def test_a_body_that_is_not_the_status_is_quarantined_once_and_the_others_still_read(api, sqlite_url, mode):
    toot(api, sid(1), "Banjir Buleleng satu")
    toot(api, sid(2), "Banjir Buleleng dua")
    api.fail(f"/api/v1/statuses/{sid(2)}", mode, times=2)
    src = source(api)
    report = ingest.ingest(src, NOW, sqlite_url, announced=announced(api, sid(1), sid(2)))
    assert (report.new_posts, report.quarantined) == (1, 1)
    with store.session_scope(sqlite_url) as session:
        (bad,) = session.query(store.Quarantine).all()
        assert str(sid(2)) in bad.location
    again = ingest.ingest(src, NOW, sqlite_url, announced=announced(api, sid(2)))
    assert (again.new_posts, again.quarantined) == (0, 0)


# --- the search cursor ------------------------------------------------------------------------------------


def _cursor(url: str) -> dict[str, Any]:
    with store.session_scope(url) as session:
        return ingest.read_cursor(session, "cari") or {}


def test_a_status_read_by_id_never_moves_the_search_cursor(api, sqlite_url):
    """Ids are time-ordered but the index is not: a cursor moved to a status read by id would
    skip an older status the search indexes after it."""
    toot(api, sid(0), "Banjir Buleleng kemarin", indexed=True)
    src = source(api)
    ingest.ingest(src, NOW, sqlite_url)
    before = _cursor(sqlite_url)
    toot(api, sid(100), "Banjir Buleleng, air naik di Sangsit")  # published first, indexed late
    toot(api, sid(3600), "Banjir Buleleng, jalan putus")  # announced and read by id
    assert ingest.ingest(src, NOW, sqlite_url, announced=announced(api, sid(3600))).new_posts == 1
    assert _cursor(sqlite_url) == before
    api.unindexed.clear()
    report = ingest.ingest(src, NOW, sqlite_url)
    # the older one found; the one read by id (and the first, in the look-back) kept once
    assert (report.new_posts, report.duplicates) == (1, 2)


def test_the_search_looks_back_for_a_status_indexed_after_a_newer_one(api, sqlite_url):
    """A (published at 100 s) is indexed after B (110 s): the poll that finds B alone must not
    step over A. What the look-back reads again is neither new nor quarantined again."""
    toot(api, sid(0), "Banjir Buleleng kemarin", indexed=True)
    src = source(api)
    assert ingest.ingest(src, NOW, sqlite_url).new_posts == 1
    toot(api, sid(100), "Banjir Buleleng, A")
    toot(api, sid(110), "Banjir Buleleng, B", indexed=True)
    toot(api, sid(105), "Banjir Buleleng", created_at="kemarin sore", indexed=True)  # bad: quarantined once
    first = ingest.ingest(src, NOW, sqlite_url)
    assert (first.new_posts, first.quarantined) == (1, 1)
    assert _cursor(sqlite_url)["streams"][f"{api.url[7:]}/search:{SEARCH}"] == {"min_id": str(sid(110))}
    api.unindexed.discard(str(sid(100)))  # A indexed 70 s after B
    second = ingest.ingest(src, NOW, sqlite_url)
    assert (second.new_posts, second.quarantined) == (1, 0)
    third = ingest.ingest(src, NOW, sqlite_url)
    assert (third.new_posts, third.quarantined) == (0, 0)
    with store.session_scope(sqlite_url) as session:
        assert ids_of(session.query(store.Post).all()) == [sid(0), sid(100), sid(110)]


def test_the_look_back_is_two_minutes_of_ids_and_only_for_searches(api):
    assert masto.looked_back("5") == "0" and masto.looked_back(None) is None
    api.toot("banjirbuleleng", sid(600), 0, "Banjir di Sawan")
    toot(api, sid(600, 1), "Banjir Buleleng", indexed=True)
    src = source(api, tags=[Stream(api.url, "tag", "banjirbuleleng")])
    src.poll(src.poll(None, NOW).cursor, NOW)
    # the search: its second poll from two minutes before its cursor, then on from the newest read
    assert [r.params.get("min_id") for r in api.hits("/api/v2/search")] == [None, str(sid(480, 1)), str(sid(600, 1))]
    assert [r.params.get("min_id") for r in api.hits("/api/v1/timelines/tag/")] == [None, str(sid(600))]


def test_a_search_busier_than_a_page_in_the_look_back_still_moves_forward(api):
    """The look-back is one page: a window denser than that must not hold the cursor still."""
    toot(api, sid(0), "Banjir Buleleng awal", indexed=True)
    src = source(api, limit=5, max_pages=2)
    cursor = src.poll(None, NOW).cursor
    for i in range(1, 13):  # twelve statuses within two minutes of the cursor's, indexed
        toot(api, sid(i), f"Banjir Buleleng {i}", indexed=True)
    cursor = src.poll(cursor, NOW).cursor  # one page looking back, one forward: up to sid(9)
    toot(api, sid(200), "Banjir Buleleng baru", indexed=True)
    result = src.poll(cursor, NOW)  # the first page is all old ones again; the second moves on
    assert {sid(10), sid(11), sid(12), sid(200)} <= set(ids_of(result.posts))
    assert result.cursor["streams"][f"{api.url[7:]}/search:{SEARCH}"] == {"min_id": str(sid(200))}

