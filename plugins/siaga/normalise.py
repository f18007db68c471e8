"""Text normalisation shared by geotagging and hazard classification.

Posts are typed fast on phones: mixed case, stray diacritics, zero-width characters pasted from
chat apps, hyphenated reduplication ("Tinga-tinga") and elongated shouting ("banjirrrr"). Both the
place matcher and the hazard matcher must see the same folded text, and both must be able to point
back at the exact characters of the original post (the `span` of the `siaga tag` contract), so
folding keeps a map from every folded character to its original offset.

This is the one home of text folding: `fold` (exact, any script), `fast_fold`/`quick_fold` (the
same result for the usual post, much faster, offsets built lazily), the hazard matcher's view of a
post (`match_text`) and of a keyword (`match_key`, `squeeze_fold`, `squeeze`, `stem`), and the
keys place names are compared in (`key`, `spaced`).
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from operator import add
from pathlib import Path
from typing import NamedTuple, Sequence, TypeVar

from siaga.config_errors import ConfigError, ConfigProblem, read_config_text

_T = TypeVar("_T")
# Characters that join a word rather than separate it: "Ra'as", "Jum'at".
_JOINERS = {"'", "\u2019", "\u2018", "`", "\u00b4"}
# Three or more of the same letter are shouting, never spelling, in Indonesian and Balinese.
_ELONGATION_MIN = 3


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # in folded coordinates
    end: int


@dataclass(frozen=True)
class Folded:
    """Folded text plus, for each of its characters, the offset of the original character."""

    original: str
    text: str
    offsets: tuple[int, ...]  # len(text) + 1 entries; the last is the end of the original

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of the folded slice text[start:end]."""
        if end <= start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1 + _trailing_width(self.original, self.offsets[end - 1])

    def index(self, pos: int) -> int:
        """The original offset of folded character `pos` (len(text): the end of the original)."""
        return self.offsets[pos]


def _trailing_width(original: str, index: int) -> int:
    """Combining marks and collapsed repeats ("banjirrrr") that followed a character belong to
    its span."""
    if index + 1 >= len(original):
        return 0
    letter = original[index].lower()
    nxt = original[index + 1]
    # The usual case, settled without unicodedata: nothing below U+0300 is a combining mark, so
    # a next character there that is not the same letter ends the span at once.
    if nxt < "\u0300" and nxt.lower() != letter:
        return 0
    width = 0
    i = index + 1
    while i < len(original) and (
        unicodedata.combining(original[i]) or (letter.isalpha() and original[i].lower() == letter)
    ):
        width += 1
        i += 1
    return width


def _fold_char(ch: str) -> str:
    """One original character as zero or more folded characters ('' drops it, ' ' separates)."""
    if ch in _JOINERS:
        return ""
    cat = unicodedata.category(ch)
    if cat == "Cf" or cat == "Mn":  # zero-width and bidi controls, combining marks
        return ""
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    out = []
    for c in base:
        if c.isalnum() and c.isascii():
            out.append(c)
        elif c.isalpha():  # non-Latin letters stay letters (they never match a gazetteer entry)
            out.append(c)
        else:
            out.append(" ")
    return "".join(out)


_FOLD_CACHE: dict[str, str] = {}


def _fold_char_cached(ch: str) -> str:
    """`_fold_char` memoised: posts reuse few distinct characters, and unicodedata per character
    is what made folding slow. Bounded so hostile input cannot grow it without limit."""
    out = _FOLD_CACHE.get(ch)
    if out is None:
        if len(_FOLD_CACHE) > 50_000:
            _FOLD_CACHE.clear()
        out = _FOLD_CACHE[ch] = _fold_char(ch)
    return out


_ASCII_WORD = re.compile(r"[a-z0-9]+")
_ASCII_RUN3 = re.compile(r"([a-z])\1\1+")


def fold(text: str) -> Folded:
    """Lower-case, strip diacritics and invisible characters, turn punctuation into single spaces,
    collapse elongated letters, and keep the offset map."""
    if text.isascii() and "'" not in text and "`" not in text:
        return _fold_ascii(text)
    return _fold_general(text)


def _fold_general(text: str) -> Folded:
    """`fold` one character at a time: any script, diacritics, joiners, invisible characters."""
    chars: list[str] = []
    offsets: list[int] = []
    fold_char = _fold_char_cached
    for i, ch in enumerate(text):
        for c in fold_char(ch):
            if c == " ":
                if not chars or chars[-1] == " ":
                    continue
            elif (
                len(chars) >= _ELONGATION_MIN - 1
                and c.isalpha()
                and chars[-1] == c
                and chars[-2] == c
            ):
                continue  # third and later repeats of a letter
            chars.append(c)
            offsets.append(i)
    while chars and chars[-1] == " ":
        chars.pop()
        offsets.pop()
    # Elongation collapses runs of 3+ to 2 above; a run of exactly 2 that came from 3+ is shouting.
    folded = "".join(chars)
    folded, offsets = _collapse_shouted_doubles(text, folded, offsets)
    offsets.append(len(text))
    return Folded(original=text, text=folded, offsets=tuple(offsets))


