"""Newest-first searches (X, Bluesky) re-read a little below their mark (`paging.sweep`'s
look-back), so a post the search shows only after a newer one is still read: the index that
serves the search is fed by queues, not in the order of ids or index times."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from support.fakeapis import FAST, T0, X_TOKEN
from siaga.sources import paging
from siaga.sources.bluesky import LOOKBACK, BlueskySource
from siaga.sources.paging import Page
from siaga.sources.x import LOOKBACK_IDS, LOOKBACK_S, XSource

NOW = T0 + timedelta(hours=3)
X_EPOCH_MS = 1288834974657


def snowflake(when: datetime, seq: int = 0) -> int:
    """A tweet id as X makes them: milliseconds since X's epoch, shifted past worker and sequence."""
    return ((int(when.timestamp() * 1000) - X_EPOCH_MS) << 22) | seq


@pytest.fixture
def x_source(api, author_key, monkeypatch):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)
    entry = {"name": "x", "kind": "x", "conn_id": "x_fake", "api": api.url, "queries": ["banjir buleleng"]}
    source = XSource.from_config(entry, None, "sources[0]")
    source.policy, source.sleep = FAST, (lambda s: None)
    return source


def test_x_reads_a_tweet_the_search_shows_after_a_newer_one(api, x_source):
    newer = T0 + timedelta(minutes=5)
    api.tweet(snowflake(T0), 0, "banjir buleleng pagi ini")
    cursor = x_source.poll(None, NOW).cursor
    api.tweet(snowflake(newer), 5, "banjir buleleng di Anturan")
    cursor = (second := x_source.poll(cursor, NOW)).cursor
    assert [int(p.source_id) for p in second.posts] == [snowflake(newer), snowflake(T0)]  # T0's again: a duplicate
    # Posted 20 s before the tweet already read, searchable only now: the next poll reads it.
    late = snowflake(newer - timedelta(seconds=20), seq=7)
    api.tweet(late, 5, "banjir buleleng, air masuk rumah warga")
    third = x_source.poll(cursor, NOW)
    assert late in [int(p.source_id) for p in third.posts]
    assert api.hits("/2/tweets/search/recent")[-1].params["since_id"] == str(snowflake(newer) - LOOKBACK_IDS)
    # The look-back is bounded: what the search shows more than LOOKBACK_S late stays unread
    # (X bills every tweet a search returns, re-read or not).
    too_late = snowflake(newer - timedelta(seconds=LOOKBACK_S + 5))
    api.tweet(too_late, 5, "banjir buleleng kemarin")
    assert too_late not in [int(p.source_id) for p in x_source.poll(third.cursor, NOW).posts]


def test_x_ids_from_before_2010_are_no_times(api, x_source):
    """X numbered tweets with a counter before its ids became times: no look-back below such a mark."""
    api.tweet(100, 0, "banjir buleleng")
    cursor = x_source.poll(None, NOW).cursor
    x_source.poll(cursor, NOW)
    assert api.hits("/2/tweets/search/recent")[-1].params["since_id"] == "100"


def test_bluesky_reads_a_post_indexed_after_a_newer_one(api, author_key):
    source = BlueskySource("bsky", ["longsor buleleng"], appview=api.url, policy=FAST, sleep=lambda s: None)
    api.skeet("a0", 0, "longsor buleleng di Wanagiri")
    cursor = source.poll(None, NOW).cursor
    api.skeet("b1", 5, "longsor buleleng di Pancasari")
    cursor = source.poll(cursor, NOW).cursor
    late_minutes = 5 - (LOOKBACK.total_seconds() - 10) / 60  # indexed 10 s inside the look-back
    api.skeet("l1", late_minutes, "longsor buleleng, jalan tertutup")
    assert "l1" in [p.source_id.rsplit("/", 1)[1] for p in source.poll(cursor, NOW).posts]


# --- the sweep itself, over any order of arrival the look-back covers ------------------------------


class Index:
    """A newest-first search over integer marks, `since` and `until` exclusive, paged by offset.
    Its posts are the marks themselves (the sweep only gathers them)."""

    def __init__(self, page_size: int) -> None:
        self.visible: set[int] = set()
        self.page_size = page_size

    def fetch(self, floor: int | None, until: int | None, token: str | None) -> Page:
        rows = sorted((m for m in self.visible if (floor is None or m > floor) and (until is None or m < until)), reverse=True)
        start = int(token or 0)
        page = rows[start:start + self.page_size]
        more = start + self.page_size < len(rows)
        return Page(list(page), [], list(page), str(start + self.page_size) if more else None)


@settings(max_examples=300, deadline=None)
@given(
    lags=st.lists(st.integers(0, 9), min_size=1, max_size=40),
    polls_every=st.integers(1, 4),
    page_size=st.integers(1, 5),
    max_pages=st.integers(1, 4),
)
def test_every_post_is_read_when_it_shows_within_the_look_back(lags, polls_every, page_size, max_pages):
    """Post i (mark 10 * i) is posted at tick i and becomes searchable `lags[i]` ticks later; a
    poll runs every `polls_every` ticks. Whatever the paging, every post that shows less than
    the look-back late (lag under 10 ticks, look-back 100 marks) is read by some poll. Without
    the look-back a late post below a mark already read is lost."""
    index, state, read = Index(page_size), {}, set()
    index.visible.add(-10)  # read by the first poll, which reads no history: the mark starts here
    arrivals = {}
    for tick, lag in enumerate(lags):
        arrivals.setdefault(tick + lag, set()).add(10 * tick)
    for tick in range(max(arrivals) + 200 * polls_every):
        index.visible |= arrivals.get(tick, set())
        if tick % polls_every == 0:
            got = paging.sweep(index.fetch, state, max_pages, int, str, lookback=lambda high: high - 100)
            state = got.state
            read |= set(got.posts)
    assert {10 * tick for tick in range(len(lags))} <= read


def test_without_a_look_back_the_late_post_is_lost():
    """The failure the look-back exists for, shown on the same index: a later post read first
    moves the mark past an earlier one that shows afterwards."""
    index = Index(page_size=5)
    index.visible |= {-10}
    state = paging.sweep(index.fetch, {}, 3, int, str).state
    index.visible |= {20}
    state = paging.sweep(index.fetch, state, 3, int, str).state
    index.visible |= {10}
    assert 10 not in paging.sweep(index.fetch, state, 3, int, str).posts
    assert 10 in paging.sweep(index.fetch, state, 3, int, str, lookback=lambda high: high - 100).posts
