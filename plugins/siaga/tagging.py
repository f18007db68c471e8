"""Tag posts with their hazards and places: the single code path behind `siaga tag` and the
pipeline's tag stage (`tag_pending`), so what an operator sees on the command line is what the
DAG stores."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from siaga.collector import TAGGING_GEN0, fewer_collections
from siaga.geotag import Geotagger, GeotagResult, Place, default_geotagger
from siaga.hazards import HazardMatch, HazardSet
from siaga.normalise import quick_fold

if TYPE_CHECKING:  # the database is imported by the pipeline's tag stage, not by `siaga tag`
    from sqlalchemy.orm import Session

# Posts tagged per transaction: a crash loses at most one batch's work (under half a second of
# tagging), never a post; large enough that the batch's few statements and its commit (a WAL
# flush) cost little per post.
TAG_BATCH = 5000


@dataclass(frozen=True, slots=True, init=False)
class TagResult:
    hazards: list[HazardMatch]
    geotag: GeotagResult

    def __init__(self, hazards: list[HazardMatch], geotag: GeotagResult) -> None:
        # Set through the slots, not the frozen class's `object.__setattr__` per field: one is
        # made per post (`geotag.Place` says more).
        _set_hazards(self, hazards)
        _set_geotag(self, geotag)

    def to_contract(self, post_id: Any) -> dict[str, Any]:
        """The JSON object of the `siaga tag` contract."""
        return {
            "id": post_id,
            "hazards": [m.hazard for m in self.hazards],
            "places": [p.to_dict() for p in self.geotag.places],
            "in_region": self.geotag.in_region,
        }

    def to_json(self, post_id: Any) -> str:
        """`json.dumps(self.to_contract(post_id), ensure_ascii=False)`, the line `siaga tag`
        writes, without building the dict: most posts name no place, and their line is mostly
        constant (tests/test_tag_fast_path.py holds the two equal). An id's line separators
        are escaped (`_id_json`)."""
        if self.hazards:
            names = tuple([m.hazard for m in self.hazards])
            hazards = _HAZARD_LISTS.get(names)
            if hazards is None:
                hazards = _HAZARD_LISTS[names] = _encode(list(names))
        else:  # most posts
            hazards = "[]"
        places = self.geotag.places
        return (
            f'{{"id": {str(post_id) if type(post_id) is int else _id_json(post_id)}, "hazards": {hazards}, '
            f'"places": {"[" + ", ".join(map(_place_json, places)) + "]" if places else "[]"}, '
            f'"in_region": {"true" if self.geotag.in_region else "false"}}}'
        )


def _contract_encoder() -> Callable[[Any], str]:
    """`json.JSONEncoder(ensure_ascii=False).encode`, its C encoder made once: `encode` makes a
    new one on every call, which cost as much as encoding a post's places. Without circular
    checking: the contract's values (numbers, strings, lists and dicts of them made per post)
    are never circular, and the output is the same either way."""
    make = json.encoder.c_make_encoder
    if make is None:  # a Python without the C accelerator
        return json.JSONEncoder(ensure_ascii=False).encode
    encoder = make(None, json.JSONEncoder().default, json.encoder.encode_basestring,
                   None, ": ", ", ", False, False, True)
    join = "".join
    return lambda value: join(encoder(value, 0))


_encode = _contract_encoder()
# Characters JSON leaves raw in a string that readers other than JSON Lines' own ("\n" alone)
# take for a line break: Python's str.splitlines and line-reading JavaScript before ES2019. An
# id echoed with one split its post's answer in two for such a reader; escaped, the line and
# the id it decodes to are the same.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _id_json(post_id: Any) -> str:
    """A post's id as JSON, on one line for any reader (`_LINE_BREAKS`); an ASCII one (nearly
    all) is not looked at again."""
    text = _encode(post_id)
    return text if text.isascii() else text.translate(_LINE_BREAKS)
# A place's JSON without its span, in the two pieces around it, by what they are made of. The
# places a stream names are the gazetteer's few thousand, each with a few reasons: encoding one
# again (three floats written out, ten keys) cost a post that names a place more than tagging it.
_PLACE_PIECES: dict[tuple[Any, ...], tuple[str, str]] = {}
_PLACE_PIECES_MAX = 50_000


def _place_json(place: Place) -> str:
    """`_encode(place.to_dict())`, its pieces but the span remembered (`_PLACE_PIECES`)."""
    span = place.span
    if span is None:
        written = "null"
    elif type(span) is tuple and len(span) == 2 and type(span[0]) is int and type(span[1]) is int:
        written = f"[{span[0]}, {span[1]}]"
    else:
        return _encode(place.to_dict())
    lon, lat, confidence = place.lon, place.lat, place.confidence
    # Equal numbers must be written alike to share pieces: 1 == 1.0 == True and 0.0 == -0.0 are
    # not, so only places whose numbers are non-zero floats (or None) are looked up or remembered
    # (checked before the look-up: a place with confidence 1 would find the pieces of 1.0).
    if not (_written_alike(lon) and _written_alike(lat) and _written_alike(confidence)):
        return _encode(place.to_dict())
    key = (place.kind, place.name, place.village, place.district, place.code, lon, lat, confidence, place.reason)
    pieces = _PLACE_PIECES.get(key)
    if pieces is None:
        fields = place.to_dict()
        del fields["span"]
        reason = fields.pop("reason")
        pieces = (_encode(fields)[:-1] + ', "span": ', ', "reason": ' + _encode(reason) + "}")
        if len(_PLACE_PIECES) >= _PLACE_PIECES_MAX:
            _PLACE_PIECES.clear()
        _PLACE_PIECES[key] = pieces
    return pieces[0] + written + pieces[1]


def _written_alike(number: Any) -> bool:
    """Whether every number equal to this one is written as it is (None, or a non-zero float)."""
    return number is None or (type(number) is float and number != 0)


_set_hazards, _set_geotag = TagResult.hazards.__set__, TagResult.geotag.__set__  # type: ignore[attr-defined]
_HAZARD_LISTS: dict[tuple[str, ...], str] = {}  # hazard names -> their JSON list (a few dozen combinations)


def _stage(step: Callable[..., Any], failed: dict[int, Exception], *columns: Sequence[Any]) -> list[Any]:
    """`step` over the batch's columns (one call per post), mapped in C while no post has failed:
    a Python loop with a `try` per post cost a few percent of tagging. When a post makes it
    raise (or one did in an earlier stage) the batch is stepped one post at a time, each error
    recorded in `failed` by post and that post skipped by later stages (its entry None)."""
    if not failed:
        try:
            return list(map(step, *columns))
        except Exception:  # noqa: BLE001 -- found again below, with the post it belongs to
            pass
    out: list[Any] = [None] * len(columns[0])
    for i, args in enumerate(zip(*columns)):
        if i not in failed:
            try:
                out[i] = step(*args)
            except Exception as exc:  # noqa: BLE001 -- the post's own result
                failed[i] = exc
    return out


# Distinct posts (text and coordinates) whose results `Tagger.tag_many` remembers: two
# generations of this many, the older dropped when the newer fills. Real streams repeat texts in
# bursts (retweets, bots, news accounts): a fifth of the 5,000 tweets of the development set
# repeat an earlier one, four in five of those within 1,000 posts of it. The window is kept
# well short of what the tag-speed check's input cycles through (the same 3,884 distinct texts
# again every 5,000 lines), so its repeats one cycle apart are tagged again, as a stream's
# would be.
RECENT_POSTS = 1024


class _Recent:
    """What `tag_many` made of recent distinct posts: (hazards, places, in region) by post,
    kept as tuples so nothing a caller does to the results it got changes what a later
    repeat gets."""

    __slots__ = ("new", "old")

    def __init__(self) -> None:
        self.new: dict[Any, tuple[tuple[HazardMatch, ...], tuple[Place, ...], bool]] = {}
        self.old: dict[Any, tuple[tuple[HazardMatch, ...], tuple[Place, ...], bool]] = {}

    def recall(self, posts: list[Any]) -> list[TagResult | None]:
        """Each post's remembered result, made afresh, or None. Looked up a generation at a
        time by C-level maps: most posts are new, and a method call per post cost more than
        the look-ups."""
        stored = list(map(self.new.get, posts))
        if self.old:
            stored = [s if s is not None else o for s, o in zip(stored, map(self.old.get, posts))]
        return [None if s is None else TagResult(list(s[0]), GeotagResult(list(s[1]), s[2])) for s in stored]

    def keep(self, post: Any, result: TagResult) -> None:
        if len(self.new) >= RECENT_POSTS:
            self.new, self.old = {}, self.new
        geotag = result.geotag
        self.new[post] = (tuple(result.hazards), tuple(geotag.places), geotag.in_region)


class Tagger:
    def __init__(self, hazards: HazardSet, geotagger: Geotagger | None = None):
        self.hazards = hazards
        self.geotagger = geotagger or default_geotagger()
        self._recent = _Recent()

    def tag(self, text: str, lat: float | None = None, lon: float | None = None) -> TagResult:
        """Hazards and places of one post, its text folded once for both."""
        folded = quick_fold(text)
        return TagResult(hazards=self.hazards.classify(folded), geotag=self.geotagger.tag(folded, lat=lat, lon=lon))

    def tag_many(self, posts: Sequence[tuple[str, float | None, float | None]]) -> list[TagResult | Exception]:
        """`tag` of each (text, lat, lon), stage by stage over the whole batch (every post folded,
        then every post's hazards, then every post's places) rather than post by post: each
        matcher's automata stay in the CPU cache for a run of posts instead of evicting each
        other on every post, about a tenth less time with the national gazetteer (benchmarks/
        README.md). What a post makes a stage raise is that post's result, so one bad post
        costs only itself, as with `tag`; the results are those of `tag`, in order. The
        batch's results are young objects the garbage collector would walk again and again
        while they pile up (`collector`).

        A post repeated in the batch is tagged once, and one tagged in a recent batch not again
        (`RECENT_POSTS`): its result is the same, a text and coordinates being all that `tag`
        reads. Each repeat gets results of its own (their lists new; the matches and places in
        them, frozen, shared)."""
        try:
            distinct = dict.fromkeys(posts)
        except TypeError:  # a post that cannot be a key (a list): every post tagged as it comes
            return self._tag_stages(posts)
        firsts = list(posts) if len(distinct) == len(posts) else list(distinct)
        recent = self._recent
        known = recent.recall(firsts)
        todo = [i for i, got in enumerate(known) if got is None]
        if todo:
            for i, result in zip(todo, self._tag_stages([firsts[i] for i in todo])):
                known[i] = result
                if type(result) is TagResult:
                    recent.keep(firsts[i], result)
        if len(distinct) == len(posts):
            return known
        where = dict(zip(distinct, range(len(distinct))))
        index = list(map(where.__getitem__, posts))
        seen = [False] * len(known)
        results: list[Any] = []
        for k in index:
            if seen[k]:  # a repeat in the batch: results of its own, as one from an earlier batch
                result = known[k]
                results.append(TagResult(list(result.hazards), GeotagResult(list(result.geotag.places), result.geotag.in_region))
                               if type(result) is TagResult else result)
            else:
                seen[k] = True
                results.append(known[k])
        return results

    def _tag_stages(self, posts: Sequence[tuple[str, float | None, float | None]]) -> list[TagResult | Exception]:
        """`tag_many` of posts not remembered: the stages over the whole batch."""
        failed: dict[int, Exception] = {}
        with fewer_collections(TAGGING_GEN0):
            folded = _stage(quick_fold, failed, [text for text, _, _ in posts])
            hazards = _stage(self.hazards.classify, failed, folded)
            places = _stage(self.geotagger.tag, failed, folded, [lat for _, lat, _ in posts], [lon for _, _, lon in posts])
            results: list[Any] = list(map(TagResult, hazards, places))
        for i, exc in failed.items():
            results[i] = exc
        return results

    def tag_reference(self, text: str, lat: float | None = None, lon: float | None = None) -> TagResult:
        """`tag` the straightforward way (each matcher folds the text itself, the exact fold for
        hazards, every post through the whole hazard matcher): what the fast path is checked
        against (tests/test_tag_fast_path.py) and measured beside (benchmarks/bench_tag.py)."""
        return TagResult(hazards=self.hazards.classify(text, fast=False), geotag=self.geotagger.tag(text, lat=lat, lon=lon))


def tag_pending(tagger: Tagger, now: datetime, db_url: str | None = None, partition: tuple[int, int] | None = None) -> int:
    """Geotag and classify posts created by `now` and not yet tagged, storing their places and
    hazard matches (stamped with the lists' fingerprint), in batches, each batch its own
    transaction. Returns how many posts were tagged (read and tagged: one that an overlapping
    run stored first is counted here, though `store_tags` does not store it again).

    The posts to tag are those in the queue `posts_to_tag` (filled by a trigger on every insert
    into `posts`), read a slice of the queue at a time in id order (`_read_slice`). Each post is
    tagged once: `store_tags` takes the batch off the queue and stores its places, matches and
    `post_tags` rows in bulk, so a batch costs a handful of round trips however many posts it
    holds (the ORM's unit of work issued one UPDATE per post).

    `partition` (index, count) takes only the posts whose id % count == index: partitions never
    share a post, so `count` processes (mapped tasks, `pipeline.tag_posts`) can tag a large
    backlog side by side, each idempotent, before the detect run, which then finds nothing left
    to tag. Tagging is the CPU-heavy stage; counting and incidents cost per spike, not per post.

    On PostgreSQL each batch is written while the next is tagged (`_tag_while_writing`).
    """
    from siaga.store import engine, session_scope

    fingerprint = tagger.hazards.fingerprint()

    def read(after: int | None) -> _Slice:
        with session_scope(db_url) as session:
            return _read_slice(session, now, partition, after)

    def tag(batch: list[Any]) -> list[tuple[int, TagResult]]:
        # stage by stage over the batch (`Tagger.tag_many`); a post the tagger fails on fails
        # its batch, as `tag` raising did, so it is retried, never marked tagged. Rows are
        # unpacked, not read by attribute: the look-ups on SQLAlchemy's rows cost a fifth of
        # tagging the batch.
        results = tagger.tag_many([(text, lat, lon) for _, text, lat, lon in batch])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return list(zip([post_id for post_id, _, _, _ in batch], results))

    def write(tagged: list[tuple[int, TagResult]]) -> None:
        with session_scope(db_url) as session:
            store_tags(session, tagged, fingerprint)

    # A batch's young objects (its rows, its results, the rows written) live until it is
    # written: with the threshold raised only inside `tag_many`, the passes while the next slice
    # was read and this one written walked them again and again (`collector`; 20,000 posts: about
    # 190 young passes and one or two full ones, a quarter of a second of CPU, now one pass).
    with fewer_collections(TAGGING_GEN0):
        if engine(db_url).dialect.name == "postgresql":
            return _tag_while_writing(read, tag, write)
        total, after = 0, None
        while True:  # one connection at a time: read, tag, write
            batch = read(after)
            write(tag(batch.posts))
            total += len(batch.posts)
            if not batch.full:
                return total
            after = batch.last


@dataclass(frozen=True)
class _Slice:
    """One batch of `tag_pending`: the posts to tag of a slice of the queue, the last queued id
    the slice read (the next slice starts after it), and whether the slice was full (more may
    be queued)."""

    posts: list[Any]
    last: int | None
    full: bool


def _read_slice(session: Session, now: datetime, partition: tuple[int, int] | None, after: int | None) -> _Slice:
    """The next TAG_BATCH queued ids after `after` (of the partition), each with its post (text
    and coordinates) if that was created by `now`, by id: one statement, an index range of the
    queue and one primary-key lookup in `posts` per queued id, whatever the size of `posts`. A
    post created after `now` (a source's clock ahead) stays queued for a later run.

    Not a plain join on PostgreSQL: the planner may join the whole table (a merge or hash join
    over every post stored, once per batch), and did with the ids as an array in a second
    statement too, right after a bulk load left `posts` without statistics (a seq scan of every
    post). The lookup is a LATERAL subquery with LIMIT 1, which the planner cannot flatten into
    a join, so it is an index lookup per id by construction. SQLite never puts a LEFT JOIN's
    right table outside, so a plain one is the same lookups there. Read as plain tuples
    (`store.stream_rows`) rather than the ORM's rows: reading bench_pipeline's 20,000 posts
    took half the time (0.11 - 0.13 s against 0.21 - 0.37 s)."""
    from sqlalchemy import select, true

    from siaga.store import Post, PostToTag, stream_rows

    queued = PostToTag.post_id
    mine = [] if partition is None else [(queued % partition[1]) == partition[0]]
    ids = select(queued).where(*mine, *([] if after is None else [queued > after])).order_by(queued).limit(TAG_BATCH).subquery()
    if session.get_bind().dialect.name == "postgresql":
        post: Any = select(Post.id, Post.text, Post.lat, Post.lon).where(
            Post.id == ids.c.post_id, Post.created_at <= now).limit(1).lateral()
        joined = ids.outerjoin(post, true())
    else:
        post = Post.__table__
        joined = ids.outerjoin(post, (post.c.id == ids.c.post_id) & (post.c.created_at <= now))
    stmt = select(ids.c.post_id, post.c.id, post.c.text, post.c.lat, post.c.lon).select_from(joined).order_by(ids.c.post_id)
    rows = [row for chunk in stream_rows(session, stmt, TAG_BATCH) for row in chunk]
    return _Slice([tuple(row[1:]) for row in rows if row[1] is not None], rows[-1][0] if rows else after, len(rows) == TAG_BATCH)


def _tag_while_writing(read: Callable[[int | None], _Slice], tag: Callable[[list[Any]], list[tuple[int, TagResult]]],
                       write: Callable[[list[tuple[int, TagResult]]], None]) -> int:
    """`tag_pending`'s loop with each batch written (its own transaction, on its own connection)
    by one writer thread while the next batch is tagged: the database does its share of a
    batch (the queue delete, the COPYs, the commit's WAL flush) on its own core while this
    process tags, instead of the two taking turns. Still one process; the tagger runs in this
    thread alone. The next batch is read past the last queued id read (the batch being written
    is still queued in the database), so batches never share a post; a write that fails fails
    the run after its batch rolled back, and no later batch is written, as when batches were
    written in turn. psycopg2 releases the GIL while PostgreSQL works.

    The next slice is read here, not ahead by a reader thread while this one tags: a slice is
    one cheap statement (`_read_slice`), and a third thread taking the GIL from the tagger made
    the stage slower, not faster (benchmarks/README.md, "the tag stage's own costs")."""
    from concurrent.futures import Future, ThreadPoolExecutor

    total, after = 0, None
    writing: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siaga-tag-writer") as writer:
        while True:
            batch = read(after)
            tagged = tag(batch.posts)
            if writing is not None:
                writing.result()  # the previous batch is committed (or its error raised) first
            writing = writer.submit(write, tagged)
            total += len(batch.posts)
            if not batch.full:
                writing.result()
                return total
            after = batch.last


def store_tags(session: Session, tagged: list[tuple[int, TagResult]], fingerprint: str) -> None:
    """Take these posts off the queue of posts to tag and store their places, hazard matches
    and `post_tags` rows (when, in region or not), one bulk insert per table (COPY on
    PostgreSQL: `store.bulk_insert`).

    The queue rows are deleted first, with RETURNING: only the posts this transaction took off
    the queue are stored, so a post another run tagged meanwhile (two overlapping detect runs;
    a partition re-run by hand) or retention deleted is not stored twice or for nothing; the
    delete's row locks make the other run wait for this one's commit, then find nothing. The
    ids go as one array parameter on PostgreSQL (`store.in_slices`): an IN list of thousands
    of parameters cost more to compile and bind than to run."""
    from sqlalchemy import delete

    from siaga.store import Geotag, HazardMatchRow, PostTag, PostToTag, bulk_insert, in_slices, utcnow

    if not tagged:
        return
    queue = PostToTag.__table__
    taken: set[int] = set()
    for among in in_slices(session, queue.c.post_id, [post_id for post_id, _ in tagged]):
        taken.update(session.execute(delete(queue).where(among).returning(queue.c.post_id)).scalars())
    if len(taken) < len(tagged):
        tagged = [(post_id, result) for post_id, result in tagged if post_id in taken]
    places = [_geotag_row(post_id, place) for post_id, result in tagged for place in result.geotag.places]
    matches = [
        {
            "post_id": post_id,
            "hazard": match.hazard,
            "terms": list(match.terms),
            "severity_cues": list(match.severity_cues),
            "via_road": match.via_road,
            "lists_fingerprint": fingerprint,
        }
        for post_id, result in tagged
        for match in result.hazards
    ]
    at = utcnow()
    bulk_insert(session, Geotag.__table__, places)
    bulk_insert(session, HazardMatchRow.__table__, matches)
    bulk_insert(session, PostTag.__table__,
                [{"post_id": post_id, "tagged_at": at, "in_region": bool(result.geotag.in_region)} for post_id, result in tagged])


def _geotag_row(post_id: int, place: Place) -> dict[str, Any]:
    return {
        "post_id": post_id,
        "kind": place.kind,
        "name": place.name,
        "village": place.village,
        "district": place.district,
        "code": place.code,
        "lon": place.lon,
        "lat": place.lat,
        "confidence": place.confidence,
        "span_start": place.span[0] if place.span else None,
        "span_end": place.span[1] if place.span else None,
        "reason": place.reason,
        "low_confidence": place.low_confidence,
        "in_region": place.in_region,
    }
