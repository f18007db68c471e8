"""Every address a source is given (a feed, an instance, an appview, an API) is checked as one:
an http(s) URL to a host, refused at its field with the value shown without its secrets."""
from __future__ import annotations

import pytest

from siaga.sources import BlueskySource, MastodonSource, RssSource, XSource
from siaga.sources.base import SourceConfigError

BAD = ["bsky?app_password=SECRETPW", "ftp://files.example/feed", "https://", "http://[x", "javascript:alert(1)",
       "https://user:SECRETPW@/path", "wss://jetstream.example?token=SECRETPW", 42]

KINDS = [
    (RssSource, lambda url: {"name": "r", "feeds": ["https://ok.example/rss", url]}, "sources[0].feeds[1]"),
    (MastodonSource, lambda url: {"name": "m", "instances": [{"url": url, "hashtags": ["banjir"]}]}, "sources[0].instances[0].url"),
    (BlueskySource, lambda url: {"name": "b", "queries": ["banjir"], "appview": url}, "sources[0].appview"),
    (XSource, lambda url: {"name": "x", "conn_id": "x_default", "queries": ["banjir"], "api": url}, "sources[0].api"),
]


@pytest.mark.parametrize("url", BAD)
@pytest.mark.parametrize("source, entry, field", KINDS)
def test_an_address_that_is_not_an_http_url_is_refused_at_its_field(source, entry, field, url):
    with pytest.raises(SourceConfigError) as refused:
        source.from_config(entry(url), None, "sources[0]")
    said = str(refused.value)
    assert said.startswith(f"{field}: not an http(s) URL: " if isinstance(url, str) else f"{field}: "), said
    assert "SECRETPW" not in str(refused.value)


@pytest.mark.parametrize("source, entry, field", KINDS)
def test_a_good_address_is_taken(source, entry, field):
    assert source.from_config(entry("https://api.example.org/"), None, "sources[0]").name