def _fold_ascii(text: str) -> Folded:
    """`fold` for plain ASCII without joiners (most posts), by regex instead of a walk through
    unicodedata per character: same text and offsets (tests/test_normalise.py checks both paths
    agree), about 10x faster, which keeps classification above 5,000 posts/s. In ASCII every
    non-alphanumeric is a separator and a letter run of 3+ is shouting, folded to one letter."""
    lowered = text.lower()
    parts: list[str] = []
    offsets: list[int] = []
    prev_end = 0
    for m in _ASCII_WORD.finditer(lowered):
        start, word = m.start(), m.group()
        if parts:
            parts.append(" ")
            offsets.append(prev_end)
        if _ASCII_RUN3.search(word) is None:
            parts.append(word)
            offsets.extend(range(start, m.end()))
        else:
            pos = 0
            for run in _ASCII_RUN3.finditer(word):
                parts.append(word[pos:run.start() + 1])
                offsets.extend(range(start + pos, start + run.start() + 1))
                pos = run.end()
            parts.append(word[pos:])
            offsets.extend(range(start + pos, m.end()))
        prev_end = m.end()
    offsets.append(len(text))
    return Folded(original=text, text="".join(parts), offsets=tuple(offsets))


def _collapse_shouted_doubles(original: str, folded: str, offsets: list[int]) -> tuple[str, list[int]]:
    """Turn a double letter that stood for a run of 3+ in the original into one letter."""
    keep_chars: list[str] = []
    keep_offsets: list[int] = []
    i = 0
    while i < len(folded):
        c = folded[i]
        if (
            i + 1 < len(folded)
            and folded[i + 1] == c
            and c.isalpha()
            and _original_run_at_least(original, offsets[i], _ELONGATION_MIN)
        ):
            keep_chars.append(c)
            keep_offsets.append(offsets[i])
            i += 2
            continue
        keep_chars.append(c)
        keep_offsets.append(offsets[i])
        i += 1
    return "".join(keep_chars), keep_offsets


def _original_run_at_least(original: str, start: int, length: int) -> bool:
    """Whether `original` repeats its character at `start` at least `length` times from there.
    Only `length` characters are looked at: measuring the whole run made folding quadratic in a
    run of a character whose folded form holds a double letter (Arabic's ﷲ or ﷺ, "الله": 20,000
    of them, one post, took 14 s to tag)."""
    ch = original[start].lower()
    piece = original[start:start + length]
    return len(piece) == length and all(c.lower() == ch for c in piece)


# Where a sentence ends in a post, as people write it: ASCII stops and line breaks, and what
# phones and other scripts write for them ("…", which iOS makes of "...", CJK and fullwidth
# stops, Arabic's question mark, the Unicode line separators). A clause also ends at a comma,
# semicolon or colon, in any of their spellings. The geotagger reads a capital after a sentence
# end as no evidence of a name (`geotag`); a negator reaches no further than its clause
# (`negation`).
SENTENCE_ENDS = frozenset(".!?\n\r\x85\u2028\u2029\u2025\u2026\u203c\u2047\u2048\u2049\u3002\uff01\uff0e\uff1f\uff61\u061f")
CLAUSE_BREAKS = SENTENCE_ENDS | frozenset(",;:\u3001\uff0c\uff64\u060c\u061b\uff1a\uff1b")


# Addresses in a post: who or where it points to, not words it says. A link, an @mention (a
# retweet's "@name:" with its colon) are what `copies` compares posts without; a bare "www."
# link and an e-mail address besides are what the geotagger reads no place names in
# (`address_spans`).
LINK = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
MENTION = re.compile(r"(?<!\w)@\w+:?")
_WWW = re.compile(r"(?<![\w.])www\.[^\s<>\"']++", re.IGNORECASE)
_MAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)++")
_WWW_START = re.compile(r"www\.", re.IGNORECASE)
_MAIL_LOCAL = frozenset("_.+-")  # with letters and digits, what an e-mail address's local part holds


def address_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each link, e-mail address and @mention in `text`, in order: a place name
    inside one ("@Polres_Buleleng", "denpasar.kompas.com") names an account or a publisher, not
    where something happens.

    What one regex of the four kinds (a link, a "www." link, an e-mail address, a mention, in
    that order) finds scanning from the start, without trying it at every character: that
    cost a third of geotagging a tweet (nearly all of them hold a link or a mention). An
    address can start only at a link's "http"/"www.", at an "@", or where the letters before an
    "@" start; those places are found by `str.find`, each "@" read back over its own letters
    only, and the kinds tried there in order."""
    starts: dict[int, None] = {}
    at = text.find("://")
    while at >= 0:  # a link's "http" or "https" before it
        scheme = text[max(0, at - 5):at].lower()
        if scheme == "https" or scheme[-4:] == "http":
            starts[at - len(scheme) if scheme == "https" else at - 4] = None
        at = text.find("://", at + 3)
    if "w." in text or "W." in text:
        starts.update(dict.fromkeys(m.start() for m in _WWW_START.finditer(text)))
    at = text.find("@")
    if at < 0 and not starts:
        return []
    while at >= 0:
        local = at
        while local and (text[local - 1].isalnum() or text[local - 1] in _MAIL_LOCAL):
            local -= 1
        starts[local] = starts[at] = None
        at = text.find("@", at + 1)
    spans: list[tuple[int, int]] = []
    end = 0
    for start in sorted(starts):
        if start < end:
            continue  # inside the address before
        found = LINK.match(text, start) or _WWW.match(text, start) or _MAIL.match(text, start) or MENTION.match(text, start)
        if found is not None:
            spans.append(found.span())
            end = found.end()
    return spans


_TOKEN = re.compile(r"[^ ]+")


def tokens(folded: Folded) -> list[Token]:
    """Whitespace tokens of the folded text, in folded coordinates."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded.text)]


