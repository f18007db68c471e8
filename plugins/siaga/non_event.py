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

Hand-written rather than a regex per pattern: the gap rule over tokens is a few lines. The
patterns run only on posts that already hit their hazard, but that is a sixth of a traffic
stream: a post's words are squeezed once and looked up in an index of the patterns' words
(`_Index`), never compared pattern by pattern.
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
# A question mark as it is written: ASCII, fullwidth (CJK keyboards), Arabic, and the paired
# forms ("ada banjir？" was a flood report; "ada banjir?" a question).
_QUESTION_MARKS = frozenset("?\uff1f\u061f\u2047\u2048\u2049")
# Post words whose matching pattern words an index remembers before starting over.
_SEEN_MAX = 50_000


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
    index = _index_of(patterns)
    starts, ends = mt.starts, mt.ends
    words = mt.written_words()
    at = index.positions(words)
    if not at:
        return None
    present = at.keys()
    for pattern, ids, needs in zip(patterns, index.pattern_ids, index.needs):
        if not needs <= present:
            continue  # a word of the pattern is nowhere in the post
        found = _match([at[i] for i in ids], words, 0 if pattern.question else MAX_GAP)
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


class _Index:
    """A hazard's patterns indexed by their distinct words, so that a post's words are squeezed
    and looked up once each, instead of every pattern word compared with every post word (the
    patterns run on every post that hits its hazard: a sixth of a traffic stream)."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        ids: dict[str, int] = {}
        self.pattern_ids = tuple(tuple(ids.setdefault(w, len(ids)) for w in p.words) for p in patterns)
        self.needs = tuple(map(frozenset, self.pattern_ids))  # each pattern's word ids, as a set
        self.wants = list(ids)  # id -> pattern word as written (folded)
        self.exact: dict[str, list[int]] = {}  # squeezed pattern word -> ids
        self.prefix: dict[str, list[int]] = {}  # the same, for words that match suffixed forms
        for want, i in ids.items():
            w = squeeze(want)
            self.exact.setdefault(w, []).append(i)
            if len(w) >= _PREFIX_MIN:
                self.prefix.setdefault(w, []).append(i)
        self.longest_prefix = max(map(len, self.prefix), default=0)
        self._seen: dict[str, tuple[int, ...]] = {}  # post word -> `_matching`: posts reuse words

    def positions(self, words: Sequence[str]) -> dict[int, set[int]]:
        """Pattern word id -> the token indices it matches (`_word_matches`)."""
        at: dict[int, set[int]] = {}
        seen = self._seen
        for j, got in enumerate(words):
            ids = seen.get(got)
            if ids is None:
                if len(seen) > _SEEN_MAX:
                    seen.clear()
                ids = seen[got] = self._matching(got)
            for i in ids:
                at.setdefault(i, set()).add(j)
        return at

    def _matching(self, got: str) -> tuple[int, ...]:
        """The ids of the pattern words that match the post word `got`."""
        g = squeeze(got)
        candidates = list(self.exact.get(g, ()))
        for n in range(_PREFIX_MIN, min(len(g), self.longest_prefix + 1)):
            candidates.extend(self.prefix.get(g[:n], ()))
        return tuple(i for i in candidates if ("ngg" in self.wants[i]) == ("ngg" in got[: len(self.wants[i]) + 1]))


# Each pattern tuple's index, by identity (the tuple is kept so that its id stays its own).
_INDEXES: dict[int, tuple[Sequence[Pattern], _Index]] = {}


def _index_of(patterns: Sequence[Pattern]) -> _Index:
    entry = _INDEXES.get(id(patterns))
    if entry is None or entry[0] is not patterns:
        if len(_INDEXES) > 256:
            _INDEXES.clear()
        entry = _INDEXES[id(patterns)] = (patterns, _Index(patterns))
    return entry[1]


def _word_matches(want: str, got: str) -> bool:
    """Does post word `got` match pattern word `want`? The definition `_Index` implements by
    lookups (and its test checks it against)."""
    w, g = squeeze(want), squeeze(got)
    if not (g == w or (len(w) >= _PREFIX_MIN and g.startswith(w))):
        return False
    return ("ngg" in want) == ("ngg" in got[: len(want) + 1])


def _match(pattern: list[set[int]], words: list[str], gap: int) -> tuple[int, int] | None:
    """(first, last) token index of the earliest occurrence of the pattern's words (each given
    as the token indices it matches) in order with at most `gap` words between consecutive
    ones."""
    for i in sorted(pattern[0]):
        last = _rest(pattern, 1, words, i, gap)
        if last is not None:
            return i, last
    return None


def _rest(pattern: list[set[int]], k: int, words: list[str], prev: int, gap: int) -> int | None:
    if k == len(pattern):
        return prev
    for j in range(prev + 1, min(prev + 2 + gap, len(words))):
        if j in pattern[k]:
            last = _rest(pattern, k + 1, words, j, gap)
            if last is not None:
                return last
        if words[j] in _NEGATORS:
            return None
    return None


def _question_after(mt: MatchText, end: int) -> bool:
    original = mt.folded.original
    return not _QUESTION_MARKS.isdisjoint(original[end:end + _QUESTION_REACH + 1])
