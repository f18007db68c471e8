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
