"""The geotagger on long texts: posts up to `vocabulary.MAX_TEXT` characters are tagged (and the
geotagger itself takes any length), so finding the names must stay linear in the text. Each name hit's word number was
once counted from the text's start, so a long text of many names took hours."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.geotag import default_geotagger
from siaga.normalise import quick_fold
from support.scans import CountingFold

_TAGGER = default_geotagger()
_WORDS = ["banjir", "di", "Sangsit", "Desa", "Banyuning", "jalan", "Ahmad", "Yani", "Kec.", "Sawan", "tadi", "Tinga", "tinga"]


def _mentions(text: str):
    folded = CountingFold(quick_fold(text))
    mentions = _TAGGER._mentions(folded)
    return folded, mentions, folded.text.scanned["count"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=80))
def test_each_name_is_placed_at_its_own_word(words):
    folded, mentions, _ = _mentions(" ".join(words))
    text = str(folded.text)
    for m in mentions:
        assert m.ti == text.count(" ", 0, m.fs)
        assert m.tj == m.ti + text.count(" ", m.fs, m.fe)


def test_finding_names_in_a_long_text_scans_it_a_bounded_number_of_times():
    text = "banjir di Desa Sangsit, jalan Ahmad Yani macet " * 4000  # 188 kB, 8,000 names
    folded, mentions, scanned = _mentions(text)
    assert len(mentions) >= 8_000
    assert scanned < 20 * len(folded.text)  # counting from the start per hit: about 8,000 times


# The coordinate patterns as first written: the reference of what a coordinate pair is.
_HINT_AS_WRITTEN = re.compile(r"\.\d\d+\s*[,;/ ]\s*-?\d{1,3}\.\d\d")
_COORD_AS_WRITTEN = re.compile(r"(?<![\d.])(-?\d{1,3}\.\d{2,})\s*[,;/ ]\s*(-?\d{1,3}\.\d{2,})(?![\d.])")
_COORD_PIECES = ["-8.11", "115.22", "8.1", ".11", "1", "12", "1234", ".", "-", " ", "  ", "\t", "\n", "\u00a0", ",", ";", "/",
                 "x", " , ", "\u2028"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_COORD_PIECES), max_size=10).map("".join))
def test_coordinate_pairs_are_what_the_patterns_as_written_find(text):
    from siaga.geotag import _COORD, _COORD_HINT

    assert [m.span() for m in _COORD_HINT.finditer(text)] == [m.span() for m in _HINT_AS_WRITTEN.finditer(text)]
    assert [(m.span(), m.groups()) for m in _COORD.finditer(text)] == \
        [(m.span(), m.groups()) for m in _COORD_AS_WRITTEN.finditer(text)]


def _cpu_bound() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def test_a_long_run_of_whitespace_after_a_decimal_is_read_once():
    """".11" and then 20,000 spaces (one post) took 6 s to tag: the coordinate patterns tried
    every split of the run between their two `\\s*`. The geotagger takes any length; at
    200,000 spaces that was some ten minutes, now as long as any text (a minute of CPU bounds
    the child, so the suite cannot hang on it)."""
    script = ("from siaga.geotag import default_geotagger\n"
              "t = default_geotagger()\n"
              "print(len(t.tag('.11' + ' ' * 200_000 + 'x').places), len(t.tag('-8.11' + ' ' * 200_000 + ',x').places))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, preexec_fn=_cpu_bound,
                         env={**os.environ, "SIAGA_GAZETTEER": "buleleng"})
    assert out.returncode == 0 and out.stdout.split() == ["0", "0"], out.stderr[-2000:]
