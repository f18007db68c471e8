"""`siaga tag` on clause punctuation as phones and other scripts write it. A negator denies a
hazard term or a severity cue only within its clause ("Banjir belum surut. Korban jiwa 2
orang": the victims are not denied); the clause ended only at ASCII punctuation, so the "…"
that iOS writes for "...", a fullwidth comma or a CJK stop joined the clauses: "Banjir belum
surut… korban jiwa 2 orang" lost its severity cue (`--explain` showed none, and the pipeline
stored none), "tidak ， Jl. banjir" its road closure. A user expects each of these to read as
its ASCII spelling does.
"""
from __future__ import annotations

import json
import unicodedata
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet
from siaga.tagging import Tagger

_TAGGER = Tagger(HazardSet.load(default_hazard_dir()))
# Each written form and the ASCII punctuation it stands for.
BREAKS = {
    "\u2026": "...", "\u2025": "..", "\u3002": ".", "\uff0e": ".", "\uff61": ".", "\u3001": ",", "\uff0c": ",", "\uff64": ",",
    "\u060c": ",", "\uff1b": ";", "\u061b": ";", "\uff1a": ":", "\uff01": "!", "\u203c": "!!", "\uff1f": "?", "\u061f": "?",
    "\u2049": "!?", "\u2048": "?!", "\r": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n",
}
SENTENCES = [
    "Banjir belum surut{p} korban jiwa 2 orang di Sangsit",
    "Air tidak juga turun{p} ada korban meninggal",
    "tidak {p} Jl. banjir",
    "Longsor tidak ada{p} pohon tumbang di jalan",
    "Belum ada laporan{p} korban jiwa akibat gempa",
]


def _hazards(text: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(m.hazard, tuple(m.terms), tuple(m.severity_cues)) for m in _TAGGER.tag(text).hazards]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(BREAKS)), st.sampled_from(SENTENCES))
def test_a_clause_break_written_otherwise_reads_as_its_ascii_spelling(mark, sentence):
    assert _hazards(sentence.format(p=mark)) == _hazards(sentence.format(p=BREAKS[mark])), (mark, sentence)


@pytest.mark.parametrize("mark", ["...", "\u2026"])
def test_explain_shows_the_severity_cue_after_an_ellipsis(mark):
    line = json.dumps({"id": 1, "text": f"Banjir belum surut{mark} korban jiwa 2 orang di Sangsit"})
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag", "--explain"], input=line + "\n", capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "    severity cues: korban jiwa" in out.stdout.splitlines()


@pytest.mark.parametrize("mark", ["?", "\uff1f", "\u061f", "\u2047", "\u2048", "\u2049"])
def test_a_question_mark_written_otherwise_still_asks(mark):
    """"ada banjir?" asks (a non-event question, no flood); "ada banjir？" with a fullwidth mark
    (or an Arabic one) was taken for a flood report."""
    assert _hazards(f"ada banjir{mark} di Sangsit") == []
    assert [h for h, _, _ in _hazards(f"ada banjir di Sangsit, air setinggi lutut{mark}")] == ["flood"]


_GEOTAGGER = _TAGGER.geotagger
SENTENCE_MARKS = [m for m, ascii_form in BREAKS.items() if ascii_form.strip(".!?\n") == ""]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SENTENCE_MARKS + ["\u00a0", "\u3000"]), st.sampled_from([
    "Banjir di Sangsit{p} Bila air naik lagi kami mengungsi", "Macet di Seririt{p} Tembok rumah warga retak",
    "banjir di Sangsit{p} Les juga kena", "Jalan ke Singaraja ditutup{p} Bukti foto menyusul",
]))
def test_a_capital_after_a_sentence_end_written_otherwise_is_no_name(mark, sentence):
    """A word that is also a village ("Bila": when, "Tembok": wall, "Les", "Bukti": proof)
    capitalised at a sentence's start is no evidence of a name; after "…" (or a CJK stop, a lone
    "\\r", a line separator) it was read as capitalised mid-sentence, and with another Buleleng
    place in the post the word became a village. Spaces of any kind before it are spaces."""
    if mark in BREAKS:
        text, plain = sentence.format(p=mark), sentence.format(p=BREAKS[mark])
    else:  # a space of another kind after a full stop: "Sangsit.\u00a0Bila"
        text, plain = sentence.replace("{p} ", "." + mark), sentence.format(p=".")
    got = [(p.kind, p.name) for p in _GEOTAGGER.tag(text).places]
    assert got == [(p.kind, p.name) for p in _GEOTAGGER.tag(plain).places] and len(got) == 1, (text, got)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _accented(text: str) -> str:
    return unicodedata.normalize("NFC", "".join(c + "\u0301" if c in "aeiou" else c for c in text))


_CASE_WORDS = ["Banjir", "banjir", "di", "Sangsit", "Sukasada", "Buleleng", "Les", "Bila", "Tembok", "Bukti", "juga", "kena",
               "air", "naik", "Desa", "Kec.", "Sawan", ",", "."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CASE_WORDS), min_size=1, max_size=8).map(" ".join), st.sampled_from([_fullwidth, _accented]),
       st.sampled_from(["", " الحمد لله الذي بنعمته تتم الصالحات"]))
def test_letters_of_other_scripts_weigh_as_their_case(text, spelled, arabic):
    """Whether a post's capitals say anything counts its capitals and small letters: every
    non-ASCII letter counted as a capital, so "Súkásádá Lés", "Ｂｕｌｅｌｅｎｇ Ｌｅｓ" or a post
    quoting a line of Arabic read as shouting, and a name that needs its capital ("Les") was
    lost. Spelled with accents or in fullwidth, the post names what its ASCII spelling names."""
    plain = [(p.kind, p.name) for p in _GEOTAGGER.tag(text + arabic).places]
    assert [(p.kind, p.name) for p in _GEOTAGGER.tag(spelled(text) + arabic).places] == plain, (text, arabic)
