"""Behaviour of the place matcher on the ambiguities the issue names (both ways)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.geotag import Place, default_geotagger


@pytest.fixture(scope="module")
def tagger():
    return default_geotagger()


def villages(result):
    return {(p.village, p.district) for p in result.places if p.kind == "village" and p.in_region and not p.low_confidence}


def test_banjir_never_matches_banjar(tagger):
    r = tagger.tag("Banjir banjirrr di jalan, banjir lagi")
    assert r.places == [] and not r.in_region


def test_spelling_variants_of_one_village(tagger):
    for text in ("Tinga-tinga banjir", "banjir di Tingatinga", "TINGA TINGA banjir"):
        assert villages(tagger.tag(text)) == {("Tinga Tinga", "Gerokgak")}, text
    assert villages(tagger.tag("Longsor di Busung Biu")) == {("Busungbiu", "Busungbiu")}


def test_span_points_at_original_text(tagger):
    text = "Pohon tumbang di Desa Sambangan tadi"
    (p,) = [p for p in tagger.tag(text).places if p.kind == "village"]
    assert text[p.span[0] : p.span[1]] == "Sambangan"
    assert p.to_dict()["span"] == list(p.span)
    assert set(p.to_dict()) == {"kind", "name", "village", "district", "code", "lon", "lat", "confidence", "span", "reason"}


def test_everyday_word_needs_place_context(tagger):
    assert not tagger.tag("bila hujan deras, tembok rumah bisa roboh").places
    assert villages(tagger.tag("Banjir di Desa Bila")) == {("Bila", "Kubutambahan")}
    assert villages(tagger.tag("Tembok, Tejakula diterjang banjir")) == {("Tembok", "Tejakula")}


def test_kecamatan_prefix_gives_district(tagger):
    r = tagger.tag("Longsor di Kec. Banjar")
    assert [(p.kind, p.name) for p in r.places] == [("district", "Banjar")]
    assert r.in_region


def test_buleleng_regency_vs_kecamatan(tagger):
    assert [p.kind for p in tagger.tag("Banjir di Buleleng").places] == ["regency"]
    assert [p.kind for p in tagger.tag("Banjir di Kecamatan Buleleng").places] == ["district"]


def test_shared_name_resolved_by_context(tagger):
    inside = tagger.tag("Banjir di Kerobokan, Sawan")
    assert ("Kerobokan", "Sawan") in villages(inside) and inside.in_region
    outside = tagger.tag("Macet di Kerobokan, Badung")
    assert not outside.in_region and all(not p.in_region for p in outside.places)
    bare = tagger.tag("Banjir di Kerobokan")
    (p,) = bare.places
    assert p.low_confidence and not bare.in_region


def test_kayuputih_two_kecamatan(tagger):
    assert villages(tagger.tag("Longsor di Kayuputih, Sukasada")) == {("Kayuputih", "Sukasada")}
    assert villages(tagger.tag("Longsor di Kayuputih, Kec. Banjar")) == {("Kayuputih", "Banjar")}
    (p,) = tagger.tag("Longsor di Kayuputih").places
    assert p.district is None and p.low_confidence


def test_kayuputih_named_with_only_the_regency_or_its_town_stays_undecided(tagger):
    """Both Kayuputih are in Buleleng, and neither is in kecamatan Buleleng (Singaraja)."""
    for text in ("banjir di Kayuputih, Buleleng", "banjir di Kayuputih Singaraja", "Kayuputih kab. Buleleng longsor"):
        result = tagger.tag(text)
        (p,) = [p for p in result.places if p.name == "Kayuputih"]
        assert p.district is None and p.low_confidence, text
        assert result.in_region, text  # the regency or its town is named: the post is in Buleleng


def test_bali_is_the_province_buleleng_is_in_not_a_place_elsewhere(tagger):
    result = tagger.tag("banjir di Kayuputih, Bali")
    assert [p.name for p in result.places if p.kind == "village"] == ["Kayuputih"]
    assert villages(tagger.tag("banjir di Sangsit, Bali")) == {("Sangsit", "Sawan")}
    assert not tagger.tag("banjir di Bali").in_region  # no place in Buleleng named
    (bali,) = tagger.tag("banjir di Bali").places
    assert "outside" not in bali.reason and not bali.in_region


def test_north_bali_is_buleleng_as_the_news_names_it(tagger):
    for text in ("Gempa terasa di Bali Utara", "banjir di bali bagian utara, warga mengungsi"):
        result = tagger.tag(text)
        assert result.in_region and [p.kind for p in result.places] == ["regency"], text


MULTI_WORD = ("Celukan Bawang", "Banjar Jawa", "Banjar Bali", "Banjar Tegeha", "Tinga Tinga", "Paket Agung",
              "Sumber Klampok", "Tegal Linggah", "Kampung Bugis", "Sepang Kelod")
BREAKS = (",", ";", ":", "!", "?", " (", ")", "\n", "\u3001", "\uff0c", ".", "…")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(MULTI_WORD), brk=st.sampled_from(BREAKS), after=st.sampled_from(["", " ", "  ", "\u00a0"]))
def test_a_name_of_two_words_is_not_read_across_a_clause_break(tagger, name, brk, after):
    """"Banjar, Jawa Timur" is not the kelurahan Banjar Jawa, nor "Singaraja, Denpasar" the road:
    folding makes punctuation a space, so the break is read in the post as written."""
    first, second = name.split(" ", 1)
    assert name in {p.name for p in tagger.tag(f"banjir di desa {name} tadi").places}
    text = f"banjir di desa {first}{brk}{after}{second} tadi"
    assert name not in {p.name for p in tagger.tag(text).places}, text


def test_a_road_is_not_read_across_a_comma_but_is_across_an_abbreviation(tagger):
    assert "road" not in {p.kind for p in tagger.tag("Singaraja, Denpasar banjir").places}
    places = tagger.tag("banjir di kota Denpasar, Singaraja aman2 aja").places
    assert {(p.name, p.in_region) for p in places if p.kind != "landmark"} == {("Kota Denpasar", False)}
    for text in ("macet di Jl. A. Yani Singaraja", "longsor di jalan Singaraja-Denpasar", "longsor jalur Singaraja - Denpasar"):
        assert "road" in {p.kind for p in tagger.tag(text).places}, text


def test_other_regency_not_placed_in_buleleng(tagger):
    for text in ("Banjir di Denpasar", "Macet parah di Jakarta", "Gempa di Jembrana, warga panik",
                 "Banjir di Selat, Karangasem"):
        assert not tagger.tag(text).in_region, text


def test_coordinates_point_in_polygon(tagger):
    r = tagger.tag("banjir", lat=-8.160, lon=115.036)
    assert [(p.village, p.span, p.reason) for p in r.places] == [("Kalibukbuk", None, "point in polygon (coordinates of the post)")]
    assert r.in_region
    assert not tagger.tag("banjir", lat=-8.65, lon=115.22).in_region  # Denpasar


def test_landmark_and_road(tagger):
    (p,) = tagger.tag("Air terjun Sekumpul ramai").places
    assert (p.kind, p.village, p.district) == ("landmark", "Sekumpul", "Sawan")
    (r,) = tagger.tag("Jalur Seririt-Gilimanuk longsor").places
    assert r.kind == "road" and r.code == "singaraja-gilimanuk" and r.lon is not None


def test_place_is_frozen():
    p = Place("village", "Les", "Les", "Tejakula", "51.08.09.2007", 115.37, -8.148, 0.9, (0, 3), "x")
    with pytest.raises(Exception):
        p.name = "other"  # type: ignore[misc]
