"""Event, not talk: a hazard list's `non_event` section (drills, forecasts, anniversaries,
socialisation, questions, figurative uses) keeps a post from reporting the hazard, matches words
within a short span rather than exact phrases, is validated, and says which pattern matched."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from siaga.hazard_config import HazardConfigError, default_hazard_dir
from siaga.hazards import HazardSet
from siaga.non_event import MAX_GAP, compile_patterns, find
from siaga.normalise import fold, match_text
from test_hazard_config import write


@pytest.fixture(scope="module")
def shipped() -> HazardSet:
    return HazardSet.load(default_hazard_dir())


def reported(hs: HazardSet, text: str) -> set[str]:
    return {m.hazard for m in hs.classify(text)}


@pytest.mark.parametrize("text, hazard, category", [
    ("Latihan evakuasi gempa di SDN 1 Singaraja pagi ini, anak-anak berlindung di bawah meja", "earthquake", "drill"),
    ("Simulasi bencana gempa dan tsunami di pantai Lovina bersama BPBD", "earthquake", "drill"),
    ("drill gempa di sekolah anak saya hari ini", "earthquake", "drill"),
    ("Peringatan dini cuaca BMKG: berpotensi terjadi angin kencang di Buleleng sore ini", "strong_wind", "forecast"),
    ("Lima tahun silam banjir bandang melanda Kubutambahan, semoga tak terulang", "flood", "anniversary"),
    ("Sosialisasi mitigasi banjir untuk warga Desa Sangsit", "flood", "socialisation"),
    ("ada banjir? mau lewat Sukasada", "flood", "question"),
    ("rezeki lagi macet nih bulan ini", "traffic_jam", "figurative"),
    ("macet dikit depan sekolah, biasa jam masuk", "traffic_jam", "figurative"),
    ("cukup padat namun lancar di Jalan Ahmad Yani", "traffic_jam", "figurative"),
])
def test_talk_is_not_an_event_and_explains_which_pattern(shipped, text, hazard, category):
    assert hazard not in reported(shipped, text)
    [match] = [m for m in shipped.explain(text) if m.hazard == hazard]
    assert any(v.startswith(f"non_event {category}: ") for v in match.vetoed_by), match.vetoed_by


@pytest.mark.parametrize("text, hazard", [
    ("Gempa kuat barusan di Singaraja, semua lari keluar rumah", "earthquake"),
    ("banjir di Sukasada, air sepinggang", "flood"),
    ("padat namun tidak lancar, macet parah di Jalan Ahmad Yani", "traffic_jam"),  # a negator is never skipped
    ("banjir lagi di Sangsit, ada yang tau jalan alternatif?", "flood"),  # a question about something else
    ("sumur kering, beli air tangki terus di Tejakula", "drought"),
])
def test_reports_still_report(shipped, text, hazard):
    assert hazard in reported(shipped, text)


def test_words_match_within_a_short_span_only():
    patterns = compile_patterns({"drill": ["latihan gempa"]})
    near = match_text(fold("latihan " + "x " * MAX_GAP + "gempa"))
    far = match_text(fold("latihan " + "x " * (MAX_GAP + 1) + "gempa"))
    hit = find(patterns, near)
    assert hit is not None and hit.category == "drill" and hit.phrase == "latihan gempa"
    assert find(patterns, far) is None
    assert find(patterns, match_text(fold("gempa latihan"))) is None  # in order


def test_question_needs_a_question_mark():
    patterns = compile_patterns({"question": ["ada banjir ?"]})
    assert find(patterns, match_text(fold("Ada banjir? di mana"))) is not None
    assert find(patterns, match_text(fold("ada banjir di jalan, hati2"))) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_safe(shipped, text):
    shipped.explain(text)  # never raises, whatever the post


def test_schema_refuses_an_unknown_category_naming_file_and_line(tmp_path: Path):
    d = tmp_path / "hazards"
    d.mkdir()
    path = write(d, "flood", extra="non_event:\n  rumour:\n    - katanya banjir\n")
    with pytest.raises(HazardConfigError, match=rf"{path}:\d+:\d+: non_event.*rumour"):
        HazardSet.load(d)


def test_schema_refuses_an_empty_pattern(tmp_path: Path):
    d = tmp_path / "hazards"
    d.mkdir()
    path = write(d, "flood", extra="non_event:\n  drill:\n    - '?!'\n")
    with pytest.raises(HazardConfigError, match=rf"{path}:\d+:\d+: non_event\.drill\[0\]: .*no letters"):
        HazardSet.load(d)


def test_figurative_and_question_talk_silence_only_the_terms_they_contain(shipped):
    # a forecast-ish "ramai tapi lancar" does not silence a jam reported later in the post
    assert "traffic_jam" in reported(shipped, "tadi ramai tapi lancar, sekarang macet total di Jalan Ahmad Yani")
    # a flood report that also asks a question still reports
    assert "flood" in reported(shipped, "Rumah kami kebanjiran sejak pagi di Sangsit. apakah ada banjir juga di Sawan?")
    # a drill colours the whole post
    assert "earthquake" not in reported(shipped, "Gempa! begitu aba-aba dalam latihan evakuasi di SMPN 2 Singaraja")
