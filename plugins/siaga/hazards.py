"""The hazard matcher: which hazards a post reports, compiled from validated keyword lists.

Classification runs on every post, so all phrases of all hazards go into one Aho-Corasick
automaton over the folded text (one pass per post, whatever the number of phrases) instead of a
loop of regexes; word boundaries are checked on each hit so "gempar" never counts as "gempa".
A term counts unless an exclusion overlaps it ("banjir diskon") or a negation denies it
(`siaga.negation`); a hazard on a road raises its traffic consequence, and a hazard reported as
the consequence of another in the same post is left to that one. Loading and validating the
lists is `siaga.hazard_config`; which lists are in force is `siaga.hazard_lists`.
"""
from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import ahocorasick

from siaga.hazard_config import Hazard, HazardConfig, hazard_files, read_directory
from siaga.negation import Denial
from siaga import non_event
from siaga.normalise import (
    Folded, MatchText, WordViews, fold, folded_words, match_key, match_text, quick_fold, squeeze, squeeze_fold, stem,
)

# Inside a hashtag (#infobanjirjakarta) there are no spaces to mark word boundaries. A term at
# the start or end of the tag counts; in the middle only if it is long enough not to be a
# fragment of another word by chance.
_HASHTAG_INNER_MIN = 5
_NGG = re.compile(r"ngg")
_LETTER_RUN = re.compile(r"(.)\1*")


@dataclass(frozen=True, init=False)
class HazardMatch:
    """One hazard a post reports: the terms as listed and their spans in the original text, what
    vetoed the rest, the severity cues found, and whether it was raised as a road consequence.

    `spans` may be given as a function that makes them, called the first time they are read:
    neither `siaga tag`'s output nor the pipeline reads them, and mapping a term back to the
    original text cost the tagger as much as finding it (issue 14). Equality, repr, hash,
    pickling and copies all read `spans`, so they see the made tuple."""

    hazard: str
    terms: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    vetoed_by: tuple[str, ...]
    severity_cues: tuple[str, ...]
    via_road: bool = False

    def __init__(self, hazard: str, terms: tuple[str, ...],
                 spans: tuple[tuple[int, int], ...] | Callable[[], tuple[tuple[int, int], ...]],
                 vetoed_by: tuple[str, ...], severity_cues: tuple[str, ...], via_road: bool = False) -> None:
        put = object.__setattr__
        put(self, "hazard", hazard)
        put(self, "terms", terms)
        put(self, "_make_spans" if callable(spans) else "spans", spans)
        put(self, "vetoed_by", vetoed_by)
        put(self, "severity_cues", severity_cues)
        put(self, "via_road", via_road)

    def __getattr__(self, name: str) -> Any:  # only for an attribute not set: spans not yet made
        if name == "spans":
            make = self.__dict__.get("_make_spans")
            if make is not None:
                spans = make()  # the same tuple whichever thread makes it first
                object.__setattr__(self, "spans", spans)
                self.__dict__.pop("_make_spans", None)
                return spans
            if "spans" in self.__dict__:  # made by another thread meanwhile
                return self.__dict__["spans"]
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (HazardMatch, (self.hazard, self.terms, self.spans, self.vetoed_by, self.severity_cues, self.via_road))


# ------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------

_TERM, _EXCL, _SEV, _ROAD, _ROOT = "term", "exclusion", "severity", "road", "root"
# What a key of the trigger automaton can start (its value: length * 8 + these flags): a term
# as whole words, a term inside a hashtag, a root inside a word.
_T_WORD, _T_TAG, _T_ROOT = 1, 2, 4


class _Hit(NamedTuple):  # a tuple: a post can have dozens, and the matcher makes them per post
    kind: str
    hazard: str
    phrase: str  # as written in the YAML
    start: int  # MatchText coordinates
    end: int
    rule: int = -1


class _Overlaps:
    """The hits of a list overlapping a span, found by bisection over their starts. A scan of
    every exclusion for every term and cue was quadratic in a post repeating both (`siaga tag`
    takes a line of any length: 800 kB of "tidak banjir ..., hoaks." took a minute)."""

    __slots__ = ("hits", "starts", "reach")

    def __init__(self, hits: list[_Hit]) -> None:
        self.hits = sorted(hits, key=lambda h: h.start)
        self.starts = [h.start for h in self.hits]
        self.reach = max((h.end - h.start for h in self.hits), default=0)  # the longest hit

    def over(self, start: int, end: int) -> list[_Hit]:
        """The hits with h.start < end and start < h.end (a hit starting `reach` or more
        before `start` ends by then)."""
        if not self.hits:
            return []
        lo = bisect_right(self.starts, start - self.reach)
        hi = bisect_left(self.starts, end)
        return [h for h in self.hits[lo:hi] if start < h.end]


