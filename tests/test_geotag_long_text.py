"""The geotagger on long texts: posts up to `vocabulary.MAX_TEXT` characters are tagged (and the
geotagger itself takes any length), so finding the names must stay linear in the text. Each name hit's word number was
once counted from the text's start, so a long text of many names took hours."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.geotag import default_geotagger
from siaga.normalise import quick_fold

_TAGGER = default_geotagger()
_WORDS = ["banjir", "di", "Sangsit", "Desa", "Banyuning", "jalan", "Ahmad", "Yani", "Kec.", "Sawan", "tadi", "Tinga", "tinga"]


class _CountingText(str):
    """A folded text that adds up how many characters its `count` calls scan."""

    scanned = 0

    def count(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        _CountingText.scanned += max(0, stop - start)
        return str.count(self, sub, start, end)


class _Instrumented:
    """A fold whose text counts its scans; everything else is the real fold's."""

    def __init__(self, folded):
        self._folded = folded
        self.text = _CountingText(folded.text)

    def __getattr__(self, name):
        return getattr(self._folded, name)


def _mentions(text: str):
    folded = _Instrumented(quick_fold(text))
    _CountingText.scanned = 0
    mentions = _TAGGER._mentions(folded)
    return folded, mentions, _CountingText.scanned


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
