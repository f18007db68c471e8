"""The rate-limit headers of the source APIs (`sources.http.rate_limit`) are read on every page,
not only on a 429: whatever a server writes there, a page's posts are kept. Numbers out of any
clock's or count's range ("inf", "1e20") once raised OverflowError and failed every poll of the
source, its cursor never moving past the page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support.fakeapis import FAST, T0, X_TOKEN
from siaga.sources.http import rate_limit
from siaga.sources.x import XSource

NOW = T0 + timedelta(hours=3)
_NAMES = ["X-RateLimit-Remaining", "x-rate-limit-remaining", "RateLimit-Remaining",
          "X-RateLimit-Reset", "x-rate-limit-reset", "RateLimit-Reset"]
_NUMBERISH = st.sampled_from(["inf", "-inf", "nan", "1e20", "-1e20", "1e400", "9" * 400, "-0", "0x10", "1_000",
                              "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", ""])
_VALUE = st.one_of(_NUMBERISH, st.floats().map(repr), st.integers().map(str),
                   st.text(st.characters(codec="latin-1"), max_size=40))


@given(st.dictionaries(st.sampled_from(_NAMES), _VALUE, max_size=3))
def test_any_header_value_reads_as_a_limit_or_as_unknown(headers):
    limit = rate_limit(headers)
    assert limit.remaining is None or isinstance(limit.remaining, int)
    assert limit.exhausted in (True, False)


@pytest.mark.parametrize("headers", [{"x-rate-limit-reset": "1e20"}, {"x-rate-limit-reset": "inf"},
                                     {"x-rate-limit-remaining": "inf"}, {"x-rate-limit-remaining": "1e400"}])
def test_a_page_with_unreadable_limits_keeps_its_posts(api, author_key, monkeypatch, headers):
    monkeypatch.setenv("SIAGA_X_FAKE_TOKEN", X_TOKEN)
    api.tweet(300, 1, "banjir buleleng")
    api.data.headers["/2/tweets"] = headers
    entry = {"name": "x", "kind": "x", "conn_id": "x_fake", "api": api.url, "queries": ["banjir buleleng"], "language": "id"}
    source = XSource.from_config(entry, None, "sources[0]")
    source.policy, source.sleep = FAST, (lambda s: None)
    result = source.poll(None, NOW)
    assert [p.source_id for p in result.posts] == ["300"] and not result.failed
