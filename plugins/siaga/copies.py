"""Copies count once: reposts, quotes, forwards and copy-pastes of one text are one report.

An old flood post re-shared by eight accounts, a warning forwarded from a WhatsApp group ("Info
dari grup WA: ...") or a link quoted with a comment each look like independent witnesses to a
count of authors. Exact copies already share `text_hash`; this module groups the near ones:
- the sources' own repost fields (`posts.duplicate_of`, set by ingest from a boost, retweet or
  quote) put a copy with the post it copies;
- posts linking the same web page (the link quoted, not the text) are one report of it;
- texts that are nearly the same once folded, with forwarding prefixes ("info dari grup wa",
  "copas", "RT"), links and mentions stripped, are one report when posted within `WINDOW` of
  each other: MinHash over character shingles, looked up with locality-sensitive hashing
  (`datasketch`, a kept library, rather than a hand-rolled index), confirmed by the estimated
  Jaccard similarity.

Short texts ("gempa!", "banjir di Sangsit") are left to exact matching: two witnesses writing
the same few words is common and must still count twice when their wording differs at all.

`copy_keys` gives each post the key its copies share (the first post's), which counting uses
where it used `text_hash`: a window's count takes each key once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from datasketch import MinHash, MinHashLSH

from siaga.normalise import quick_fold

# Copies further apart than this are separate reports (a warning re-posted a week later is
# news again, or at least not the same burst).
WINDOW = timedelta(hours=48)
# Estimated Jaccard similarity of character shingles from which two texts are one report.
THRESHOLD = 0.6
SHINGLE = 5
NUM_PERM = 64
# Texts shorter than this (folded, prefixes stripped) are only ever exact copies.
MIN_CHARS = 40

_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+:?")
# What people put before a forwarded text; removed before comparing (folded, lower case).
_FORWARD = re.compile(
    r"^(?:(?:rt|fwd|fw|repost|reshare|copas|copy paste|cc|via|info|infonya|kabar|berita|pesan|"
    r"dari|grup|group|grub|wa|whatsapp|sebelah|teman|tetangga|terusan|diteruskan|forward|forwarded|"
    r"share|dishare|bagikan|penting|update|breaking|news|viral|ini|nih|dr|gc)\s+)+"
)


@dataclass(frozen=True)
class PostText:
    """What grouping needs of a post."""

    id: int
    created_at: datetime
    text: str
    text_hash: str
    duplicate_of: int | None = None


def comparable(text: str) -> str:
    """The text as copies are compared: links and mentions out, folded, forwarding prefix out."""
    stripped = _MENTION.sub(" ", _URL.sub(" ", text))
    # `quick_fold`'s text is `fold`'s (tests/test_gazetteer.py); only the text is compared
    return _FORWARD.sub("", quick_fold(stripped).text).strip()


def linked_pages(text: str) -> list[str]:
    """Web pages a post links, lower-cased without scheme, query or trailing slash."""
    out = []
    for url in _URL.findall(text):
        bare = re.sub(r"^https?://(www\.)?", "", url.lower()).split("?")[0].split("#")[0].rstrip("/.,)")
        if bare:
            out.append(bare)
    return out


# An empty sketch whose permutations every post's sketch copies (`MinHash.copy`, as datasketch's
# own `MinHash.bulk` does): generating them from the seed per post cost a third of grouping.
_EMPTY = MinHash(num_perm=NUM_PERM, seed=1)


def _minhash(text: str) -> MinHash:
    m = _EMPTY.copy()
    m.update_batch([text[i:i + SHINGLE].encode("utf-8") for i in range(max(len(text) - SHINGLE + 1, 1))])
    return m


def copy_keys(posts: Sequence[PostText]) -> dict[int, str]:
    """Post id -> the key its copies share: a copy gets its original's key (the earliest post
    of its group), any other post its own `text_hash`. A repost of a post not among `posts`
    (older than the range read) shares a key with the other reposts of it."""
    ordered = sorted(posts, key=lambda p: (p.created_at, p.id))
    key: dict[int, str] = {}
    seen: dict[int, PostText] = {}
    by_page: dict[str, PostText] = {}
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    hashes: dict[int, MinHash] = {}
    for post in ordered:
        original: str | None = None
        if post.duplicate_of is not None:
            original = key.get(post.duplicate_of, f"copy-of:{post.duplicate_of}")
        for page in linked_pages(post.text):
            earlier = by_page.get(page)
            if original is None and earlier is not None and post.created_at - earlier.created_at <= WINDOW:
                original = key[earlier.id]
            if earlier is None or post.created_at - earlier.created_at > WINDOW:
                by_page[page] = post
        text = comparable(post.text)
        if len(text) >= MIN_CHARS:
            mh = _minhash(text)
            if original is None:
                near = [seen[int(c)] for c in lsh.query(mh)]
                near = [c for c in near if post.created_at - c.created_at <= WINDOW and hashes[c.id].jaccard(mh) >= THRESHOLD]
                if near:
                    original = key[min(near, key=lambda c: (c.created_at, c.id)).id]
            hashes[post.id] = mh
            lsh.insert(str(post.id), mh)
        key[post.id] = original or post.text_hash
        seen[post.id] = post
    return key