# ---------------------------------------------------------------------------------------------
# Matching view: abbreviations expanded, hashtags marked, Indonesian affixes stripped on demand.
# `fold()` above stays the single source of offsets; everything below maps back through it.
# ---------------------------------------------------------------------------------------------


class MatchToken(NamedTuple):
    text: str
    start: int  # in MatchText coordinates
    end: int
    hashtag: bool  # the original word was written as "#word" (compounds like #banjirbuleleng)


class MatchText:
    """Folded text with abbreviations expanded ("jl" -> "jalan", "tdk" -> "tidak") and doubled
    letters squeezed, so that one keyword list serves every spelling; every character remembers
    the folded slice it came from.

    Built for every post the hazard matcher reads, so it is made of whole-text operations: its
    tokens are parallel lists (`words`, `starts`, `ends`, `hashtags`; `tokens` makes
    `MatchToken`s of them when asked), and the folded slice behind a position is found from its
    token when a span or a spelling is asked for, not stored per character."""

    __slots__ = ("folded", "text", "words", "starts", "ends", "_fwords", "_views", "_fstarts", "_word_of", "_hashtags", "_spaced")

    def __init__(self, folded: Folded, folded_words: list[str], views: list[str], text: str | None = None) -> None:
        """`text`: the views joined by single spaces, when the caller has it already (the hazard
        matcher builds it to decide whether a post needs a `MatchText` at all)."""
        self.folded = folded
        self._fwords, self._views = folded_words, views  # the folded words and how the matcher reads each
        self.text = text = " ".join(views) if text is None else text
        self.words = words = text.split(" ") if text else []
        # Offsets by C-level iteration (word k starts after k words and k spaces): this runs for
        # every post with a hazard term, and a Python loop per word was a measurable share.
        lengths = list(map(len, words))
        self.starts = starts = list(map(add, accumulate(lengths, initial=0), range(len(words))))
        self.ends = list(map(add, starts, lengths))
        self._fstarts: list[int] | None = None
        self._word_of: list[int] | None = None  # token -> index of the folded word it came from
        self._hashtags: list[bool] | None = None

    @property
    def tokens(self) -> tuple[MatchToken, ...]:
        return tuple(map(MatchToken, self.words, self.starts, self.ends, self.hashtags))

    @property
    def hashtags(self) -> list[bool]:
        """Per token: was its word written as "#word"?"""
        if self._hashtags is None:
            original = self.folded.original
            if "#" in original or "\uff03" in original:
                self._source_map()
                fstarts, word_of = self._fstarts, self._word_of
                folded = self.folded
                tagged = None
                if type(folded) is LazyFolded and folded.word_starts()[1] == fstarts:
                    # Each word's original start is known already: no offset lookup per token.
                    tagged = folded.word_hashtags()
                elif type(folded) is DeferredFolded and self._spaced:
                    # From each word's place in the original, not the whole offset map (which
                    # folds the post again: a fiftieth of `siaga tag`'s time went there)
                    tagged = folded.word_hashtags(len(fstarts))  # type: ignore[arg-type]
                if tagged is not None:
                    self._hashtags = tagged if len(word_of) == len(tagged) else [tagged[w] for w in word_of]  # type: ignore[arg-type, union-attr]
                else:  # `hashtag_at` of each token's word, the offset map read directly when it is built
                    index = folded.index if type(folded) is LazyFolded else folded.offsets.__getitem__
                    self._hashtags = [(i := index(fstarts[w])) > 0 and original[i - 1] in "#\uff03" for w in word_of]  # type: ignore[index, union-attr]
            else:
                self._hashtags = [False] * len(self.words)
        return self._hashtags

    def _source_map(self) -> None:
        if self._fstarts is not None:
            return
        fwords, views = self._fwords, self._views
        text = self.folded.text
        # The folded words with single spaces between them and none around: `fold`'s way, and
        # then the slice of the folded text at each word's start is the word itself.
        self._spaced = bool(len(fwords)) and sum(map(len, fwords)) + len(fwords) - 1 == len(text)
        if self._spaced:
            fstarts = list(map(add, accumulate(map(len, fwords), initial=0), range(len(fwords))))
        else:  # spaced by hand, not by `fold`
            fstarts = [m.start() for m in _TOKEN.finditer(text)]
        if len(self.words) == len(fwords):
            word_of = list(range(len(fwords)))
        else:  # some words became several ("lalin" -> "lalu lintas", "rumah2" -> "rumah rumah")
            word_of = _per_token(range(len(fwords)), views)
        self._fstarts, self._word_of = fstarts, word_of

    def _source(self, k: int) -> tuple[int, int, bool, bool]:
        """Token k's folded word (start, end), whether the matcher reads it rewritten, and
        whether k is the first token of that word."""
        self._source_map()
        w = self._word_of[k]  # type: ignore[index]
        fs = self._fstarts[w]  # type: ignore[index]
        fword = self._fwords[w]
        return fs, fs + len(fword), self._views[w] != fword, k == 0 or self._word_of[k - 1] != w  # type: ignore[index]

    def _start_of(self, pos: int) -> int:
        """Folded start of the source of character `pos`."""
        k = bisect_right(self.starts, pos) - 1
        if pos >= self.ends[k]:  # the space after token k stands for the start of token k + 1
            return self._source(k + 1)[0]
        fs, _, rewritten, _ = self._source(k)
        return fs if rewritten else fs + pos - self.starts[k]

    def _end_of(self, pos: int) -> int:
        """Folded end of the source of character `pos`."""
        k = bisect_right(self.starts, pos) - 1
        if pos >= self.ends[k]:  # a word break maps to the next word's start; a break inside a rewritten word to its end
            nfs, nfe, _, first = self._source(k + 1)
            return nfs if first else nfe
        fs, fe, rewritten, _ = self._source(k)
        return fe if rewritten else fs + pos - self.starts[k] + 1

    @property
    def folded_start(self) -> tuple[int, ...]:
        """Per character: start of its source in folded coordinates."""
        return tuple(self._start_of(p) for p in range(len(self.text)))

    @property
    def folded_end(self) -> tuple[int, ...]:
        """Per character: end of its source in folded coordinates."""
        return tuple(self._end_of(p) for p in range(len(self.text)))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text [start, end) of the slice text[start:end]."""
        if end <= start:
            pos = self._start_of(start) if start < len(self.text) else len(self.folded.text)
            return self.folded.span(pos, pos)
        return self.folded.span(self._start_of(start), self._end_of(end - 1))

    def written_words(self) -> list[str]:
        """`written` of every token, from the folded words directly: the non-event patterns
        read every token of each post that hits a hazard, and an offset lookup per token was
        most of their cost."""
        if "" in self.words:  # an empty token has no word of its own: the general lookup decides
            return [self.written(a, b) for a, b in zip(self.starts, self.ends)]
        fwords = self._fwords
        if sum(map(len, fwords)) + len(fwords) - 1 == len(self.folded.text):
            # The folded words spaced as `fold` spaces them (`_source_map`): each token's
            # spelling is its folded word, found without building the map (a post with
            # "lalin" in it is one in five of those that reach the matcher).
            return list(fwords) if len(self.words) == len(fwords) else _per_token(fwords, self._views)
        self._source_map()
        text, fstarts, fwords, word_of = self.folded.text, self._fstarts, self._fwords, self._word_of
        if self._spaced:  # each word is its own slice of the folded text
            return list(fwords) if len(word_of) == len(fwords) else [fwords[w] for w in word_of]  # type: ignore[arg-type, union-attr]
        return [text[fstarts[w]:fstarts[w] + len(fwords[w])] for w in word_of]  # type: ignore[index, union-attr]

    def written(self, start: int, end: int) -> str:
        """The folded text behind the slice text[start:end], before abbreviations were expanded
        and doubles squeezed: what the post actually spelt there."""
        return self.folded.text[self._start_of(start):self._end_of(end - 1)]


def _per_token(per_word: Sequence[_T], views: list[str]) -> list[_T]:
    """Each folded word's item once per token of its view ("lalin" -> "lalu lintas": twice).
    Counting spaces only in a view that has one: three times faster than a comprehension
    over every token (and than `itertools.chain` of `repeat`s)."""
    out: list[_T] = []
    for item, view in zip(per_word, views):
        if " " in view:
            out.extend([item] * (view.count(" ") + 1))
        else:
            out.append(item)
    return out


def load_abbreviations(path: Path) -> dict[str, str]:
    """`abbrev,expansion` rows (lines starting with '#' are comments) as a folded lookup table.
    A bad row is refused with its line in the file (ConfigError, `file:line:column: ...`), and so
    is an abbreviation given a second, different expansion: only one of them can apply, and the
    later one silently won. A spreadsheet's byte order mark is read as such (utf-8-sig), not as
    part of the first row."""
    table: dict[str, str] = {}
    first: dict[str, int] = {}  # abbrev -> the line that expanded it
    text = read_config_text(path, "utf-8-sig")  # bounded, a regular file: refused at the file otherwise
    numbered = [(n, line) for n, line in enumerate(io.StringIO(text, newline=""), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    problems = []
    for lineno, line in numbered:
        row = next(csv.reader([line]), [])
        if row and row[0].strip() == "abbrev":
            continue
        if len(row) != 2:
            problems.append(ConfigProblem(str(path), lineno, 1, "(row)", f"{row!r}: expected 'abbrev,expansion'"))
            continue
        abbrev, expansion = fold(row[0]).text, fold(row[1]).text
        if not abbrev or " " in abbrev:
            problems.append(ConfigProblem(str(path), lineno, 1, "abbrev", f"{row[0]!r}: abbrev must be one word"))
        elif not expansion:
            problems.append(ConfigProblem(str(path), lineno, len(row[0]) + 2, "expansion", f"{row[1]!r}: expansion must not be empty"))
        elif abbrev in table and table[abbrev] != expansion:
            problems.append(ConfigProblem(str(path), lineno, 1, "abbrev", f"{row[0]!r} is already expanded to "
                                          f"{table[abbrev]!r} at line {first[abbrev]}"))
        else:
            first.setdefault(abbrev, lineno)
            table[abbrev] = expansion
    if problems:
        raise ConfigError(problems)
    return table


def match_key(phrase: str, abbreviations: dict[str, str] | None = None) -> str:
    """A keyword list phrase in the form the hazard matcher compares it with posts: folded the
    way `match_text` folds a post, so one list serves every spelling."""
    return match_text(fold(phrase), abbreviations).text


def squeeze_fold(word: str) -> str:
    """A word folded and squeezed, without abbreviations: how Indonesian roots are compared with
    the stems of words in a post (stemming works on words, not on expansions)."""
    return squeeze(fold(word).text)


class WordViews(dict):
    """Each folded word as the hazard matcher sees it (abbreviation expanded, doubles squeezed,
    "rumah2" as "rumah rumah"), remembered: posts reuse a small vocabulary, and a dictionary
    look-up is what lets every post be looked at in the matcher's form before deciding whether
    it needs the full `MatchText`. Bounded, so hostile input cannot grow it without limit."""

    LIMIT = 200_000

    def __init__(self, abbreviations: dict[str, str] | None = None) -> None:
        super().__init__()
        self.abbreviations = dict(abbreviations or {})

    def __missing__(self, word: str) -> str:
        view = squeeze(self.abbreviations.get(word, word))
        redup = _REDUPLICATED.fullmatch(view)
        if redup:  # "rumah2", "surut2": the chat spelling of "rumah-rumah"
            view = f"{redup.group(1)} {redup.group(1)}"
        if len(self) >= self.LIMIT:
            self.clear()
        self[word] = view
        return view

    def text(self, folded_text: str) -> str:
        """`match_text(folded).text`, without the offsets."""
        if not folded_text:
            return ""
        return " ".join(map(self.__getitem__, _words(folded_text)))

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (WordViews, (self.abbreviations,))  # pickled (in a cached matcher) without its memory


def _words(folded_text: str) -> list[str]:
    """The words of a folded text (single spaces between words, none at either end, except in
    a text folded by hand: then whatever the spaces)."""
    if "  " in folded_text or folded_text[0] == " " or folded_text[-1] == " ":
        return folded_text.split()
    return folded_text.split(" ")


def match_text(folded: Folded, abbreviations: dict[str, str] | None = None, views: WordViews | None = None) -> MatchText:
    """The folded text as the hazard matcher sees it: abbreviations expanded and hashtags marked.
    `views` (built over the same abbreviations) remembers words across posts."""
    if views is None:
        views = WordViews(abbreviations)
    words = folded_words(folded)
    return MatchText(folded, words, list(map(views.__getitem__, words)))


def folded_words(folded: Folded | LazyFolded) -> list[str]:
    """The words of a folded post: kept by `quick_fold` (`LazyFolded.words`), else split."""
    if type(folded) is LazyFolded:
        return folded.words
    return _words(folded.text) if folded.text else []


def hashtag_at(folded: Folded, start: int) -> bool:
    first = folded.index(start)
    return first > 0 and folded.original[first - 1] in "#\uff03"


_DOUBLE = re.compile(r"([a-z])\1")
_REDUPLICATED = re.compile(r"([a-z]{2,})2")


def squeeze(word: str) -> str:
    """Doubled letters as one ("banjirr", "macett", "tsunammi"): chat typos and short shouting
    that fold() keeps. Patterns and posts are squeezed alike, so real doubles ("saat") still
    match themselves; only the matcher sees this form, offsets go through MatchText."""
    return _DOUBLE.sub(r"\1", word)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    # Imported lazily: building Sastrawi's dictionary takes ~0.3 s, paid only if stemming is used.
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Indonesian root of one folded word ("kebanjiran" -> "banjir", "tertimbun" -> "timbun").

    Sastrawi is a dictionary-backed affix stripper: accurate but about 0.2 ms a word, so callers
    stem only words their literal lists did not match, and this cache makes repeats free (social
    posts reuse a small vocabulary)."""
    if not word.isalpha() or len(word) < 4:
        return word
    return _stemmer().stem(word)


