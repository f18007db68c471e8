"""Copies count once: reposts, quotes, forwards and copy-pastes of one text are one report.

An old flood post re-shared by eight accounts, a warning forwarded from a WhatsApp group ("Info
dari grup WA: ...") or a link quoted with a comment each look like independent witnesses to a
count of authors. Exact copies already share `text_hash`; this module groups the near ones:
- the sources' own repost fields (`posts.duplicate_of`, set by ingest from a boost, retweet or
  quote) put a copy with the post it copies;
- posts linking the same web page (the link quoted, not the text) are one report of it;
- texts that are nearly the same once folded, with forwarding prefixes ("info dari grup wa",
  "copas", "RT"), links and mentions stripped, are one report when posted within `WINDOW` of
  each other: MinHash over character shingles (`datasketch`, a kept library, chooses the
  bands), looked up with locality-sensitive hashing, confirmed by the estimated Jaccard
  similarity (`_Texts` says why its band tables are kept here).

Short texts ("gempa!", "banjir di Sangsit") are left to exact matching: two witnesses writing
the same few words is common and must still count twice when their wording differs at all.

`copy_keys` gives each post the key its copies share (the first post's), which counting uses
where it used `text_hash`: a window's count takes each key once.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32

from siaga.normalise import LINK as _URL, MENTION as _MENTION, quick_fold

# Copies further apart than this are separate reports (a warning re-posted a week later is
# news again, or at least not the same burst).
WINDOW = timedelta(hours=48)
# Estimated Jaccard similarity of character shingles from which two texts are one report.
THRESHOLD = 0.6
SHINGLE = 5
NUM_PERM = 64
# Texts shorter than this (folded, prefixes stripped) are only ever exact copies.
MIN_CHARS = 40

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


# The empty sketch whose permutations (`MinHash.permutations`, public) every post's sketch shares.
_EMPTY = MinHash(num_perm=NUM_PERM, seed=1)
# Shingles whose sketch rows are computed together: bounds the (shingles x NUM_PERM) array at
# about 1.3 MB however large the batch (a detect task's peak memory, issue 14).
SKETCH_CHUNK = 5_000


def shingles(text: str) -> list[bytes]:
    """The character shingles a text's sketch is taken over (the whole text when shorter)."""
    return [text[i:i + SHINGLE].encode("utf-8") for i in range(max(len(text) - SHINGLE + 1, 1))]


def sketches(texts: Sequence[str]) -> list[MinHash]:
    """Each text's MinHash over its `shingles`: the same hash values as
    `MinHash(num_perm=NUM_PERM, seed=1)` updated with them (tests/test_copies.py holds the two
    equal), computed for the whole batch at once.

    Why not `MinHash.bulk` / `update_batch`: they run a handful of numpy operations on each
    text's few dozen shingles and hash every shingle again in each text that has it; per post
    that overhead was most of the grouping's time. Here each distinct shingle is hashed once
    (datasketch's own `sha1_hash32`), and the permutation and the minimum run over the whole
    batch in a few numpy calls. The permutation is datasketch 2.0's "affine32" scheme
    (constraints.txt pins the version): the MurmurHash3 finalizer, then a*h+b mod 2^32."""
    if _EMPTY.scheme != "affine32":  # a datasketch whose default scheme differs: tests fail here first
        raise RuntimeError(f"copies.sketches computes the affine32 scheme, not {_EMPTY.scheme!r}")
    a, b = _EMPTY.permutations
    known: dict[bytes, int] = {}
    out: list[MinHash] = []
    for chunk in _chunks(texts):
        sets = [shingles(t) for t in chunk]
        flat = [known[s] if s in known else known.setdefault(s, sha1_hash32(s)) for group in sets for s in group]
        mixed = _fmix32(np.array(flat, dtype=np.uint32))
        values = np.multiply.outer(mixed, a)  # uint32: the wrap-around is the mod 2^32
        values += b
        starts = np.cumsum([0] + [len(g) for g in sets[:-1]])
        for row in np.minimum.reduceat(values, starts, axis=0):
            out.append(MinHash(hashvalues=row, permutations=_EMPTY.permutations, scheme=_EMPTY.scheme))
    return out


def _chunks(texts: Sequence[str]) -> list[Sequence[str]]:
    """`texts` split where the shingles so far reach SKETCH_CHUNK (a text is never split)."""
    out, start, size = [], 0, 0
    for i, text in enumerate(texts):
        size += max(len(text) - SHINGLE + 1, 1)
        if size >= SKETCH_CHUNK:
            out.append(texts[start:i + 1])
            start, size = i + 1, 0
    if start < len(texts):
        out.append(texts[start:])
    return out


