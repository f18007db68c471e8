"""`canonical_url`'s shortcut for URLs already in plain shape spells every URL as the general
path (urlsplit and friends) does."""
from __future__ import annotations

import random

import pytest

from siaga.sources.base import _canonical_url, canonical_url

URLS = [
    "https://example.org/bench/1", "http://example.org/bench/1/", "https://www.berita.example/banjir-sangsit",
    "https://example.org", "https://example.org/", "https://example.org//a//", "https://twitter.com/someone/status/123",
    "https://x.com/i/web/status/9", "https://mobile.twitter.com/a/statuses/5/", "https://x.com/someone",
    "https://m.facebook.com/story.php", "https://www", "https://www.x.com/a/status/1", "https://a-b.c-d.example/%20x:y@z",
    "https://Example.org/A", "https://example.org:8080/a", "https://example.org:443/a", "https://example.org/a?utm_source=x",
    "https://example.org/a#frag", "ftp://example.org/a", "https://example.org/a b", " https://example.org/a ",
    "https://bsky.app/profile/did:plc:abc/post/q0", "https://example.org/~user/(x)/'y'/*+,;=!$&",
]


@pytest.mark.parametrize("url", URLS)
def test_shortcut_equals_the_general_path(url):
    assert canonical_url(url) == _canonical_url(url)


def test_shortcut_equals_the_general_path_on_random_urls():
    rng = random.Random(7)
    alphabet = "aZ09-._~/:@%!$&'()*+,;=?#[] \tw"
    hosts = ["example.org", "www.example.org", "twitter.com", "x.com", "www.x.com", "mobile.x.com", "m.facebook.com", "a-", "www"]
    for _ in range(5000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        url = f"{rng.choice(['http', 'https', 'HTTPS'])}://{rng.choice(hosts)}{rng.choice(['', '/'])}{path}"
        assert canonical_url(url) == _canonical_url(url), url
    for n in range(200):
        url = f"https://{rng.choice(['x.com', 'twitter.com'])}/{rng.choice(['someone', 'i/web'])}/status/{n}{rng.choice(['', '/'])}"
        assert canonical_url(url) == _canonical_url(url), url
