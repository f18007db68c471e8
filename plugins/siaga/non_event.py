"""Talk about a hazard that is not an event: drills, forecasts and warnings, anniversaries,
socialisation and training, questions and figurative uses ("rezeki lagi macet").

A hazard list's `non_event` section names such patterns per category. A post matching one does
not report that hazard (`siaga tag --explain` and the backtest say which category and pattern
matched). Exclusions veto one occurrence of a term by an exact overlapping phrase; a non-event
pattern is about the whole post and matches flexibly, because people write "latihan evakuasi
gempa", "simulasi bencana gempa dan tsunami" and "drill gempa" for the same drill: its words must
appear in order with at most `MAX_GAP` other words between consecutive ones (none a negator:
"padat namun tidak lancar" is a jam). A word of five letters or more also matches its suffixed
forms ("simulasinya"). Words are compared as written, folded, with doubled letters squeezed
except the "ngg" that tells "mengenang" (remembering) from "menggenang" (pooling). A pattern
ending in "?" is a question: its words must be adjacent and the post must put a question mark
right after the last one ("ada banjir?").

Hand-written rather than a regex per pattern: the gap rule over tokens is a few lines, and the
patterns run only on posts that already hit their hazard.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from siaga.normalise import MatchText, fold, squeeze

# The kinds of talk that are not an event; the hazard schema allows exactly these keys.
CATEGORIES = ("drill", "forecast", "anniversary", "socialisation", "question", "figurative")
# Categories about one phrase of the post, not the whole post: they veto a hazard only when
# every occurrence of its terms overlaps the matched words ("rezeki lagi macet" yes; "ramai
# tapi lancar ... diprediksi macet" leaves the later "macet" to decide; a flood report that also
# asks "apakah ada banjir lagi besok?" still reports). Drills, forecasts, anniversaries and
# socialisation colour the whole post.
LOCAL_CATEGORIES = frozenset({"question", "figurative"})
# Other words allowed between two consecutive words of a pattern.
MAX_GAP = 3
# A gap word that turns a pattern around ("padat namun TIDAK lancar" is a jam): never skipped.
_NEGATORS = frozenset({"tidak", "tak", "ga", "gak", "nggak", "enggak", "belum", "bukan", "kurang"})
# Pattern words this long also match the word with a suffix ("simulasinya", "latihannya").
_PREFIX_MIN = 5
# A "?" this many characters after the pattern's last word still belongs to it ("banjir ?").
_QUESTION_REACH = 3


@dataclass(frozen=True)
class Pattern:
    """One non-event pattern, compiled: its words as the matcher folds them."""

    category: str
    phrase: str  # as written in the YAML, for explanations
    words: tuple[str, ...]
    question: bool = False


@dataclass(frozen=True)
class NonEvent:
    """The pattern a post matched and where (original-text span), for explanations."""

    category: str
    phrase: str
    span: tuple[int, int]  # in the original text
    at: tuple[int, int] = (0, 0)  # in MatchText coordinates

    def vetoes(self, term_positions: Sequence[tuple[int, int]]) -> bool:
        """Does this talk silence terms at these MatchText positions?"""
        if self.category not in LOCAL_CATEGORIES:
            return True
        return all(start < self.at[1] and self.at[0] < end for start, end in term_positions)

    def reason(self) -> str:
        return f"non_event {self.category}: {self.phrase}"


def compile_patterns(section: Mapping[str, Sequence[str]]) -> tuple[Pattern, ...]:
    """A hazard's `non_event` section (category -> phrases) as patterns, in file order."""
    out = []
    for category, phrases in section.items():
        for phrase in phrases:
            question = phrase.rstrip().endswith("?")
            words = tuple(fold(phrase).text.split())
            if words:
                out.append(Pattern(category, phrase, words, question))
    return tuple(out)


def find(patterns: Sequence[Pattern], mt: MatchText,
         term_positions: Sequence[tuple[int, int]] | None = None) -> NonEvent | None:
    """The first pattern (in file order) the post matches that silences the terms at
    `term_positions` (MatchText coordinates; None: any match), else None."""
    if not patterns or not mt.words:
        return None
    starts, ends = mt.starts, mt.ends
    words = [mt.written(a, b) for a, b in zip(starts, ends)]
    for pattern in patterns:
        found = _match(pattern.words, words, 0 if pattern.question else MAX_GAP)
        if found is None:
            continue
        first, last = found
        start, end = starts[first], ends[last]
        span = mt.span(start, end)
        if pattern.question and not _question_after(mt, span[1]):
            continue
        talk = NonEvent(pattern.category, pattern.phrase, span, (start, end))
        if term_positions is None or talk.vetoes(term_positions):
            return talk
    return None


def _word_matches(want: str, got: str) -> bool:
    w, g = squeeze(want), squeeze(got)
    if not (g == w or (len(w) >= _PREFIX_MIN and g.startswith(w))):
        return False
    return ("ngg" in want) == ("ngg" in got[: len(want) + 1])


def _match(pattern: tuple[str, ...], words: list[str], gap: int) -> tuple[int, int] | None:
    """(first, last) token index of the earliest occurrence of the pattern's words in order with
    at most `gap` words between consecutive ones."""
    for i, word in enumerate(words):
        if not _word_matches(pattern[0], word):
            continue
        last = _rest(pattern, 1, words, i, gap)
        if last is not None:
            return i, last
    return None


def _rest(pattern: tuple[str, ...], k: int, words: list[str], prev: int, gap: int) -> int | None:
    if k == len(pattern):
        return prev
    for j in range(prev + 1, min(prev + 2 + gap, len(words))):
        if _word_matches(pattern[k], words[j]):
            last = _rest(pattern, k + 1, words, j, gap)
            if last is not None:
                return last
        if words[j] in _NEGATORS:
            return None
    return None


def _question_after(mt: MatchText, end: int) -> bool:
    original = mt.folded.original
    return "?" in original[end:end + _QUESTION_REACH + 1]
