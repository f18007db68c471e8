"""Search queries as words to look for in a stream: which posts of a stream might a source's
search return?

A service that streams more than a source asks for (Bluesky's Jetstream: every post of the
network; a Mastodon instance's public timeline: every public status it sees) is filtered here,
in Airflow's triggerer, before a post may wake an ingest run; the run then asks the search as
every poll does. So the filter only has to be cheap and never stricter than the search: a
wake-up too many costs one search request, a wake-up missed costs the post a minute (the poll
finds it). Each service's query syntax differs only in its filters (`from:`, `lang:`...),
which never name words of the text and are dropped; the service passes its own.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from siaga.normalise import quick_fold

# A token of a search query: a quoted phrase (closed or not), a parenthesis, or a bare word.
_TOKEN = re.compile(r'"[^"]*"?|[()]|[^\s()"]+')


def filters_pattern(prefixes: Iterable[str]) -> re.Pattern[str]:
    """A pattern matching a query token that is one of these filters (`from:someone`)."""
    return re.compile(r"^(?:%s):" % "|".join(map(re.escape, prefixes)), re.IGNORECASE)


def query_tokens(query: str) -> list[str]:
    """A search query's tokens: quoted phrases (closed or not), parentheses, bare words."""
    return _TOKEN.findall(query)


def fold_words(text: str) -> list[str]:
    """The words of `text` as matching sees them: `normalise.quick_fold`, split."""
    folded = quick_fold(text).text
    return folded.split(" ") if folded else []


def query_terms(query: str, filters: re.Pattern[str]) -> list[str]:
    """The terms a post must match to be a candidate for `query`: one per alternative, each the
    folded words that alternative requires, space-separated (all of them, in any order). An
    empty list when some alternative requires no word (a query of filters only): such a query
    cannot be told from the stream and is left to the poll. `filters` matches the service's
    filter tokens (`filters_pattern`).

    The approximation errs towards announcing too much, never too little: an extra wake-up
    costs one search request; a missed one costs the post a minute. So a quoted phrase
    requires its words but not side by side; an excluded word (`-word`, `NOT word`) and a
    filter (`from:`, `lang:`, a DID, a URL) are dropped; a word with a wildcard (`banj*`) is
    dropped; `OR` (or `|`) splits the query into alternatives, and for any nesting of
    parentheses every post the query matches holds all the words of at least one of the
    stretches between two ORs, so those stretches are the alternatives (a service without OR,
    such as Mastodon, searches for the word "or": splitting there only wakes more often). What
    the search may still find that the terms miss (stemming, text in image descriptions or link
    cards, a word of a script written without spaces, such as Japanese, which the fold keeps as
    one long word) is found by the poll."""
    alternatives: list[list[str]] = [[]]
    tokens = query_tokens(query)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in ("OR", "|", "||"):
            alternatives.append([])
        elif token in ("(", ")", "AND", "&&", "+"):
            continue
        elif token in ("NOT", "-", "!"):
            i = _skip_operand(tokens, i)
        elif token.startswith("-"):
            continue  # -word, -"phrase": excluded
        elif filters.match(token.lstrip("+")) or "://" in token or "*" in token or "?" in token:
            continue
        else:
            alternatives[-1] += fold_words(token.strip('"+'))
    if any(not words for words in alternatives):
        return []
    return list(dict.fromkeys(" ".join(dict.fromkeys(words)) for words in alternatives))


def _skip_operand(tokens: list[str], i: int) -> int:
    """The index after the operand starting at `i`: one token, or a parenthesised group."""
    if i < len(tokens) and tokens[i] == "(":
        depth = 0
        while i < len(tokens):
            depth += {"(": 1, ")": -1}.get(tokens[i], 0)
            i += 1
            if depth == 0:
                break
        return i
    return i + 1


class Terms:
    """Does a post hold every word of one of the terms? Words are compared folded and whole:
    "banjir" never matches "Banjar" nor "kebanjiran", and matches "BANJIR", "bánjír",
    "banjirrr". Each term is indexed under one of its words (the longest, likely the rarest),
    so a post costs one set intersection whatever the number of terms.

    Most posts of the network lack a letter of every such word (a Japanese post lacks them
    all), and `may_match` says so before the post is folded, which costs more than the rest of
    the filter: folding only lower-cases, drops marks and separators and collapses repeats, so
    every letter of a folded word is a character of the text's compatibility decomposition
    (NFKD), lower-cased."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.index: dict[str, list[frozenset[str]]] = {}
        for term in terms:
            words = frozenset(fold_words(term))
            if words:
                self.index.setdefault(max(words, key=len), []).append(words)
        self.letters = [frozenset(key) for key in self.index]

    def may_match(self, text: str) -> bool:
        """False when no term can match `text` (a key word has a letter the text lacks)."""
        chars = set((text if text.isascii() else unicodedata.normalize("NFKD", text)).lower())
        return any(letters <= chars for letters in self.letters)

    def __bool__(self) -> bool:
        return bool(self.index)

    def match_words(self, words: set[str]) -> bool:
        for key in self.index.keys() & words:
            for term in self.index[key]:
                if term <= words:
                    return True
        return False

    def match(self, text: str) -> bool:
        return self.may_match(text) and self.match_words(set(fold_words(text)))


def primary_language(lang: str) -> str:
    """A language tag's primary subtag, lower-cased ("id-ID" -> "id"); "in" is the old code for
    Indonesian, which some clients still write."""
    primary = lang.split("-", 1)[0].strip().lower()
    return "id" if primary == "in" else primary


def language_matches(wanted: str | None, langs: Iterable[str] | None) -> bool:
    """Is a post in `langs` (its declared languages) possibly in `wanted` (a source's language)?
    Yes when the source names none or the post names none: the search may still return it, and
    an extra wake-up only costs a poll."""
    if not wanted:
        return True
    langs = [lang for lang in (langs or ()) if isinstance(lang, str) and lang.strip()]
    return not langs or any(primary_language(lang) == primary_language(wanted) for lang in langs)
