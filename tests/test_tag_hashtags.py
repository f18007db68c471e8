"""`siaga tag` on places written inside a hashtag's word: "#BanjirSangsit" was tagged flood
(the hazard matcher reads terms inside hashtags) but named no place, so the post counted for no
village and was not in the region, while "#Banjir #Sangsit" was. What a user expects, checked
here:

- a name inside a hashtag counts where the tag's capitals mark it (#BanjirSangsit,
  #PrayForSangsit, #SangsitBanjir, #KecamatanBanjar: what the tag holds before the name is the
  word before it, so "Kecamatan" picks the kecamatan), or, written all in lower case, when it
  is long enough (7 letters: #banjirsangsit, #infobuleleng) not to be the end of another word;
- a shorter name run into other letters is no place: "tista" in #BoikotInulDaratista (a
  village of Buleleng in a boycott tag), "ngada" in #beritainyangada;
- outside places inside a tag count the same way, so #BanjirDenpasar is not in the region;
- the span still indexes the original text: the name's letters inside the tag.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.geotag import default_geotagger
from siaga.normalise import key
from support.scans import CountingFold

_GEOTAGGER = default_geotagger()


@pytest.mark.parametrize("text, kind, name, surface", [
    ("Air naik lagi #BanjirSangsit", "village", "Sangsit", "Sangsit"),
    ("#banjirsangsit pagi ini", "village", "Sangsit", "sangsit"),
    ("#PrayForSangsit", "village", "Sangsit", "Sangsit"),
    ("#SangsitBanjir", "village", "Sangsit", "Sangsit"),
    ("banjir lagi #infobuleleng", "regency", "Buleleng", "buleleng"),
    ("#KecamatanBanjar banjir", "district", "Banjar", "Banjar"),
])
def test_a_name_inside_a_hashtag_is_a_place(text, kind, name, surface):
    result = _GEOTAGGER.tag(text)
    assert [(p.kind, p.name) for p in result.places] == [(kind, name)] and result.in_region, (text, result)
    start, end = result.places[0].span
    assert text[start:end] == surface


@pytest.mark.parametrize("text", ["Silahkan #BoikotInulDaratista", "#beritainyangada macet", "#lesehanenak", "#banjirbila"])
def test_a_short_name_run_into_other_letters_is_no_place(text):
    assert _GEOTAGGER.tag(text).places == [], text


def test_an_outside_place_inside_a_hashtag_keeps_the_post_out_of_the_region():
    result = _GEOTAGGER.tag("Air setinggi lutut #BanjirDenpasar")
    assert [p.name for p in result.places] == ["Kota Denpasar"] and not result.in_region


_PIECES = ["#", "Banjir", "banjir", "Sangsit", "sangsit", "Buleleng", "Denpasar", "Les", "Bila", "Pray", "For", "Kecamatan", "Desa", " ", "_"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=10).map("".join))
def test_a_place_inside_a_hashtag_spans_its_own_letters(text):
    """Whatever the run of tags and words, a place's span is a name's letters in the text."""
    for place in _GEOTAGGER.tag(text).places:
        start, end = place.span
        assert key(text[start:end]) in {"sangsit", "buleleng", "denpasar", "banjar", "les", "bila"}, (text, place)


@pytest.mark.parametrize("text", ["#" + "BanjirSangsit" * 1500, "#" + "banjirsangsitbuleleng" * 950, "#BanjirSangsit " * 1400])
def test_names_inside_a_long_hashtag_are_found_in_one_pass(text):
    """Each name hit inside a hashtag looked back over its word for where the word starts: one
    long tag holding many names (a post of MAX_TEXT characters) was read once per hit, and a
    300 kB one took 12 s. The word is now followed along the text as the hits come."""
    from siaga.normalise import quick_fold

    folded = CountingFold(quick_fold(text))
    assert _GEOTAGGER._mentions(folded)
    assert folded.text.scanned["rfind"] < 20 * len(text), folded.text.scanned