# ---------------------------------------------------------------------------------------------
# Names: the fast fold the gazetteer and the geotagger compare place names in.
# ---------------------------------------------------------------------------------------------


def key(text: str) -> str:
    """The folded, space-free form names are compared in ("Tinga-tinga" == "Tingatinga")."""
    return fast_fold(text).text.replace(" ", "")


def spaced(text: str) -> str:
    """The folded form with its word breaks kept ("Tinga-tinga" -> "tinga tinga")."""
    return fast_fold(text).text


_WORD = re.compile(r"[A-Za-z0-9'`]+")
# A `_WORD` that folds to a word (more than joiners), its first letter or digit as group 1: the
# same matches as filtering `_WORD`'s (a run of joiners alone never matches), without a Python
# test per word. Never started inside a run of joiners, and possessive: tried from each joiner of
# a run not followed by a letter, it read the rest of the run every time, quadratic ("'" 20,000
# times in a post that names a place took 2 s to tag).
_FOLDING_WORD = re.compile(r"(?<!['`])['`]*+([A-Za-z0-9][A-Za-z0-9'`]*+)")
_RUN3 = re.compile(r"([a-z])\1\1+")
_JOINED_REPEAT = re.compile(r"([A-Za-z])['`]+(?i:\1)")
_SEPARATORS: dict[str, bool] = {}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ALNUM = re.compile(r"[a-z0-9]+")
_ALNUM_SPLIT = re.compile(r"([A-Za-z0-9]+)")


