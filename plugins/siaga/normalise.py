"""Text normalisation shared by geotagging and hazard classification.

Posts are typed fast on phones: mixed case, stray diacritics, zero-width characters pasted from
chat apps, hyphenated reduplication ("Tinga-tinga") and elongated shouting ("banjirrrr"). Both the
place matcher and the hazard matcher must see the same folded text, and both must be able to point
back at the exact characters of the original post (the `span` of the `siaga tag` contract), so
folding keeps a map from every folded character to its original offset.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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


def _trailing_width(original: str, index: int) -> int:
    """Combining marks and collapsed repeats ("banjirrrr") that followed a character belong to
    its span."""
    letter = original[index].lower()
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


def fold(text: str) -> Folded:
    """Lower-case, strip diacritics and invisible characters, turn punctuation into single spaces,
    collapse elongated letters, and keep the offset map."""
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        for c in _fold_char(ch):
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
            and _original_run_length(original, offsets[i]) >= _ELONGATION_MIN
        ):
            keep_chars.append(c)
            keep_offsets.append(offsets[i])
            i += 2
            continue
        keep_chars.append(c)
        keep_offsets.append(offsets[i])
        i += 1
    return "".join(keep_chars), keep_offsets


def _original_run_length(original: str, start: int) -> int:
    ch = original[start].lower()
    n = 0
    for c in original[start:]:
        if c.lower() != ch:
            break
        n += 1
    return n


_TOKEN = re.compile(r"[^ ]+")


def tokens(folded: Folded) -> list[Token]:
    """Whitespace tokens of the folded text, in folded coordinates."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded.text)]