_NO_OVERLAPS = _Overlaps([])  # most posts have no exclusion hit: nothing to sort


class HazardSet:
    """All hazard lists of one directory, compiled into one automaton (wildcard exclusions apart:
    regexes run only for posts that hit their hazard)."""

    def __init__(self, hazards: dict[str, Hazard], abbreviations: dict[str, str] | None = None,
                 files: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """`files` are the lists as written (file name, data), which the fingerprint is taken
        over when given; a set built in code is fingerprinted from its `Hazard`s."""
        self.hazards = dict(hazards)
        self.abbreviations = dict(abbreviations or {})
        self._files = files
        self._order = {hid: i for i, hid in enumerate(self.hazards)}
        self._views = WordViews(self.abbreviations)
        self._automaton = ahocorasick.Automaton()
        # Only the keys that can make a post report something (terms, roots): most posts hit
        # none of them, and for those one pass of this automaton is the whole classification.
        self._trigger = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self._trigger_plain = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        # Regular expressions are kept as their source and compiled (by `re`'s cache) when a
        # post needs them: compiling them all at every start cost more than loading the rest.
        self._wild_exclusions: dict[str, list[tuple[str, str, frozenset[str]]]] = {}
        self._real_doubles: dict[str, str] = {}
        self._non_events = {hz.id: non_event.compile_patterns(dict(hz.non_event))
                            for hz in self.hazards.values() if hz.non_event}
        entries: dict[str, list[tuple[str, str, str, int, bool]]] = defaultdict(list)
        for hz in self.hazards.values():
            plain_exclusions = tuple(e for e in hz.exclusions if "*" not in e)
            wild = [e for e in hz.exclusions if "*" in e]
            if wild:
                self._wild_exclusions[hz.id] = [
                    (e, _wildcard_regex(e, self.abbreviations).pattern, _wildcard_words(e, self.abbreviations)) for e in wild
                ]
            groups = [(_TERM, hz.terms, -1), (_EXCL, plain_exclusions, -1), (_SEV, hz.severity_cues, -1)]
            groups += [(_ROAD, rule.cues, r) for r, rule in enumerate(hz.road_consequence)]
            for kind, phrases, rule in groups:
                for phrase in phrases:
                    key = match_key(phrase, self.abbreviations)
                    self._note_real_doubles(phrase, key)
                    entries[key].append((kind, hz.id, phrase, rule, False))
                    if " " in key and kind in (_TERM, _EXCL):
                        # "#pohontumbang": the phrase written without spaces, valid only in hashtags
                        entries[key.replace(" ", "")].append((kind, hz.id, phrase, rule, True))
            for root in hz.roots:
                key = squeeze_fold(root)
                entries[key].append((_ROOT, hz.id, root, -1, False))
        for key, payload in entries.items():
            # Each entry carries what `_hits` decides with, so a hit costs no look-up: the
            # regex its spelling must match (`_note_real_doubles`), or None.
            self._automaton.add_word(key, (len(key), tuple(
                (kind, hid, phrase, rule, tag_only, self._real_doubles.get(phrase) if kind != _ROOT else None)
                for kind, hid, phrase, rule, tag_only in payload)))
            flags = 0
            for kind, _, _, _, tag_only in payload:
                if kind == _TERM:
                    flags |= _T_TAG if tag_only else _T_WORD | _T_TAG
                elif kind == _ROOT:
                    flags |= _T_ROOT
            if flags:
                self._trigger.add_word(key, len(key) * 8 + flags)
                # The same question for a post without hashtags, with the word boundaries in
                # the keys: a term as whole words is " term " in the post padded with spaces, a
                # root is itself anywhere. Any hit at all then answers it, found in C.
                if flags & _T_ROOT:
                    self._trigger_plain.add_word(key, 0)
                elif flags & _T_WORD:
                    self._trigger_plain.add_word(f" {key} ", 0)
        if entries:
            self._automaton.make_automaton()
        if len(self._trigger):
            self._trigger.make_automaton()
        if len(self._trigger_plain):
            self._trigger_plain.make_automaton()
        self._empty = not entries

    def _note_real_doubles(self, phrase: str, key: str) -> None:
        """Phrases are matched squeezed ("banjirr", "kecelakan" find their words), but squeezing
        merges the two meN- forms: "mengenang" (meN- + kenang, remembering) would find
        "menggenang" (meN- + genang, pooling). So for a phrase with "ngg" the written word must
        keep the double g; other doubles stay typo-tolerant."""
        folded = fold(phrase).text
        if squeeze(folded) == key and _NGG.search(folded):
            parts = []
            for run in _LETTER_RUN.finditer(folded):
                ch, n = run.group(1), len(run.group(0))
                if ch.isalpha():
                    parts.append(re.escape(ch) + ("{2,}" if n > 1 else "+"))
                else:
                    parts.append(re.escape(run.group(0)))
            self._real_doubles[phrase] = "".join(parts)

    @staticmethod
    def _spelled_right(rx: str, mt: MatchText, start: int, end: int) -> bool:
        """Does the post spell the phrase at [start, end) as `rx` (`_note_real_doubles`) says?"""
        written = mt.written(start, end)
        if squeeze(written) != mt.text[start:end]:
            return True  # reached through an abbreviation or "kata2": not a spelling question
        return re.fullmatch(rx, written) is not None

    @classmethod
    def load(cls, directory: Path) -> "HazardSet":
        """Load and validate a directory of hazard files; raise HazardConfigError listing every
        error (file:line: field ...) so an operator fixes them all in one go. Through the
        matcher cache (`load_compiled`)."""
        return load_compiled(Path(directory))[1]

    @classmethod
    def from_config(cls, config: HazardConfig) -> "HazardSet":
        """The matcher of an already validated directory."""
        return cls(config.hazards, config.abbreviations, config.files)

    # -- matching ------------------------------------------------------------------------------

    def _hits(self, mt: MatchText) -> dict[str, dict[str, list[_Hit]]]:
        """The hits of every phrase that counts where it stands, by hazard (in the order each
        hazard was first hit, which decides which road consequence is raised first) and kind.

        Written for speed: this runs for every post that may report something, and most of
        its keys are road cues and exclusions. A hit is a tuple made by `tuple.__new__` (no
        Python frame), and whether a key stands inside a hashtag is asked only when being whole
        words does not settle it, and only of a post that has a hashtag at all."""
        by_hazard: dict[str, dict[str, list[_Hit]]] = {}
        text = mt.text
        if self._empty or not text:
            return by_hazard
        starts, ends = mt.starts, mt.ends
        original = mt.folded.original
        tagged = "#" in original or "\uff03" in original
        hashtags: list[bool] | None = None
        root_tokens: dict[int, list[tuple[str, str]]] = {}
        new_hit = tuple.__new__
        for end_idx, (length, payload) in self._automaton.iter(text):
            start, end = end_idx - length + 1, end_idx + 1
            first = bisect_right(starts, start) - 1
            # starts[k + 1] == ends[k] + 1 (MatchText), so a key ending inside token `first` ends in it
            last = first if end <= ends[first] else bisect_right(starts, end_idx) - 1
            bounded = starts[first] == start and ends[last] == end
            in_tag: bool | None = None
            for kind, hid, phrase, rule, tag_only, rx in payload:
                if kind == _ROOT:
                    # A root inside a longer word ("kebanjiran", "tergenang"): confirm by stemming
                    # below, and only these few candidate words are ever stemmed.
                    if not bounded:
                        root_tokens.setdefault(first, []).append((hid, phrase))
                    continue
                if not bounded or tag_only:
                    if in_tag is None:
                        if tagged and first == last:
                            if hashtags is None:
                                hashtags = mt.hashtags
                            in_tag = hashtags[first] and (
                                start == starts[first] or end == ends[first] or length >= _HASHTAG_INNER_MIN
                            )
                        else:
                            in_tag = False
                    if not in_tag:
                        continue
                if rx is None or self._spelled_right(rx, mt, start, end):
                    kinds = by_hazard.get(hid)
                    if kinds is None:
                        kinds = by_hazard[hid] = {}
                    hit = new_hit(_Hit, (kind, hid, phrase, start, end, rule))
                    got = kinds.get(kind)
                    if got is None:
                        kinds[kind] = [hit]
                    else:
                        got.append(hit)
        if root_tokens:
            covered = {(hid, bisect_right(starts, h.start) - 1)
                       for hid, kinds in by_hazard.items() for h in kinds.get(_TERM, ())}
            for t_index, candidates in root_tokens.items():
                word, t_start, t_end = mt.words[t_index], starts[t_index], ends[t_index]
                # Stem the word as written too: squeezing can break a suffix ("kemacetannya").
                written = mt.written(t_start, t_end)
                found_roots = {squeeze(stem(word)), squeeze(stem(written))}
                for hid, phrase in candidates:
                    if squeeze_fold(phrase) in found_roots and (hid, t_index) not in covered:
                        by_hazard.setdefault(hid, {}).setdefault(_TERM, []).append(_Hit(_TERM, hid, word, t_start, t_end))
        return by_hazard

    def _may_report(self, folded: Folded) -> bool:
        """Can this post report any hazard? False only when no term or root occurs in it where
        `_hits` could count it: a term must stand as whole words, or inside a hashtag; a root
        may sit inside any word (decided by stemming). The exact rules decide the rest."""
        return self._reporting_views(folded) is not None

    def _reporting_views(self, folded: Folded) -> tuple[list[str], list[str], str] | None:
        """`_may_report`, answered with the post's folded words, how the matcher reads each and
        those views joined (what its `MatchText` is made of), or None."""
        if self._empty or not len(self._trigger):
            return None
        words = folded_words(folded)
        view = self._views.__getitem__
        text = " ".join(map(view, words))  # the list of views is made only for a post that passes
        original = folded.original
        if "#" in original or "\uff03" in original:
            # a root, or a term maybe inside a hashtag: the exact rules decide
            found = next(self._trigger.iter(text), None)
        else:
            found = next(self._trigger_plain.iter(f" {text} "), None) if len(self._trigger_plain) else None
        return None if found is None else (words, list(map(view, words)), text)

    def _matches(self, text: str | Folded, include_vetoed: bool, fast: bool = True) -> list[HazardMatch]:
        """The hazards of a post (its text, or its text already folded). `fast=False` is the
        straightforward path, kept to check the fast one against: the exact `fold`, every post
        through the whole matcher."""
        folded = text if not isinstance(text, str) else quick_fold(text) if fast else fold(text)
        if fast:
            read = self._reporting_views(folded)
            if read is None:
                return []
            mt = MatchText(folded, *read)
        else:
            mt = match_text(folded, self.abbreviations, self._views)
        by_hazard = self._hits(mt)
        denial = Denial(mt)
        direct, exclusions = self._direct(mt, by_hazard, denial)
        results = dict(direct) if include_vetoed else {k: m for k, m in direct.items() if m.terms}
        self._add_road_consequences(mt, direct, results, by_hazard, denial, exclusions)
        results = self._without_subsumed(results, include_vetoed)
        return sorted(results.values(), key=lambda m: self._order.get(m.hazard, len(self._order)))

    def _direct(self, mt: MatchText, by_hazard: dict[str, dict[str, list[_Hit]]], denial: Denial
                ) -> tuple[dict[str, HazardMatch], _Overlaps]:
        """Each hazard whose terms occur, with the occurrences no exclusion overlaps and no
        negation denies (terms empty when none survive), and its severity cues; plus every
        exclusion hit, which also silences other hazards' severity cues."""
        all_exclusions = [h for kinds in by_hazard.values() for h in kinds.get(_EXCL, [])]
        found: list[tuple[str, tuple[str, ...], list[tuple[int, int]], tuple[str, ...]]] = []
        text = mt.text
        post_words: set[str] | None = None
        for hid, kinds in by_hazard.items():
            terms = kinds.get(_TERM, [])
            if not terms:
                continue
            wild_exclusions = self._wild_exclusions.get(hid)
            if wild_exclusions:
                if post_words is None:
                    post_words = set(mt.words)
                wild = [
                    _Hit(_EXCL, hid, phrase, m.start(), m.end())
                    for phrase, rx, needs in wild_exclusions
                    # its words must all be words of the post before its regex can match
                    if needs <= post_words
                    for m in _compiled(rx).finditer(text)
                ]
            else:
                wild = []
            all_exclusions.extend(wild)
            excluded = kinds.get(_EXCL, []) + wild
            exclusions = _Overlaps(excluded) if excluded else _NO_OVERLAPS
            alive, vetoes, denials = [], [], []
            for t in terms:
                veto = exclusions.over(t.start, t.end)
                denied_by = denial.of_term(t.start)
                if veto:
                    vetoes.extend(veto)
                elif denied_by:
                    denials.append((t.start, denied_by))
                else:
                    alive.append(t)
            alive.sort(key=lambda h: (h.start, h.end))
            positions = [(h.start, h.end) for h in alive]
            talk = non_event.find(self._non_events.get(hid, ()), mt, positions) if alive else None
            if talk is not None:  # a drill, forecast, anniversary ...: the post reports no event
                denials.append((alive[0].start, talk.reason()))
                alive, positions = [], []
            vetoed_by = [(e.start, e.phrase) for e in vetoes] + denials
            found.append((hid, _unique(h.phrase for h in alive), positions, _unique(p for _, p in sorted(vetoed_by))))
        # severity cues once every hazard's exclusions (wildcards too) are known
        direct: dict[str, HazardMatch] = {}
        every_exclusion = _Overlaps(all_exclusions) if all_exclusions else _NO_OVERLAPS
        for hid, terms, positions, vetoed in found:
            cues = [h for h in by_hazard[hid].get(_SEV, []) if _cue_counts(h, denial, every_exclusion)]
            direct[hid] = HazardMatch(hid, terms, partial(_spans, mt, positions) if positions else (), vetoed, _cue_phrases(cues))
        return direct, every_exclusion

    def _add_road_consequences(self, mt: MatchText, direct: dict[str, HazardMatch], results: dict[str, HazardMatch],
                               by_hazard: dict[str, dict[str, list[_Hit]]], denial: Denial, exclusions: _Overlaps) -> None:
        """A hazard on a road raises the hazard of its first rule whose cues appear (marked
        via_road), unless that hazard is reported directly, or the rule is a fallback and the
        agency already hears of this post."""
        heard = {self.hazards[k].agency for k, m in direct.items() if m.terms and k in self.hazards}
        for hid, match in list(direct.items()):
            if not match.terms:
                continue
            road_hits = sorted((h for h in by_hazard[hid].get(_ROAD, []) if not denial.of_term(h.start)),
                               key=lambda h: h.start)
            for r, rule in enumerate(self.hazards[hid].road_consequence):
                # Rules are ordered, most specific first: the first whose cues appear decides
                # (a blocked road is a closure, not also a jam).
                cues = [h for h in road_hits if h.rule == r]
                target = rule.raises
                if not cues:
                    continue
                if target not in self.hazards or (target in results and results[target].terms):
                    break
                if rule.fallback and self.hazards[target].agency in heard:
                    break
                target_cues = [h for h in by_hazard.get(target, {}).get(_SEV, []) if _cue_counts(h, denial, exclusions)]
                results[target] = HazardMatch(
                    target, _unique(h.phrase for h in cues), partial(_spans, mt, [(h.start, h.end) for h in cues]),
                    (), _cue_phrases(target_cues), via_road=True,
                )
                heard.add(self.hazards[target].agency)
                break

    def _without_subsumed(self, results: dict[str, HazardMatch], include_vetoed: bool) -> dict[str, HazardMatch]:
        """Drop a hazard the post reports only as the consequence of another (explain keeps it,
        with no terms and the reason)."""
        reported = {k for k, m in results.items() if m.terms}
        out = dict(results)
        for hid in reported:
            by = [o for o in self.hazards[hid].subsumed_by if o in reported] if hid in self.hazards else []
            if not by:
                continue
            if include_vetoed:
                m = results[hid]
                out[hid] = HazardMatch(hid, (), (), _unique([*m.vetoed_by, *(f"subsumed by {o}" for o in by)]), m.severity_cues, m.via_road)
            else:
                del out[hid]
        return out

    def classify(self, text: str | Folded, fast: bool = True) -> list[HazardMatch]:
        """The hazards a post reports, in the set's order: those whose every occurrence an
        exclusion or a negation vetoed, or that another hazard in the post subsumes, are dropped;
        the traffic consequences of a hazard on a road are added (via_road). `text` may come
        folded already (`normalise.quick_fold`), as the tagger shares it with the geotagger."""
        return self._matches(text, include_vetoed=False, fast=fast)

    def explain(self, text: str | Folded, fast: bool = True) -> list[HazardMatch]:
        """Like classify, plus the hazards it drops (their terms empty, `vetoed_by` saying why), so
        `siaga tag --explain` can show an operator which exclusion, denial or subsuming hazard
        silenced a post."""
        return self._matches(text, include_vetoed=True, fast=fast)

    def fingerprint(self) -> str:
        """sha256 of the loaded lists and abbreviations: the pipeline records which were in force."""
        data: list[Any] | None = self._files
        if data is None:
            data = [(hid, _hazard_dict(hz)) for hid, hz in sorted(self.hazards.items())]
        blob = json.dumps({"hazards": data, "abbreviations": sorted(self.abbreviations.items())},
                          sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def load_compiled(directory: Path) -> tuple[HazardConfig, HazardSet]:
    """The validated lists of `directory` and their matcher, from the matcher cache when the
    same files were validated and compiled by the same code, else validated (HazardConfigError
    as `read_directory`), compiled and cached. Only a valid set is ever cached, and only when
    the files validated are the files the key was taken over: an operator saving during the
    load leaves nothing behind that the next load could mistake for the new text."""
    from siaga import matcher_cache

    directory = Path(directory)
    before = _lists_key(directory)
    if before is not None:
        got = matcher_cache.load("hazards", before[0])
        if got is not None:
            return got
    config = read_directory(directory)
    hazard_set = HazardSet.from_config(config)
    after = _lists_key(directory)
    if before is not None and after == before and before[1] == config.texts:
        matcher_cache.store("hazards", before[0], (config, hazard_set))
    return config, hazard_set


def _lists_key(directory: Path) -> tuple[str, dict[str, str]] | None:
    """(cache key, file name -> text) of the lists in `directory`: the hazard files, the
    abbreviation tables `read_directory` may use and the word list roots are checked against.
    None when the folder or a file cannot be read as text (then nothing is cached)."""
    from siaga import matcher_cache
    from siaga.config_errors import ConfigError, read_config_text
    from siaga.geodata import dictionary_file
    from siaga.settings import config_dir

    try:  # the files `hazard_config` reads, read as it reads them
        files = hazard_files(directory)
        texts = {p.name: read_config_text(p) for p in files}
    except (OSError, ConfigError):
        return None
    inputs = [*files, directory.parent / "abbreviations.csv", config_dir() / "abbreviations.csv"]
    inputs += [p for p in (dictionary_file(),) if p is not None]
    return matcher_cache.fingerprint("hazards", inputs, str(directory.resolve())), texts


def _cue_counts(cue: _Hit, denial: Denial, exclusions: _Overlaps) -> bool:
    """A severity cue inside an exclusion or a denial does not count."""
    if exclusions.over(cue.start, cue.end):
        return False
    return not denial.denies_cue(cue.start, cue.end)


def _cue_phrases(cues: list[_Hit]) -> tuple[str, ...]:
    """The severity cues that count, as listed, in the order the post has them."""
    return _unique(h.phrase for h in sorted(cues, key=lambda h: h.start)) if cues else ()


def _spans(mt: MatchText, positions: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Original-text spans of these MatchText slices (`HazardMatch.spans`, made when read)."""
    return tuple(mt.span(start, end) for start, end in positions)


def _wildcard_regex(phrase: str, abbreviations: dict[str, str]) -> re.Pattern[str]:
    """An exclusion with `*` words ("harga * longsor"): each `*` stands for exactly one word.
    Rare, so a regex run only for posts that already hit the hazard, not part of the automaton."""
    parts = [r"\S+" if piece.strip() == "" else re.escape(match_key(piece, abbreviations))
             for piece in _split_wild(phrase)]
    return re.compile(r"(?<!\S)" + " ".join(parts) + r"(?!\S)")


def _wildcard_words(phrase: str, abbreviations: dict[str, str]) -> frozenset[str]:
    """The words of a wildcard exclusion as its regex looks for them: the regex matches whole
    words of the post (`_wildcard_regex`), so a post lacking any of them cannot match, which
    one subset test of the post's words says faster than the regex (or a substring test per
    word)."""
    return frozenset(word for piece in _split_wild(phrase) if piece.strip() for word in match_key(piece, abbreviations).split())


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(rx: str) -> re.Pattern[str]:
    """A wildcard exclusion's regex, compiled the first time a post needs it (compiling them
    all cost more at start than the few ever used) and kept (cheaper than `re`'s own cache)."""
    got = _COMPILED.get(rx)
    if got is None:
        got = _COMPILED[rx] = re.compile(rx)
    return got


def _split_wild(phrase: str) -> list[str]:
    out: list[str] = []
    for k, chunk in enumerate(phrase.split("*")):
        if k:
            out.append("")
        if chunk.strip():
            out.append(chunk)
    return out


def _hazard_dict(hz: Hazard) -> dict[str, Any]:
    out = asdict(hz)
    out.pop("source", None)
    return out


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