def _fmix32(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (the bijection datasketch mixes each input hash with
    before its affine permutations), over a uint32 array."""
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


@cache
def _bands() -> tuple[int, int]:
    """The LSH index's bands and rows for THRESHOLD and NUM_PERM, chosen by datasketch once per
    process: it integrates the false positive and negative rates over every split of NUM_PERM
    each time an index is made (20 ms of every detect run, for the same two numbers)."""
    chosen = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    return chosen.b, chosen.r


def copy_keys(posts: Sequence[PostText]) -> dict[int, str]:
    """Post id -> the key its copies share: a copy gets its original's key (the earliest post
    of its group), any other post its own `text_hash`. A repost of a post not among `posts`
    (older than the range read) shares a key with the other reposts of it.

    The index holds each distinct comparable text once (`_Texts`): a text forwarded a thousand
    times in a flood is one entry, not a thousand that every later copy compared itself with
    again (quadratic: 5,000 copies of one warning took a detect run 15 s)."""
    ordered = sorted(posts, key=lambda p: (p.created_at, p.id))
    texts = {p.id: comparable(p.text) for p in ordered}
    index = _Texts([t for t in dict.fromkeys(texts.values()) if len(t) >= MIN_CHARS])
    key: dict[int, str] = {}
    by_page: dict[str, PostText] = {}
    for post in ordered:
        original = reposted_or_linked(post, key, by_page)
        text = texts[post.id]
        if text in index.sketch:
            if original is None:
                near = index.earliest_near(text, post.created_at - WINDOW)
                if near is not None:
                    original = key[near.id]
            index.add(text, post)
        key[post.id] = original or post.text_hash
    return key


def reposted_or_linked(post: PostText, key: dict[int, str], by_page: dict[str, PostText]) -> str | None:
    """The key `post` shares as a repost (the source's own field) or as a link to a page an
    earlier post linked within WINDOW; None when it is neither. Records the pages it links in
    `by_page` (the earliest post of each within WINDOW) for the posts after it."""
    original: str | None = None
    if post.duplicate_of is not None:
        original = key.get(post.duplicate_of, f"copy-of:{post.duplicate_of}")
    for page in linked_pages(post.text):
        earlier = by_page.get(page)
        if original is None and earlier is not None and post.created_at - earlier.created_at <= WINDOW:
            original = key[earlier.id]
        if earlier is None or post.created_at - earlier.created_at > WINDOW:
            by_page[page] = post
    return original


class _Texts:
    """The long texts seen so far, each once in a locality-sensitive index, with its posts in
    time order.

    Posts of one comparable text share its sketch, so the index returns them all or none and
    their estimated similarity to a new text is one number: the earliest post near a new one is
    the earliest within the window of each near text, the earliest of those.

    Texts are numbered as they first appear, so a text first posted inside the window has its
    first post as its earliest there, and those first posts come in number order: in each band's
    bucket the first near text in number order is that bucket's answer, and the search stops
    there. A burst of variants (each post its own text, all near each other) so costs about one
    comparison a post. Only texts first posted before the window are all looked at; a detect
    run reads less than a window of posts, so it has none.

    Why the band tables are here and not datasketch's `MinHashLSH.query`: that builds the whole
    set of colliding keys in Python before anything can be compared, one step per earlier
    variant in every query, and 16,000 variants took 300 s (`benchmarks/bench_copies.py`).
    The bands and rows are still datasketch's (`_bands`), and a bucket holds exactly the texts
    whose sketches agree on that band, as its tables do, so the texts compared are the ones
    its query returns."""

    def __init__(self, texts: list[str]) -> None:
        self.sketch = dict(zip(texts, sketches(texts)))
        bands, rows = _bands()
        self.ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
        self.tables: list[dict[bytes, list[int]]] = [{} for _ in self.ranges]  # band -> bucket -> numbers, ascending
        self.names: dict[str, int] = {}  # text -> its number
        self.first: list[datetime] = []  # number -> when the text was first posted
        self.posts: list[tuple[str, list[datetime], list[PostText]]] = []  # number -> text, times, posts

    def earliest_near(self, text: str, since: datetime) -> PostText | None:
        """The earliest post at or after `since` whose text is near `text` (THRESHOLD)."""
        sketch = self.sketch[text]
        near: dict[int, bool] = {}

        def is_near(name: int) -> bool:
            if name not in near:
                near[name] = self.sketch[self.posts[name][0]].jaccard(sketch) >= THRESHOLD
            return near[name]

        young = bisect_left(self.first, since)  # numbers from here were first posted since
        buckets = [b for b in (table.get(key) for table, key in zip(self.tables, self._keys(sketch))) if b]
        best: PostText | None = None
        for name in {n for b in buckets for n in b[:bisect_left(b, young)]}:
            _, times, posts = self.posts[name]
            first = bisect_left(times, since)
            if first < len(posts) and (best is None or (posts[first].created_at, posts[first].id) < (best.created_at, best.id)) \
                    and is_near(name):
                best = posts[first]
        for bucket in buckets:
            for at in range(bisect_left(bucket, young), len(bucket)):  # not a slice: a copy of the bucket
                name = bucket[at]
                found = self.posts[name][2][0]
                if best is not None and (found.created_at, found.id) >= (best.created_at, best.id):
                    break  # every later number was first posted later still
                if is_near(name):
                    best = found
                    break
        return best

    def add(self, text: str, post: PostText) -> None:
        """`post` (after every post added before it) under its text."""
        name = self.names.get(text)
        if name is None:
            name = self.names[text] = len(self.posts)
            for table, key in zip(self.tables, self._keys(self.sketch[text])):
                table.setdefault(key, []).append(name)
            self.posts.append((text, [], []))
            self.first.append(post.created_at)
        _, times, posts = self.posts[name]
        times.append(post.created_at)
        posts.append(post)

    def _keys(self, sketch: MinHash) -> list[bytes]:
        return [sketch.hashvalues[start:end].tobytes() for start, end in self.ranges]