def _is_separator(ch: str) -> bool:
    """A character `fold` turns into a word break (punctuation, symbols, emoji, odd spaces)."""
    got = _SEPARATORS.get(ch)
    if got is None:
        got = unicodedata.category(ch) not in ("Cf", "Mn") and fold("a" + ch + "a").text == "a a"
        _SEPARATORS[ch] = got
    return got


# `_skip_words(k)` matches a text up to the start of its word k (ASCII letters and digits, as
# `LazyFolded` words are): possessive, so a match never backtracks. Patterns are kept per k up to
# a bound; a post with more words than that finds its offsets from the whole split instead.
# Keyed by k (not a list grown in order), so two threads compiling at once store the same thing.
_SKIP_LIMIT = 512
_SKIPS: dict[int, re.Pattern[str]] = {}


def _skip_words(k: int) -> re.Pattern[str]:
    pattern = _SKIPS.get(k)
    if pattern is None:
        pattern = _SKIPS[k] = re.compile(r"(?:[^A-Za-z0-9]*+[A-Za-z0-9]++){%d}[^A-Za-z0-9]*+" % k)
    return pattern


class LazyFolded:
    """A `Folded` whose offset map is built only when a span is asked for.

    Most posts name no place, so the tagger should not pay for an offset per character. `words`
    are the folded words (`text` is them joined by single spaces), kept because the hazard
    matcher reads a post word by word and would otherwise split `text` again."""

    __slots__ = ("original", "text", "words", "_source", "_offsets", "_words")

    def __init__(self, original: str, text: str, source: str | None, words: list[str] | None = None) -> None:
        # `source`: the original with every non-ASCII character a space; None: made when needed
        # (only a post a span is asked of pays for it)
        self.original, self.text, self._source, self._offsets = original, text, source, None
        self.words = (text.split(" ") if text else []) if words is None else words
        self._words: tuple[list[int], list[int]] | None = None

    @property
    def source(self) -> str:
        """The text word positions are read from. The original serves as well as its ASCII
        form: every non-ASCII character in it is a separator, and the word patterns below
        (`_WORD`, `_ALNUM_SPLIT`) are ASCII classes that never match one."""
        return self.original if self._source is None else self._source

    @property
    def offsets(self) -> tuple[int, ...]:
        if self._offsets is None:
            offsets: list[int] = []
            prev_end: int | None = None  # the space between two words maps to the first's end
            for m in _WORD.finditer(self.source):
                if prev_end is not None:
                    offsets.append(prev_end)
                offsets.extend(range(m.start(), m.end()))
                prev_end = m.end()
            offsets.append(len(self.original))
            self._offsets = tuple(offsets)
        return self._offsets

    def _word_starts(self) -> tuple[list[int], list[int]]:
        """Where each word starts in the original and in the folded text: a word is the same
        letters in both (this fold only lower-cases ASCII and drops what lies between words)."""
        if self._words is None:
            # [separator, word, separator, ..., word, separator]: each word starts where the
            # lengths before it add up to (a C pass, not a match object per word)
            parts = _ALNUM_SPLIT.split(self.source)
            original_starts = list(accumulate(map(len, parts[:-1])))[::2]
            words = self.words
            if len(words) == len(original_starts):  # always, for a text this fold made
                folded_starts = list(map(add, accumulate(map(len, words), initial=0), range(len(words))))
            else:
                folded_starts = [0] * len(original_starts)
                pos = 0
                for k, word in enumerate(words):
                    folded_starts[k] = pos
                    pos += len(word) + 1
            self._words = (original_starts, folded_starts)
        return self._words

    def word_starts(self) -> tuple[list[int], list[int]]:
        """(original start, folded start) of each word."""
        return self._words or self._word_starts()

    def word_hashtags(self) -> list[bool]:
        """Per folded word: was it written as "#word"? (what `hashtag_at` says of its start)"""
        original = self.original
        return [start > 0 and original[start - 1] in "#\uff03" for start in self.word_starts()[0]]

    def index(self, pos: int) -> int:
        """The original offset of folded character `pos`, from its word, without the whole map
        (a tagger asks for a few: where a place name starts and ends)."""
        if self._offsets is not None:
            return self._offsets[pos]
        text = self.text
        if pos >= len(text):
            return len(self.original)
        if self._words is not None:
            original_starts, folded_starts = self._words
            k = bisect_right(folded_starts, pos) - 1
            word_end = folded_starts[k + 1] - 1 if k + 1 < len(folded_starts) else len(text)
            # the space after a word stands for the end of that word
            return original_starts[k] + min(pos, word_end) - folded_starts[k]
        # Word k (k spaces before `pos`) starts in the original where k ASCII words and the
        # separators around them end: one regex match up to there, not the split of the whole
        # post that `word_starts` makes (a place-naming post asks for two or three offsets).
        # A space at `pos` (after word k) comes out as the end of word k, as above.
        k = text.count(" ", 0, pos)
        if k >= _SKIP_LIMIT:
            self._word_starts()
            return self.index(pos)
        return _skip_words(k).match(self.source).end() + pos - text.rfind(" ", 0, pos) - 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        if end <= start:
            first = self.index(start)
            return first, first
        text = self.text
        if self._offsets is not None or self._words is not None or end > len(text):
            last = self.index(end - 1)
            return self.index(start), last + 1 + _trailing_width(self.original, last)
        # `index(start)` and `index(end - 1)` in one walk: the words up to the first, then on from
        # there to the second (both in range of the folded text, so neither is the end).
        k1 = text.count(" ", 0, start)
        k2 = k1 + text.count(" ", start, end - 1)
        if k2 >= _SKIP_LIMIT:
            self._word_starts()
            return self.span(start, end)
        source = self.source
        at1 = _skip_words(k1).match(source).end()
        at2 = _skip_words(k2 - k1).match(source, at1).end() if k2 > k1 else at1
        first = at1 + start - text.rfind(" ", 0, start) - 1
        last = at2 + end - 1 - text.rfind(" ", 0, end - 1) - 1
        return first, last + 1 + _trailing_width(self.original, last)


