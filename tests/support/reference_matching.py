"""The hazard matcher's view of a post as it was built before the fast path (`siaga.normalise`
at the start of issue 14): one object per token and two offsets per character, built for every
post. Kept here, unchanged, as the oracle `tests/test_tag_fast_path.py` holds the fast
`normalise.match_text` (lazy offsets, cached word views) equal to."""
from __future__ import annotations

from dataclasses import dataclass

from siaga.normalise import _REDUPLICATED, Folded, Token, squeeze, tokens


@dataclass(frozen=True)
class ReferenceMatchToken:
    text: str
    start: int  # in MatchText coordinates
    end: int
    hashtag: bool  # the original word was written as "#word" (compounds like #banjirbuleleng)


@dataclass(frozen=True)
class ReferenceMatchText:
    """Folded text with abbreviations expanded ("jl" -> "jalan", "tdk" -> "tidak") and doubled
    letters squeezed, so that one keyword list serves every spelling; every character remembers
    the folded slice it came from."""

    folded: Folded
    text: str
    folded_start: tuple[int, ...]  # per character: start of its source in folded coordinates
    folded_end: tuple[int, ...]  # per character: end of its source in folded coordinates
    tokens: tuple[ReferenceMatchToken, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text [start, end) of the slice text[start:end]."""
        if end <= start:
            pos = self.folded_start[start] if start < len(self.folded_start) else len(self.folded.text)
            return self.folded.span(pos, pos)
        return self.folded.span(self.folded_start[start], self.folded_end[end - 1])

    def written(self, start: int, end: int) -> str:
        """The folded text behind the slice text[start:end], before abbreviations were expanded
        and doubles squeezed: what the post actually spelt there."""
        return self.folded.text[self.folded_start[start]:self.folded_end[end - 1]]


def reference_match_text(folded: Folded, abbreviations: dict[str, str] | None = None) -> ReferenceMatchText:
    """The folded text as the hazard matcher sees it: abbreviations expanded and hashtags marked."""
    abbreviations = abbreviations or {}
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    toks: list[ReferenceMatchToken] = []
    for tok in tokens(folded):
        if parts:
            parts.append(" ")
            starts.append(tok.start)
            ends.append(tok.start)
        word = squeeze(abbreviations.get(tok.text, tok.text))
        redup = _REDUPLICATED.fullmatch(word)
        if redup:  # "rumah2", "surut2": the chat spelling of "rumah-rumah"
            word = f"{redup.group(1)} {redup.group(1)}"
        if word == tok.text:
            begin = len(starts)
            starts.extend(range(tok.start, tok.end))
            ends.extend(range(tok.start + 1, tok.end + 1))
            parts.append(word)
            toks.append(ReferenceMatchToken(word, begin, begin + len(word), _is_hashtag(folded, tok)))
            continue
        # Rewritten words ("lalin" -> "lalu lintas") become one match token per word, each
        # pointing back at the whole original token.
        for k, piece in enumerate(word.split(" ")):
            if k:
                parts.append(" ")
                starts.append(tok.start)
                ends.append(tok.end)
            begin = len(starts)
            starts.extend([tok.start] * len(piece))
            ends.extend([tok.end] * len(piece))
            parts.append(piece)
            toks.append(ReferenceMatchToken(piece, begin, begin + len(piece), _is_hashtag(folded, tok)))
    return ReferenceMatchText(folded, "".join(parts), tuple(starts), tuple(ends), tuple(toks))


def _is_hashtag(folded: Folded, tok: Token) -> bool:
    first = folded.offsets[tok.start]
    return first > 0 and folded.original[first - 1] in "#\uff03"
