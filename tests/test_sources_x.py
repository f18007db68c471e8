"""X API v2 recent search through the real client: bearer token from the environment, since_id
sweeps with next_token and until_id, retweets linked, 401 and rate limits failing cleanly."""
from __future__ import annotations

from datetime import timedelta

import pytest

from support.fakeapis import FAST, T0, X_TOKEN
from siaga.sources import SourceConfigError
from siaga.sources.x import XSource, status_url

NOW = T0 + timedelta(hours=3)


@pytest.fixture(autouse=True)
def x_token(author_key, monkeypatch):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)


def src(api, **kw):
    entry = {"name": "x", "kind": "x", "conn_id": "x_fake", "api": api.url, "queries": ["banjir buleleng"], "language": "id", **kw}
    s = XSource.from_config(entry, None, "sources[0]")
    s.policy, s.sleep = FAST, (lambda s: None)
    return s


def test_since_id_sweep_pages_and_backfills(api):
    api.tweet(100, 0, "Banjir buleleng di Anturan")
    s = src(api, max_results=2, max_pages=2)
    first = s.poll(None, NOW)
    assert [p.source_id for p in first.posts] == ["100"] and first.cursor["queries"]
    for i in range(101, 106):
        api.tweet(i, i - 100, f"banjir buleleng {i}")
    second = s.poll(first.cursor, NOW)
    assert [p.source_id for p in second.posts] == ["105", "104", "103", "102"]
    third = s.poll(second.cursor, NOW)
    assert [p.source_id for p in third.posts] == ["101"]
    hits = api.hits("/2/tweets/search/recent")
    assert hits[-1].params["until_id"] == "102" and hits[-1].params["since_id"] == "100"
    assert hits[-1].params["query"] == "(banjir buleleng) lang:id"
    assert s.poll(third.cursor, NOW).posts == []
    assert api.hits("/2/tweets/search/recent")[-1].params["since_id"] == "105"


def test_retweet_linked_and_handle_hashed(api):
    api.tweet(200, 1, "Banjir buleleng, Jl. Gajah Mada terendam", username="bpbd_buleleng")
    api.tweet(201, 2, "RT @bpbd_buleleng: Banjir buleleng, Jl. Gajah Mada terendam", username="made",
              referenced_tweets=[{"type": "retweeted", "id": "200"}])
    posts = {p.source_id: p for p in src(api, official_accounts=["@BPBD_Buleleng"]).poll(None, NOW).posts}
    assert posts["201"].reposts == posts["200"].canonical_url == status_url(200)
    assert posts["200"].author == "bpbd_buleleng" and posts["201"].author.startswith("anon:")
    assert posts["201"].text_hash == posts["200"].text_hash  # "RT @x:" copies count once downstream


def test_rate_limit_reset_and_401(api, monkeypatch):
    api.tweet(300, 1, "banjir buleleng")
    api.fail("/2/tweets/search/recent", "ratelimit", seconds=600)
    result = src(api).poll(None, NOW)
    assert result.posts == [] and "rate limited for 600s" in result.failed[0]
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", "wrong")
    result = src(api).poll(None, NOW)
    assert "HTTP 401" in result.failed[0] and "wrong" not in result.failed[0]


def test_a_response_without_end_fails_the_poll_and_the_next_poll_reads_the_page(api):
    """A body past sources.http.MAX_RESPONSE_BYTES is refused while it is read (it was read
    whole into memory first): the poll says so, and the cursor stays for the next one."""
    api.tweet(310, 1, "banjir buleleng")
    api.fail("/2/tweets/search/recent", "endless")
    s = src(api)
    result = s.poll(None, NOW)
    assert result.posts == [] and "response larger than 16000000 bytes" in result.failed[0]
    assert [p.source_id for p in s.poll(result.cursor, NOW).posts] == ["310"]


def test_missing_credentials_name_the_connection(api, monkeypatch):
    monkeypatch.delenv("SIAGA_X_FAKE_TOKEN")
    with pytest.raises(SourceConfigError, match="x_fake.*SIAGA_X_FAKE_TOKEN"):
        src(api).poll(None, NOW)


def test_exhausted_window_stops_paging(api):
    for i in range(400, 410):
        api.tweet(i, i - 399, f"banjir buleleng {i}")
    s = src(api, max_results=2, max_pages=5)
    first = s.poll(None, NOW)
    api.tweet(420, 30, "banjir buleleng baru")
    api.tweet(421, 31, "banjir buleleng baru lagi")
    api.tweet(422, 32, "banjir buleleng lagi")
    api.data.headers["/2/tweets"] = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1999999999"}
    second = s.poll(first.cursor, NOW)
    assert [p.source_id for p in second.posts] == ["422", "421"]  # one page, then stop
    assert second.cursor["queries"]["(banjir buleleng) lang:id"]["sweep"]["until"] == "421"


def test_bounding_boxes_become_geo_queries_and_big_boxes_are_refused():
    entry = {"name": "x", "kind": "x", "conn_id": "x_bearer", "queries": ["banjir buleleng"],
             "geo_query": "banjir OR longsor", "bounding_boxes": [[114.43, -8.39, 114.70, -8.06]]}
    source = XSource.from_config(entry, None, "sources.yaml: sources[0]")
    assert source.queries == ["banjir buleleng", "(banjir OR longsor) bounding_box:[114.43 -8.39 114.7 -8.06]"]
    whole_regency = dict(entry, bounding_boxes=[[114.43, -8.39, 115.46, -8.06]])
    with pytest.raises(SourceConfigError, match=r"bounding_boxes\[0\]: 113 x 36 km"):
        XSource.from_config(whole_regency, None, "sources.yaml: sources[0]")
    with pytest.raises(SourceConfigError, match="geo_query"):
        XSource.from_config(dict(entry, geo_query=None), None, "sources.yaml: sources[0]")


def test_repository_x_example_is_valid():
    import yaml

    from siaga import settings
    from siaga.sources import load_sources

    doc = yaml.safe_load((settings.config_dir() / "sources.yaml").read_text())
    (entry,) = [e for e in doc["sources"] if e["kind"] == "x"]
    source = XSource.from_config(entry, None, "sources.yaml")
    assert sum("bounding_box:" in q for q in source.queries) == 4
    assert load_sources()  # the file as a whole still loads


def test_hostile_page_parts_cost_nothing_but_their_items(api):
    from support.fakeapis import Raw

    api.tweet(500, 1, "banjir buleleng di Banyuasri")
    api.data.x.append(Raw(b'{"id": "501", "text": "banjir buleleng", "created_at": "2026-01-15T00:02:00Z", "author_id": ["x"], '
                          b'"geo": {"coordinates": {"coordinates": [true, 1]}}}', key=501))
    api.data.x.append(Raw(b'{"id": "502", "text": "banjir buleleng \\u0000", "created_at": "2026-01-15T00:02:00Z"}', key=502))
    result = src(api).poll(None, NOW)
    assert [p.source_id for p in result.posts] == ["500"] and not result.failed
    bad = {b.location: b.reason for b in result.bad}
    assert sorted(bad) == ["x:tweet 501", "x:tweet 502"]
    assert "geo.coordinates[0]" in bad["x:tweet 501"] and "NUL" in bad["x:tweet 502"]
    assert result.cursor["queries"]["(banjir buleleng) lang:id"]["high"] == "502"  # past the bad ones too