class DeferredFolded:
    """A `Folded` of a post with joiners ("Ra'as") or shouting ("banjirrr"), its text made by
    whole-text operations and its offset map (`fast_fold`'s) built only when a span is asked
    for: the word-by-word offsets of `fast_fold` cost as much as folding ten usual posts, and
    most of these posts, like the others, name no place and report nothing."""

    __slots__ = ("original", "text", "_exact", "_words")

    def __init__(self, original: str, text: str) -> None:
        self.original, self.text = original, text
        self._exact: Folded | None = None
        self._words: list[re.Match[str]] | None = None

    def _word_matches(self) -> list[re.Match[str]]:
        """The `_WORD`s of the original that fold to a word (more than joiners: "'" alone
        folds to nothing), found once: folded word k is the k-th of them, and a place-naming
        post asks for two or three offsets."""
        if self._words is None:
            self._words = list(_FOLDING_WORD.finditer(self.original))
        return self._words

    def word_hashtags(self, count: int) -> list[bool] | None:
        """Per folded word (`count` of them): was it written as "#word"? What `hashtag_at` says
        of its start, from the original's words (`_word_matches`): a word's first folded letter
        is its first letter that is not a joiner. None when the words do not line up (not a text
        `quick_fold` made): the offset map answers."""
        words = self._word_matches()
        if len(words) != count:
            return None
        original = self.original
        return [(s := m.start(1)) > 0 and original[s - 1] in "#\uff03" for m in words]

    def _folded(self) -> Folded:
        if self._exact is None:
            self._exact = fast_fold(self.original)
        return self._exact

    @property
    def offsets(self) -> tuple[int, ...]:
        return self._folded().offsets

    def index(self, pos: int) -> int:
        """`fast_fold`'s offset of folded character `pos`, found in its word alone when the map
        is not built: a tagger asks a place-naming post for two or three offsets, and folding
        the whole post again for them cost as much as the rest of its tagging."""
        if self._exact is not None:
            return self._exact.offsets[pos]
        text = self.text
        if pos >= len(text):
            return len(self.original)
        k = text.count(" ", 0, pos)  # word k of the folded text holds `pos`
        # Word k is the k-th `_WORD` of the original that is more than joiners; the pattern is
        # ASCII, so non-ASCII separators never join a word.
        words = self._word_matches()
        if k >= len(words):  # not a text `quick_fold` made: the exact map answers
            return self._folded().offsets[pos]
        m = words[k]
        word = m.group()
        r = pos - text.rfind(" ", 0, pos) - 1  # place in the folded word; its length: the space after
        # The word's folded letters as `fast_fold` keeps them: joiners dropped, a run of 3+ kept
        # as its first letter.
        start = m.start()
        kept = [start + i for i, ch in enumerate(word) if ch != "'" and ch != "`"]
        lowered = word.lower().replace("'", "").replace("`", "")
        if _RUN3.search(lowered):
            runs: list[int] = []
            at = 0
            for run in _RUN3.finditer(lowered):
                runs.extend(kept[at : run.start() + 1])
                at = run.end()
            runs.extend(kept[at:])
            kept = runs
        return kept[r] if r < len(kept) else m.end()

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self._exact is not None:
            return self._exact.span(start, end)
        if end <= start:
            first = self.index(start)
            return first, first
        last = self.index(end - 1)
        return self.index(start), last + 1 + _trailing_width(self.original, last)


