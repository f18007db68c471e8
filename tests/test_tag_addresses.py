"""`siaga tag`: a link, an e-mail address or an @handle in a post is an address (a publisher, an
account), not a place the post says something happens in.

Before, a place name anywhere in one was a mention like any other: "Banjir di Denpasar, info
@Buleleng_Info" came out `in_region: true` (an alert for Buleleng about Denpasar), and "Banjir
di Sangsit https://denpasar.kompas.com/..." gained a Denpasar place. What a user expects, and
what is checked here:

- a name inside `https://...`, `www....`, `user@host.tld` or `@handle` is no place mention;
- the same name written as a word ("di Lovina"), as a hashtag ("#Sangsit") or after "@ " with a
  space ("macet @ Lovina", "@" read as "at") still is;
- coordinates written in a link (a map link's "?q=-8.11,115.09") still place the post: they are
  where, whoever wrote them;
- hazard words are not touched: a shared article's slug ("/banjir-rendam-...") is its headline.

A hashtag is the post's own words: its compounds are tests/test_tag_hashtags.py's.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.geotag import default_geotagger
from siaga.normalise import address_spans

_GEOTAGGER = default_geotagger()


def _tag_lines(texts: list[str]) -> list[dict]:
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input=data, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _names(row: dict) -> list[str]:
    return [p["name"] for p in row["places"]]


def test_places_inside_links_mails_and_handles_are_not_mentions():
    texts = [
        "Banjir di Denpasar, info @Buleleng_Info",
        "RT @Polres_Buleleng: pohon tumbang di Denpasar",
        "Banjir di Denpasar https://buleleng.example.com/berita/sangsit",
        "Banjir di Denpasar, lapor ke bpbd@buleleng.go.id",
        "Banjir di Sangsit https://denpasar.kompas.com/read/2026/01/15/banjir",
        "Banjir di Sangsit, kabari www.denpasar-news.example",
        "Banjir di Sangsit cc @BPBD_Denpasar",
    ]
    rows = _tag_lines(texts)
    for row in rows[:4]:
        assert row["in_region"] is False, (texts[row["id"]], row)
        assert _names(row) == ["Kota Denpasar"], (texts[row["id"]], row)
    for row in rows[4:]:
        assert row["in_region"] is True and _names(row) == ["Sangsit"], (texts[row["id"]], row)
        assert "flood" in row["hazards"]


def test_the_same_names_as_words_hashtags_or_after_an_at_sign_and_a_space_still_count():
    texts = [
        "Banjir di #Sangsit",
        "macet @ Lovina",
        "kebakaran di Lovina, foto @kawan_lama",
        "pohon tumbang https://maps.example/?q=-8.1125,115.0905",
        "gempa https://www.bmkg.go.id/gempabumi/banjir-longsor",
    ]
    rows = _tag_lines(texts)
    assert _names(rows[0]) == ["Sangsit"] and rows[0]["in_region"] is True
    assert _names(rows[1]) == ["Lovina"] and rows[1]["in_region"] is True
    assert _names(rows[2]) == ["Lovina"] and rows[2]["in_region"] is True
    assert rows[3]["in_region"] is True and rows[3]["places"][0]["reason"] == "point in polygon (coordinates in the text)"
    assert rows[4]["hazards"] == ["earthquake", "flood", "landslide"] and rows[4]["places"] == []


_PIECES = ["Sangsit", "Denpasar", "Buleleng", "di", "banjir", "@", "://", "https", "www.", ".", "_", "-", "/", " ", "a", "@@", "x@y.id"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_no_place_span_lies_inside_an_address(text):
    """Whatever the text, every named place comes from outside the addresses."""
    spans = address_spans(text)
    for place in _GEOTAGGER.tag(text).places:
        if place.span is not None:
            assert not any(s <= place.span[0] < e for s, e in spans), (text, place, spans)



# What an address is, as first written: one regex tried at every character (the reference the
# faster reading in `normalise.address_spans` is held to).
_ADDRESS_AS_WRITTEN = re.compile(
    r"https?://[^\s<>\"']+"
    r"|(?<![\w.])www\.[^\s<>\"']++"
    r"|(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)++"
    r"|(?<!\w)@\w+:?",
    re.IGNORECASE,
)
_ADDRESS_PIECES = ["@", "a", "B", "_", ".", "-", "+", ":", "/", "//", "http", "HTTPS", "://", "www", "WWW", ".id", " ", "\n",
                   "é", "\u200b", "'", '"', "<", "x@y.z", "@@", "1", "mail", "²", "\u0301"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=16).map("".join))
def test_addresses_are_what_the_pattern_as_written_finds(text):
    assert address_spans(text) == [m.span() for m in _ADDRESS_AS_WRITTEN.finditer(text)], text
