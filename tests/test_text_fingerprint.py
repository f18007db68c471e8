"""`text_fingerprint` scans for links and mentions only in a text that can hold one, with the same
result as scanning every text."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.normalise import quick_fold
from siaga.sources.base import _MENTIONS, _URLS, text_fingerprint

PIECES = ["http", "HTTPS", "://", "s://", "@", "@budi", "RT ", "rt  @", ":", " ", "\n", "\u00a0", "banjir", "İ", "é", "x.id/a",
          "'", "`", "aaa", "#1", "\t"]


def scanned_always(text: str) -> str:
    stripped = _MENTIONS.sub(" ", _URLS.sub(" ", text.lower()))
    return hashlib.sha256(quick_fold(stripped).text.encode()).hexdigest()[:32]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=12).map("".join))
def test_the_fingerprint_is_the_one_of_scanning_every_text(text):
    assert text_fingerprint(text) == scanned_always(text)


def test_links_and_mentions_still_drop_out():
    assert text_fingerprint("RT @budi: Banjir di Sangsit https://x.id/a") == text_fingerprint("Banjir di Sangsit")