# ASCII bytes as `quick_fold` folds them: letters lower-cased, digits kept, anything else (and
# the "?" that `str.encode(..., "replace")` puts for a non-ASCII character) a word break.
_FOLD_BYTES = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or 48 <= c <= 57 else 32 for c in range(256))
# Non-ASCII characters found to be separators (`_is_separator`): a post's set of them is
# checked against this in one C-level subset test. Bounded like the other per-character caches.
_KNOWN_SEPARATORS: set[str] = set()


def quick_fold(text: str) -> Folded | LazyFolded | DeferredFolded:
    """`fast_fold` with the offset map deferred: per word for the common post (no joiners, no
    shouting), else whole (`DeferredFolded`).

    Every post goes through here, so the common one is folded by whole-string C operations:
    `bytes.translate` lower-cases and turns separators into spaces, `split` finds the words (a
    regex `findall` and `lower` cost twice as much)."""
    if text.isascii():
        encoded = text.encode("ascii")
        source: str | None = text
    else:
        found = set(_NON_ASCII.findall(text))
        if not found <= _KNOWN_SEPARATORS:
            if not all(_is_separator(ch) for ch in found):
                return fold(text)
            if len(_KNOWN_SEPARATORS) > 50_000:
                _KNOWN_SEPARATORS.clear()
            _KNOWN_SEPARATORS.update(found)
        encoded = text.encode("ascii", "replace")  # one "?" (a separator) per non-ASCII character
        source = None
    if b"'" in encoded or b"`" in encoded:
        if source is None:
            source = _NON_ASCII.sub(" ", text)
        if _JOINED_REPEAT.search(source):
            return fold(text)  # as `fast_fold` does
        # `fast_fold`'s words: letters and digits with the joiners inside them dropped
        joined = " ".join(_ALNUM.findall(source.lower().replace("'", "").replace("`", "")))
        return DeferredFolded(text, _RUN3.sub(r"\1", joined) if _RUN3.search(joined) else joined)
    words = encoded.translate(_FOLD_BYTES).decode("ascii").split()
    folded = " ".join(words)
    # a run of 3+ letters in the folded text is one in the original: only separators were dropped
    if not _PLAIN_WORDS.issuperset(words) and _shouted(words):
        return DeferredFolded(text, _RUN3.sub(r"\1", folded))
    return LazyFolded(text, folded, source, words)


