"""Negation in a post: "tidak ada banjir" raises no flood, "tidak ada korban jiwa" adds no severity.

Operators still list explicit denials as exclusions in the hazard files; this catches the
open-ended rest ("tidak terjadi longsor", "belum ada laporan korban", "tidak berpotensi tsunami")
without a phrase per hazard and per verb. It works on the hazard matcher's view of the post
(`normalise.MatchText`), so chat spellings of the negators (gak, nggak, tak, tdk, tusing) arrive
here as "tidak" through config/abbreviations.csv.
"""
from __future__ import annotations

import re
from bisect import bisect_right

from siaga.normalise import CLAUSE_BREAKS, MatchText

# Words that deny what follows: "tidak ada korban jiwa", "tidak berpotensi tsunami", "no flood".
_NEGATORS = frozenset({"tidak", "bukan", "tanpa", "belum", "jangan", "no", "not", "never", "without"})
# Words that may stand between a negator and the hazard it denies ("tidak ada banjir", "belum
# pernah terjadi longsor", "tidak berpotensi tsunami"); "tidak hanya banjir" is no denial, so
# "hanya" is deliberately absent.
_DENIAL_FILLERS = frozenset({
    "ada", "terjadi", "terdapat", "pernah", "lagi", "sampai", "akan", "berpotensi", "menimbulkan",
    "memicu", "mengakibatkan", "menyebabkan", "mengalami", "terkena", "kena", "terdampak",
    "ditemukan", "dilaporkan", "laporan", "a", "any", "there", "is", "was", "sign", "of",
})
_FILLERS_MAX = 2
# A severity cue is denied by a negator up to this many words before it in the same clause
# ("belum ada laporan korban jiwa"), or by "nihil" right after it ("korban jiwa nihil").
_CUE_DENIAL_REACH = 4
_AFTER_DENIALS = frozenset({"nihil"})
# Clause punctuation in the original post, in any spelling (`normalise.CLAUSE_BREAKS`): with
# ASCII alone, "Banjir belum surut… korban jiwa 2 orang" read "belum ... korban jiwa" as one
# clause and denied the cue.
_CLAUSE_BREAK = re.compile("[" + re.escape("".join(sorted(CLAUSE_BREAKS))) + "]")


class Denial:
    """The negators of one post, asked about each hit the matcher found in it (positions are in
    `MatchText` coordinates)."""

    def __init__(self, mt: MatchText) -> None:
        self.mt = mt
        self.starts = mt.starts
        self.words = mt.words
        self.has_negator = not _NEGATORS.isdisjoint(self.words)

    def _tok(self, pos: int) -> int:
        return bisect_right(self.starts, pos) - 1

    def _same_clause(self, first_tok: int, pos: int) -> bool:
        """No clause punctuation in the original between token first_tok and MatchText pos."""
        a = self.mt.span(self.mt.starts[first_tok], self.mt.ends[first_tok])[1]
        b = self.mt.span(pos, pos + 1)[0] if pos < len(self.mt.text) else len(self.mt.folded.original)
        return not _CLAUSE_BREAK.search(self.mt.folded.original, a, max(a, b))

    def _phrase(self, first: int, last: int) -> str:
        return " ".join(self.words[first:last + 1])

    def of_term(self, start: int) -> str:
        """The denying words before a term starting at `start` ("tidak ada"), or "" when it is
        not denied: `siaga tag --explain` shows them as what vetoed the term."""
        if not self.has_negator:
            return ""
        t = self._tok(start)
        if self.words[t] in _NEGATORS:
            return ""  # the phrase carries its own negation ("tidak bisa dilewati")
        k, fillers = t - 1, 0
        while k >= 0 and self.words[k] in _DENIAL_FILLERS and fillers < _FILLERS_MAX:
            k, fillers = k - 1, fillers + 1
        if k >= 0 and self.words[k] in _NEGATORS and self._same_clause(k, start):
            return self._phrase(k, t - 1)
        return ""

    def denies_cue(self, start: int, end: int) -> bool:
        """Is the severity cue at [start, end) denied? Cues reach further back than terms ("belum
        ada laporan korban jiwa"), and "nihil" after one denies it too."""
        last = self._tok(end - 1)
        if last + 1 < len(self.words) and self.words[last + 1] in _AFTER_DENIALS:
            return True
        if not self.has_negator:
            return False
        t = self._tok(start)
        if self.words[t] in _NEGATORS:
            return False
        for k in range(t - 1, max(-1, t - 1 - _CUE_DENIAL_REACH), -1):
            if self.words[k] in _NEGATORS:
                return self._same_clause(k, start)
        return False
