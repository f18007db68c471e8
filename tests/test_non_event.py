"""Event, not talk: a hazard list's `non_event` section (drills, forecasts, anniversaries,
socialisation, questions, figurative uses) keeps a post from reporting the hazard, matches words
within a short span rather than exact phrases, is validated, and says which pattern matched."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

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


def _find_word_by_word(patterns, mt):
    """The matcher as specified, one comparison per pattern word and post word: what the indexed
    `find` must agree with."""
    from siaga.non_event import _NEGATORS, _word_matches

    words = [mt.written(a, b) for a, b in zip(mt.starts, mt.ends)]

    def rest(p, k, prev, gap):
        if k == len(p):
            return prev
        for j in range(prev + 1, min(prev + 2 + gap, len(words))):
            if _word_matches(p[k], words[j]):
                last = rest(p, k + 1, j, gap)
                if last is not None:
                    return last
            if words[j] in _NEGATORS:
                return None
        return None

    out = []
    for pattern in patterns:
        gap = 0 if pattern.question else MAX_GAP
        found = next(((i, last) for i, w in enumerate(words) if _word_matches(pattern.words[0], w)
                      for last in [rest(pattern.words, 1, i, gap)] if last is not None), None)
        out.append(found and (mt.starts[found[0]], mt.ends[found[1]]))
    return out


# Words built to collide: doubled letters, "ngg", suffixed forms, negators.
_WORD = st.sampled_from(["latihan", "latihannya", "latiihan", "gempa", "gempaa", "simulasi",
                         "simulasinya", "mengenang", "menggenang", "genang", "tidak", "banjir",
                         "banjirr", "ada", "lagi", "macet", "macetnya", "jl", "lalin", "rumah2", "#banjir", "?"])


@settings(max_examples=1000, deadline=None)
@example([["mengenang"]], ["menggenang"], False)  # squeezed alike, told apart by "ngg"
@example([["latihan", "gempa"]], ["latihannya", "tidak", "gempa"], False)  # suffix; negator in the gap
@example([["simulasi"]], ["simulasinya"], False)
@example([["macet"]], ["jl", "macetnya"], False)  # the shortest word that matches suffixed forms
@example([["banjir"]], ["ada", "banjirr", "?"], True)
@given(st.lists(st.lists(_WORD, min_size=1, max_size=3), min_size=1, max_size=5),
       st.lists(_WORD, max_size=14), st.booleans())
def test_indexed_matching_agrees_with_word_by_word_matching(shipped, phrases, post, question):
    patterns = compile_patterns({"question" if question else "drill":
                                 [" ".join(p) + ("?" if question else "") for p in phrases]})
    mt = match_text(fold(" ".join(post)), shipped.abbreviations)
    expected = _find_word_by_word(patterns, mt)
    for pattern, at in zip(patterns, expected):
        talk = find((pattern,), mt)
        if at is None:
            assert talk is None
        elif not pattern.question:
            assert talk is not None and talk.at == at