# Folded words known to hold no run of 3+ letters. Posts reuse a small vocabulary, so "does this
# post shout?" is mostly one C-level subset test of its words against this set: a regex search
# of the whole text was a quarter of folding it. Bounded like the other per-word caches.
_PLAIN_WORDS: set[str] = set()
_PLAIN_WORDS_MAX = 100_000


def _shouted(words: list[str]) -> bool:
    """Does a word hold a run of 3+ letters? The words found plain are remembered."""
    fresh = [w for w in words if w not in _PLAIN_WORDS]
    if any(_RUN3.search(w) for w in fresh):
        return True
    if len(_PLAIN_WORDS) > _PLAIN_WORDS_MAX:
        _PLAIN_WORDS.clear()
    _PLAIN_WORDS.update(fresh)
    return False


def fast_fold(text: str) -> Folded:
    """`normalise.fold`, ~10x faster for the usual post; anything unusual goes to `fold`.

    `fold` walks the text a character at a time through unicodedata, which alone would cap the
    tagger far below 20k posts/s (and make loading 91.6k names slow). When every non-ASCII
    character is a separator (emoji, "…", curly quotes) the same result is: words of ASCII
    letters/digits lower-cased with ' and ` dropped, one space between, letter runs of 3+
    collapsed to one. Accented letters, zero-width characters and a repeat across a joiner
    ("a'a") take the exact path. tests/test_gazetteer.py checks both agree on real posts and
    random text."""
    if not text.isascii():
        if not all(_is_separator(ch) for ch in set(_NON_ASCII.findall(text))):
            return fold(text)
        text_ascii = _NON_ASCII.sub(" ", text)
    else:
        text_ascii = text
    joiners = "'" in text_ascii or "`" in text_ascii
    if joiners and _JOINED_REPEAT.search(text_ascii):
        return fold(text)
    parts: list[str] = []
    offsets: list[int] = []
    prev_end = 0
    for m in _WORD.finditer(text_ascii.lower()):  # ASCII: lower-casing keeps every position
        s = m.start()
        word = m.group()
        if joiners and ("'" in word or "`" in word):  # only these words need a walk per character
            idx = [s + i for i, ch in enumerate(word) if ch not in "'`"]
            if not idx:
                continue
            word = word.replace("'", "").replace("`", "")
        else:
            idx = None
        if parts:
            parts.append(" ")
            offsets.append(prev_end)
        if idx is None and _RUN3.search(word) is None:
            parts.append(word)
            offsets.extend(range(s, m.end()))
        else:
            if idx is None:
                idx = list(range(s, m.end()))
            pos = 0
            for r in _RUN3.finditer(word):
                parts.append(word[pos : r.start() + 1])
                offsets.extend(idx[pos : r.start() + 1])
                pos = r.end()
            parts.append(word[pos:])
            offsets.extend(idx[pos:])
        prev_end = m.end()
    offsets.append(len(text))
    return Folded(original=text, text="".join(parts), offsets=tuple(offsets))
