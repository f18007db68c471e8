"""Normalisation shared by geotagging and hazard matching: offsets must point at the original."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siaga.normalise import fold, load_abbreviations, match_key, match_text, squeeze, squeeze_fold, stem, tokens

REPO = Path(__file__).resolve().parents[1]


def test_fold_lowercases_strips_diacritics_and_collapses_elongation():
    f = fold("BANJIRRRR di Désa\u200b Tinga-tinga!!!")
    assert f.text == "banjir di desa tinga tinga"
    start = f.text.index("banjir")
    assert f.span(start, start + 6) == (0, 9)  # the whole shouted word
    d = f.text.index("desa")
    assert f.original[slice(*f.span(d, d + 4))] == "Désa"


def test_tokens_are_in_folded_coordinates():
    f = fold("Pohon  tumbang, Gitgit")
    assert [t.text for t in tokens(f)] == ["pohon", "tumbang", "gitgit"]
    t = tokens(f)[2]
    assert f.text[t.start:t.end] == "gitgit"


def test_shipped_abbreviation_table_loads_and_expands_whole_words_only():
    table = load_abbreviations(REPO / "config" / "abbreviations.csv")
    assert table["jl"] == "jalan" and table["tdk"] == "tidak"
    mt = match_text(fold("Jl. Gajah Mada tdk bisa dilewati, jlx"), table)
    assert mt.text.startswith("jalan gajah mada tidak bisa dilewati")
    assert mt.text.endswith("jlx")  # not a whole-word abbreviation
    i = mt.text.index("tidak")
    assert mt.folded.original[slice(*mt.span(i, i + len("tidak bisa")))] == "tdk bisa"


def test_abbreviation_file_errors_name_the_line_in_the_file(tmp_path):
    bad = tmp_path / "abbreviations.csv"
    bad.write_text("# comment\nabbrev,expansion\n\njl,jalan\nthree,columns,here\ntwo words,x\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_abbreviations(bad)
    assert str(err.value).splitlines() == [
        f"{bad}:5:1: (row): ['three', 'columns', 'here']: expected 'abbrev,expansion'",
        f"{bad}:6:1: abbrev: 'two words': abbrev must be one word",
    ]


def test_an_abbreviation_expanded_two_ways_is_refused_at_its_second_line(tmp_path):
    """"jl,jalan" then "JL.,jalur": the later row silently replaced the first; an exact repeat
    is harmless and stays accepted."""
    table = tmp_path / "abbreviations.csv"
    table.write_text("abbrev,expansion\njl,jalan\ntdk,tidak\njl,jalan\nJL.,jalur\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_abbreviations(table)
    assert str(err.value).splitlines() == [f"{table}:5:1: abbrev: 'JL.' is already expanded to 'jalan' at line 2"]


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_row(tmp_path):
    """Excel saves "CSV UTF-8" with a byte order mark: the header row then no longer read as
    the header, and "abbrev" became an abbreviation of "expansion"."""
    table = tmp_path / "abbreviations.csv"
    table.write_bytes(b"\xef\xbb\xbfabbrev,expansion\r\njl,jalan\r\n")
    assert load_abbreviations(table) == {"jl": "jalan"}


def test_hashtags_are_marked_and_mapped_back():
    mt = match_text(fold("Info #BanjirBuleleng pagi ini"))
    tag = [t for t in mt.tokens if t.hashtag]
    assert [t.text for t in tag] == ["banjirbuleleng"]
    assert mt.folded.original[slice(*mt.span(tag[0].start, tag[0].start + 6))] == "Banjir"


def test_doubled_letters_and_reduplication_are_regularised_with_offsets_kept():
    assert squeeze("banjirr") == "banjir" and squeeze("macett") == "macet"
    mt = match_text(fold("yos sudarso banjirr, rumah2 terendam"))
    assert "banjir rumah rumah terendam" in mt.text
    i = mt.text.index("banjir")
    assert mt.folded.original[slice(*mt.span(i, i + 6))] == "banjirr"
    pieces = [t.text for t in mt.tokens]
    assert pieces.count("rumah") == 2  # "rumah2" is two words for phrase matching


def test_a_keyword_is_folded_as_a_post_is():
    """The hazard matcher compares keywords and posts in one form, built by the same fold."""
    table = {"jl": "jalan", "tdk": "tidak"}
    assert match_key("Jl. DITUTUP!!", table) == match_text(fold("jl ditutup"), table).text == "jalan ditutup"
    assert match_key("Banjirrr  bandang") == "banjir bandang"
    assert squeeze_fold("Menggenang") == "mengenang"  # roots: folded and squeezed, never expanded
    assert squeeze_fold("tdk") == "tdk"


def test_written_gives_the_spelling_behind_a_matched_slice():
    mt = match_text(fold("Jl banjirr, tdk bisa lewat"), {"jl": "jalan", "tdk": "tidak"})
    start = mt.text.index("jalan")
    assert mt.written(start, start + len("jalan")) == "jl"
    start = mt.text.index("banjir")
    assert mt.written(start, start + len("banjir")) == "banjirr"  # matched squeezed, written double


def test_stem_strips_indonesian_affixes():
    assert stem("kebanjiran") == "banjir"
    assert stem("tergenang") == "genang"
    assert stem("longsoran") == "longsor"
    assert stem("gempar") == "gempar"  # not "gempa"


def test_ascii_fast_path_agrees_with_the_general_fold():
    import random

    from siaga.normalise import _fold_ascii, _fold_general

    rnd = random.Random(7)
    alphabet = "aaabBc  ..,-!?#@1200zZx\t\nRRr"
    samples = ["BANJIRRRR di Seririt!!!", "Jl. A. Yani macettt  parah..", "aaa bbb", "  #x  ", ""]
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(3000)]
    for text in samples:
        fast, general = _fold_ascii(text), _fold_general(text)
        assert (fast.text, fast.offsets) == (general.text, general.offsets), text
    assert fold("Désa'ku").text == "desaku"  # non-ASCII and joiners take the general path


def test_quick_fold_finds_shouting_in_words_it_has_seen_plain_and_in_new_ones():
    """Whether a post shouts is asked of its words, the plain ones remembered
    (`normalise._PLAIN_WORDS`): a shouted word among remembered ones still sends the post to
    the deferred fold, and a post of remembered words alone folds as before."""
    from siaga.normalise import DeferredFolded, LazyFolded, quick_fold

    first = quick_fold("Banjir di Sangsit, air naik")
    assert type(first) is LazyFolded and first.text == "banjir di sangsit air naik"
    again = quick_fold("air naik di Sangsit banjir")
    assert type(again) is LazyFolded and again.text == "air naik di sangsit banjir"
    shouted = quick_fold("Banjir di Sangsit, airrr naik")
    assert type(shouted) is DeferredFolded and shouted.text == "banjir di sangsit air naik"
    assert quick_fold("BANJIRRRR").text == fold("BANJIRRRR").text == "banjir"


class _ReadCounting(str):
    """An original text that adds up how many characters indexing and slicing it read."""

    read = 0

    def __getitem__(self, key):  # type: ignore[override]
        got = str.__getitem__(self, key)
        _ReadCounting.read += len(got)
        return got


@pytest.mark.parametrize("ligature", ["\ufdf2", "\ufdfa"])  # ﷲ "الله", ﷺ: folded forms holding a double letter
def test_folding_a_run_of_a_ligature_reads_the_original_a_bounded_number_of_times(ligature):
    """Each double letter of the folded text measured the whole run of its original character:
    20,000 of ﷺ, one post, took 14 s to tag (quadratic)."""
    original = _ReadCounting(ligature * 4000)
    _ReadCounting.read = 0
    folded = fold(original)
    assert _ReadCounting.read < 20 * len(original)
    assert folded == fold(str(original))  # the same fold, the original only read less


def _run_length(original: str, start: int) -> int:
    """The measure the fold used to take: the whole run of the character at `start`."""
    ch, n = original[start].lower(), 0
    for c in original[start:]:
        if c.lower() != ch:
            break
        n += 1
    return n


@given(st.text(alphabet="aAbßẞ\ufdf2İi\u0307 ", max_size=12), st.integers(0, 11), st.integers(1, 4))
def test_a_run_is_measured_only_as_far_as_needed(original, start, length):
    from siaga.normalise import _original_run_at_least

    if start < len(original):
        assert _original_run_at_least(original, start, length) == (_run_length(original, start) >= length)


# The pattern as first written: the reference of which words fold to a word.
_FOLDING_WORD_AS_WRITTEN = re.compile(r"['`]*([A-Za-z0-9][A-Za-z0-9'`]*)")


@given(st.text(alphabet=["'", "`", "a", "B", "1", " ", "+", "#", "é", "\u2019", "-"], max_size=14))
def test_folding_words_are_what_the_pattern_as_written_finds(text):
    from siaga.normalise import _FOLDING_WORD

    assert [(m.span(), m.span(1)) for m in _FOLDING_WORD.finditer(text)] == \
        [(m.span(), m.span(1)) for m in _FOLDING_WORD_AS_WRITTEN.finditer(text)]


def _cpu_bound() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def test_a_long_run_of_apostrophes_in_a_place_naming_post_is_read_once():
    """"<Sangsit " and 20,000 apostrophes then "+desa" took 2 s to tag: the word pattern, tried
    from every apostrophe of a run no letter follows, read the rest of the run each time. At
    200,000 (the geotagger takes any length) some minutes; a minute of CPU bounds the child."""
    script = ("from siaga.geotag import default_geotagger\n"
              "print([p.name for p in default_geotagger().tag('<Sangsit ' + \"'\" * 200_000 + '+desa').places])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, preexec_fn=_cpu_bound,
                         env={**os.environ, "SIAGA_GAZETTEER": "buleleng"})
    assert out.returncode == 0 and out.stdout.strip() == "['Sangsit']", out.stderr[-2000:]
