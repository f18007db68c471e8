"""Hostile records for every source, placed between good ones, and the harness that feeds them
through the real connectors (the HTTP ones driven by their real clients against
`support.fakeapis` on 127.0.0.1), ingest and the database, then says what became of each.

Every record is made good or bad on purpose, with one fault of a known kind, so its fate is
checkable: each good record stored as a post, each bad one quarantined with a location naming
its line or item and a reason, no poll crashed, nothing bad stored, and a second poll adds
nothing. A unique marker in every record (`mk_<run>_<n>_`) finds it again: in a good post's
text, in a bad record's quarantined raw text.

The strategies are hypothesis's: `tests/test_sources_fuzz.py` runs them as properties on SQLite
and PostgreSQL, `benchmarks/fuzz_sources.py` runs them at volume and counts.
"""
from __future__ import annotations

import html
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Callable
from xml.sax.saxutils import escape as xml_escape

import sqlalchemy as sa
from hypothesis import strategies as st

from support.fakeapis import FAST, T0, X_TOKEN, FakeApis, FakeData, Raw, dumps
from siaga import ingest, store
from siaga.sources.bluesky import BlueskySource
from siaga.sources.inbox import InboxSource
from siaga.sources.mastodon import MastodonSource, Stream
from siaga.sources.replay import ReplaySource
from siaga.sources.rss import RssSource
from siaga.sources.x import XSource

NOW = T0 + timedelta(days=30)  # when every poll runs; good posts are dated before it
KINDS = ("replay", "inbox-jsonl", "inbox-json", "rss", "atom", "mastodon", "bluesky", "x")
X_CONN = "x_fuzz"
X_TOKEN_ENV = {"SIAGA_X_FUZZ_TOKEN": X_TOKEN}
_RUNS = itertools.count(1)


def j(value: Any) -> bytes:
    """JSON as UTF-8 bytes; U+2028 and the like written raw, as JSON allows."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


# --- what records are made of -------------------------------------------------------------------

# Characters that are valid but tricky: line and paragraph separators, NEL, bidi overrides and
# isolates, zero-width, BOM, tabs, C0/C1 controls (escaped in JSON), emoji, combining marks.
TRICKY = ["\u2028", "\u2029", "\u0085", "\u202e", "\u2066", "\u2069", "\u200b", "\u200d", "\ufeff", "\t", "\x01", "\x1b",
          "\x7f", "\x9f", "🌊", "👨‍👩‍👧", "e\u0301", "ẞ", "ı", "\r", "\n", '"', "\\", "</p>", "&amp;", "\u00a0", "\U0010fffd"]
_VALID = st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00")
TAIL = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(_VALID, max_size=6)), max_size=12).map("".join)
# What XML 1.0 allows (no C0 but tab/newline/CR, no U+FFFE/FFFF): feeds can only carry these.
_XML_OK = st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="".join(
    chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF)))
XML_TAIL = st.lists(st.one_of(st.sampled_from(["\u2028", "\u2029", "\u0085", "\u202e", "🌊", "&", "<b>", "]]>", "\u00a0"]),
                              st.text(_XML_OK, max_size=6)), max_size=10).map("".join)
NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30).filter(str.strip)
OFFSET_MINUTES = st.integers(-12 * 4, 14 * 4).map(lambda q: q * 15)
AGE = st.integers(60, 29 * 24 * 3600)  # seconds before NOW

BAD_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z", "0026-01-15T08:00:00+08:00",
             "kemarin sore", "2026-13-45T99:00:00Z", "2026-01-15T08:00:00+24:00", "2026-01-15T08:00:00" + "0" * 70, "\u0000"]
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82", b"\x80"]
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"]
BROKEN_ESCAPES = [b"\\ud800", b"\\udfff", b"\\udc80", b"\\ud83d"]  # lone surrogates, as JSON escapes
WRONG_TYPES = [b"true", b"1.5", b"{}", b"[]", b"[1, 2]", b'{"a": 1}', b"false"]


@dataclass(frozen=True)
class Spec:
    """One record to make: good or bad, what fault (the kind), and the values drawn for it."""

    good: bool
    kind: str
    v: dict[str, Any] = field(default_factory=dict)


def _pick(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def _when(age: int, minutes: int) -> datetime:
    return (NOW - timedelta(seconds=age)).astimezone(timezone(timedelta(minutes=minutes)))


@st.composite
def _good_values(draw: Any) -> dict[str, Any]:
    return {
        "tail": draw(TAIL), "xml_tail": draw(XML_TAIL), "age": draw(AGE), "offset": draw(OFFSET_MINUTES),
        "style": draw(_pick(["offset", "Z", "fraction", "space", "basic", "minutes"])),
        "id_tail": draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)),
        "author": draw(st.none() | NAME), "lat": draw(st.none() | st.floats(-90, 90) | st.sampled_from([-90, 90, 0])),
        "lon": draw(st.none() | st.floats(-180, 180) | st.sampled_from([-180, 180])),
        "int_id": draw(st.booleans()), "crlf": draw(st.booleans()), "long": draw(st.sampled_from([False] * 6 + ["text", "id"])),
    }


def _time_text(v: dict[str, Any], naive_tz: timezone | None = None) -> str:
    when = _when(v["age"], v["offset"])
    if naive_tz is not None:
        return when.astimezone(naive_tz).replace(tzinfo=None).isoformat(timespec="seconds")
    style = v["style"]
    if style == "Z":
        return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    if style == "fraction":
        return when.isoformat(timespec="microseconds")
    if style == "space":
        return when.isoformat(sep=" ", timespec="seconds")
    if style == "basic":
        return when.strftime("%Y%m%dT%H%M%S%z")
    if style == "minutes":
        return when.isoformat(timespec="minutes")
    return when.isoformat(timespec="seconds")


# Faults every JSON-record source must quarantine (the record's part that is wrong in brackets).
JSON_FAULTS = ["deep", "huge_int", "non_finite", "lone_surrogate", "nul", "control_id", "long_id", "long_author", "bad_time",
               "wrong_type", "missing", "blank_text", "not_object"]
LINE_FAULTS = ["broken_json", "invalid_utf8_string", "invalid_utf8_line"]  # only a line can hold these


@st.composite
def _bad_values(draw: Any, kind: str) -> dict[str, Any]:
    v = draw(_good_values())
    v.update(
        depth=draw(st.integers(65, 5000) | st.just(60_000)), digits=draw(st.integers(4301, 6000)),
        non_finite=draw(_pick(NON_FINITE)), escape=draw(_pick(BROKEN_ESCAPES)), bad_byte=draw(_pick(INVALID_UTF8)),
        field=draw(_pick(["text", "id", "author", "extra", "lat", "created_at"])), wrong=draw(_pick(WRONG_TYPES)),
        bad_time=draw(_pick(BAD_TIMES)), cut=draw(st.floats(0.05, 0.95)), missing=draw(_pick(["id", "created_at", "text"])),
        not_object=draw(_pick(["list", "string", "number"])), length=draw(st.integers(1, 400)),
    )
    return v


def specs(kinds: list[str], extra_good: list[str] = ()) -> st.SearchStrategy[list[Spec]]:
    """A batch of records: good ones (plain, or one of `extra_good`) with bad ones of `kinds`
    between them."""
    good = st.builds(lambda k, v: Spec(True, k, v), _pick(["plain", *extra_good]), _good_values())
    bad = _pick(kinds).flatmap(lambda k: _bad_values(k).map(lambda v: Spec(False, k, v)))
    return st.lists(st.one_of(good, bad), min_size=1, max_size=30)


# --- JSON records (replay, inbox) ----------------------------------------------------------------


def _fields(spec: Spec, marker: str, naive_tz: timezone | None) -> dict[str, bytes]:
    v = spec.v
    ident: Any = (int(re.sub(r"\D", "", marker)) + 10**12) if v["int_id"] else f"{marker}{v['id_tail']}".strip()
    text = f"{marker} {v['tail']}"
    if v["long"] == "text":
        text = (text + " " + "x" * 20_000)[:20_000]
    if v["long"] == "id" and not v["int_id"]:
        ident = (ident + "i" * 256)[:256]
    fields = {"id": j(ident), "created_at": j(_time_text(v, naive_tz)), "text": j(text)}
    for key in ("author", "lat", "lon"):
        if v[key] is not None:
            fields[key] = j(v[key])
    fields["url"] = j(f"https://berita.example/{marker}")
    return fields


def _object(fields: dict[str, bytes]) -> bytes:
    return b"{" + b", ".join(j(k) + b": " + value for k, value in fields.items()) + b"}"


def _string_with(prefix: str, inserted: bytes) -> bytes:
    return j(prefix)[:-1] + inserted + b'"'


def json_record(spec: Spec, marker: str, naive_tz: timezone | None = None, future_is_bad: bool = True) -> bytes:
    """A record (one JSON object, or a line) for `spec`, the marker in its id or text."""
    fields = _fields(spec, marker, naive_tz)
    v = spec.v
    if spec.good:
        return _object(fields)
    kind, where = spec.kind, v["field"]
    if where in ("id",) and kind in ("deep", "huge_int", "non_finite", "wrong_type"):
        fields["text"] = j(f"{marker} {v['tail']}")
    if kind == "deep":
        fields["extra" if where in ("author", "lat", "created_at") else where] = b"[" * v["depth"] + j(marker) + b"]" * v["depth"]
    elif kind == "huge_int":
        fields[where if where in ("id", "lat", "extra") else "extra"] = b"9" * v["digits"]
    elif kind == "non_finite":
        fields[where if where in ("lat", "extra") else "lon"] = v["non_finite"]
    elif kind in ("lone_surrogate", "nul"):
        inserted = v["escape"] if kind == "lone_surrogate" else b"\\u0000"
        target = where if where in ("text", "id", "author") else "text"
        fields[target] = _string_with(f"{marker} " if target != "author" else "Pak ", inserted)
        if target == "author":
            fields["id"] = j(marker)
    elif kind == "control_id":
        fields["id"] = _string_with(marker, b"\\u0001")
    elif kind == "long_id":
        fields["id"] = j((marker + "x" * 300)[:257 + v["length"]])
    elif kind == "long_author":
        fields["author"] = j("a" * (257 + v["length"]))
    elif kind == "bad_time":
        fields["created_at"] = j(v["bad_time"]) if future_is_bad or v["length"] % 3 else j("2999-01-01T00:00:00Z")
        if future_is_bad and v["length"] % 3 == 0:
            fields["created_at"] = j((NOW + timedelta(days=1)).isoformat())
    elif kind == "wrong_type":
        target = where if where in ("id", "text", "lat", "author", "created_at") else "url"
        fields[target] = b'"north"' if target == "lat" and v["wrong"] == b"1.5" else v["wrong"]  # 1.5 is a latitude
        if target == "id":
            fields["text"] = j(marker)
        if target == "text":
            fields["id"] = j(marker)
    elif kind == "missing":
        del fields[v["missing"]]
        if v["missing"] == "id":
            fields["text"] = j(marker)
        if v["missing"] == "text":
            fields["id"] = j(marker)
    elif kind == "blank_text":
        fields["text"] = j(" \t\u00a0 ")
        fields["id"] = j(marker)
    elif kind == "not_object":
        return {"list": j([marker, 1]), "string": j(marker), "number": b"1" + re.sub(rb"\D", b"", marker.encode())}[v["not_object"]]
    elif kind == "invalid_utf8_string":
        fields["text"] = _string_with(f"{marker} ", v["bad_byte"])
    elif kind == "invalid_utf8_line":
        return _object(fields) + b" " + v["bad_byte"]
    elif kind == "broken_json":
        line = _object(fields)
        start = len(b'{"id": ') + len(fields["id"])
        return line[:start + int((len(line) - start - 1) * v["cut"])]
    return _object(fields)


# --- items of the HTTP APIs ------------------------------------------------------------------------

API_FAULTS = ["deep", "huge_int", "non_finite", "lone_surrogate", "nul", "invalid_utf8_string", "bad_time", "wrong_type",
              "bad_id", "blank_text", "not_object", "control_author"]


def _api_bad(spec: Spec, marker: str, item: dict[str, Any], text_path: tuple[str, ...], time_key: tuple[str, ...],
             author_path: tuple[str, ...], id_key: str | None) -> Raw | dict[str, Any]:
    """Put the spec's fault into an API item (a JSON object; fragments as fakeapis.Raw)."""
    v, kind = spec.v, spec.kind

    def put(path: tuple[str, ...], value: Any) -> None:
        node = item
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    item["fuzz_marker"] = marker  # the quarantined raw text keeps it, whatever else is wrong
    if kind == "deep":
        put(("embedded",), Raw(b"[" * v["depth"] + j(marker) + b"]" * v["depth"]))
    elif kind == "huge_int":
        put(("counts",), Raw(b"9" * v["digits"]))
    elif kind == "non_finite":
        put(("score",), Raw(v["non_finite"]))
    elif kind in ("lone_surrogate", "nul", "invalid_utf8_string"):
        inserted = {"lone_surrogate": v["escape"], "nul": b"\\u0000", "invalid_utf8_string": v["bad_byte"]}[kind]
        put(text_path, Raw(_string_with(f"{marker} ", inserted)))
    elif kind == "bad_time":
        put(time_key, v["bad_time"] if v["length"] % 3 else (NOW + timedelta(days=1)).isoformat())
    elif kind == "wrong_type":
        put(text_path, Raw(v["wrong"]))
    elif kind == "bad_id" and id_key:
        put((id_key,), Raw({0: b"true", 1: b"1.5", 2: b'"12a"', 3: b'"99999999999999999999"', 4: b"[]"}[v["length"] % 5]))
    elif kind == "blank_text":
        put(text_path, " \u00a0 ")
    elif kind == "not_object":
        return Raw(j([marker]) if v["length"] % 2 else j(marker))
    elif kind == "control_author":
        put(author_path, Raw(_string_with("warga", b"\\u0000" if v["length"] % 2 else b"\\u0007")))
    return item


def mastodon_item(spec: Spec, marker: str, sid: int, host: str, base: str) -> Raw:
    v = spec.v
    text = f"{marker} {v['tail']}"
    item: dict[str, Any] = {
        "id": str(sid), "created_at": _time_text(v), "in_reply_to_id": None, "sensitive": False, "spoiler_text": "",
        "visibility": "public", "language": "id", "uri": f"{base}/users/w/statuses/{sid}", "url": f"{base}/@w/{sid}",
        "content": f"<p>{html.escape(text)}</p>", "reblog": None,
        "account": {"id": "1", "username": "w", "acct": v["author"] or "warga", "display_name": v["author"] or "W"},
        "tags": [{"name": "banjir"}], "card": None,
    }
    if not spec.good:
        item = _api_bad(spec, marker, item, ("content",), ("created_at",), ("account", "acct"), "id")
    return Raw(dumps(item), key=sid)


def bluesky_item(spec: Spec, marker: str, indexed: datetime) -> Raw:
    v = spec.v
    did = "did:plc:" + re.sub(r"[^a-z0-9]", "", marker)[-20:].rjust(24, "z")
    item: dict[str, Any] = {
        "uri": f"at://{did}/app.bsky.feed.post/{marker}", "cid": "bafyrei" + marker,
        "author": {"did": did, "handle": f"{v['int_id'] and 'x' or 'w'}.bsky.social"},
        "record": {"$type": "app.bsky.feed.post", "text": f"{marker} {v['tail']}", "createdAt": _time_text(v), "langs": ["id"]},
        "indexedAt": indexed.isoformat().replace("+00:00", "Z"), "repostCount": 0, "quoteCount": 0,
    }
    if not spec.good:
        if spec.kind == "bad_id":  # no at-uri: nothing to name the post by
            item["uri"] = [f"https://bsky.app/{marker}", None, 5][spec.v["length"] % 3]
        item = _api_bad(spec, marker, item, ("record", "text"), ("indexedAt",), ("author", "handle"), None)
    return Raw(dumps(item), key=indexed.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def x_item(spec: Spec, marker: str, tid: int) -> Raw:
    v = spec.v
    item: dict[str, Any] = {"id": str(tid), "text": f"{marker} {v['tail']}", "created_at": _time_text(v),
                            "author_id": "warga" if v["author"] is None else v["author"], "lang": "in",
                            "conversation_id": str(tid), "referenced_tweets": [{"type": "quoted", "id": "x" + str(tid)}]}
    if v["lat"] is not None and v["lon"] is not None:
        item["geo"] = {"coordinates": {"type": "Point", "coordinates": [v["lon"], v["lat"]]}}
    if not spec.good:
        item = _api_bad(spec, marker, item, ("text",), ("created_at",), ("author_id",), "id")
    return Raw(dumps(item), key=tid)


# --- feed items ----------------------------------------------------------------------------------

FEED_FAULTS = ["no_id", "no_text", "bad_time", "invalid_utf8_string", "control_char", "bad_charref", "undefined_entity",
               "bad_point", "c1_in_link"]


def feed_item(spec: Spec, marker: str, atom: bool) -> bytes:
    v = spec.v
    when = _when(v["age"], v["offset"])
    title = xml_escape(f"{marker} {v['xml_tail']}")
    guid = marker + ("/" + "g" * 300 if v["long"] == "id" else "")
    link = f"https://berita.example/{marker}"
    date = when.isoformat() if atom or v["style"] == "Z" else format_datetime(when)
    point = f"{v['lat']} {v['lon']}" if v["lat"] is not None and v["lon"] is not None else None
    body = f"Air naik &lt;b&gt;{xml_escape(v['xml_tail'])}&lt;/b&gt;"
    if not spec.good:
        kind = spec.kind
        if kind == "no_id":
            guid, link = None, None
        elif kind == "no_text":
            title, body = None, None
        elif kind == "bad_time":
            date = {0: "Mon, 01 Jan 0001 00:00:00 +1400", 1: "Fri, 31 Dec 9999 23:59:59 -1400", 2: "kemarin",
                    3: format_datetime(NOW + timedelta(days=1)), 4: "Fri, 31 Dec 1999 23:00:00 +0000"}[v["length"] % 5]
            date = date if not atom else {0: "0001-01-01T00:00:00+14:00", 1: "9999-12-31T23:59:59-14:00"}.get(v["length"] % 5, date)
        elif kind == "control_char":
            title = title + "\x01"
        elif kind == "bad_charref":
            title = title + ("&#0;" if v["length"] % 2 else "&#xD800;")
        elif kind == "undefined_entity":
            title = title + "&nbsp;"
        elif kind == "bad_point":
            point = ["nan nan", "95 10", "a b", "1e999 0"][v["length"] % 4]
        elif kind == "c1_in_link":  # inside, where no strip() removes it
            link = f"https://berita.example/&#x85;{marker}"
    parts = []
    if atom:
        parts += [f"<id>{guid}</id>" if guid else "", f'<link rel="alternate" href="{link}"/>' if link else "",
                  f"<published>{date}</published>", f"<title>{title}</title>" if title is not None else "",
                  f"<summary>{body}</summary>" if body is not None else ""]
    else:
        parts += [f"<guid>{guid}</guid>" if guid else "", f"<link>{link}</link>" if link else "", f"<pubDate>{date}</pubDate>",
                  f"<title>{title}</title>" if title is not None else "", f"<description>{body}</description>" if body is not None else ""]
    if point:
        parts.append(f"<georss:point>{point}</georss:point>")
    if title is None and not spec.good:
        parts.append(f"<category>{marker}</category>")  # the marker for the quarantined raw
    xml = ("<entry>" if atom else "<item>") + "".join(parts) + ("</entry>" if atom else "</item>")
    data = xml.encode("utf-8")
    if not spec.good and spec.kind == "invalid_utf8_string":
        data = data.replace(marker.encode(), marker.encode() + v["bad_byte"], 1)
    return data


def feed(items: list[bytes], atom: bool) -> bytes:
    if atom:
        head = b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xmlns:georss="http://www.georss.org/georss"><title>BPBD</title>'
        return head + b"\n".join(items) + b"</feed>"
    head = (b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:georss="http://www.georss.org/georss">'
            b"<channel><title>Berita Buleleng</title>")
    return head + b"\n".join(items) + b"</channel></rss>"


# --- the harness -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of a batch of records."""

    tried: int = 0
    good: int = 0
    stored: int = 0
    bad: int = 0
    quarantined: int = 0
    polls: int = 0
    crashed: list[str] = field(default_factory=list)  # polls that raised
    lost: list[str] = field(default_factory=list)  # good records not stored
    unexplained: list[str] = field(default_factory=list)  # bad records with no quarantine row naming them
    accepted: list[str] = field(default_factory=list)  # bad records stored as posts
    repeated: list[str] = field(default_factory=list)  # a second poll that stored or quarantined again
    kinds: Counter = field(default_factory=Counter)

    def add(self, other: "Outcome") -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def ok(self) -> bool:
        return not (self.crashed or self.lost or self.unexplained or self.accepted or self.repeated)

    def problems(self) -> str:
        return "; ".join(f"{name}: {getattr(self, name)[:5]}" for name in ("crashed", "lost", "unexplained", "accepted", "repeated")
                         if getattr(self, name))


@dataclass
class Made:
    """Records as written or served: marker, good or not, and how a bad one's location reads."""

    marker: str
    good: bool
    kind: str
    location: str | None = None  # exact location expected (files); None: found by the marker in raw


class Harness:
    """Feeds batches of specs through one kind of source into the database at `db_url`. Every
    batch gets a source of its own name, so batches never see each other's posts or cursors."""

    def __init__(self, db_url: str, workdir: Path, api: FakeApis | None = None):
        self.db_url, self.workdir, self.api = db_url, workdir, api

    def run(self, kind: str, batch: list[Spec]) -> Outcome:
        name = f"{kind.replace('-', '')}{next(_RUNS)}"
        made: list[Made] = []
        marker = lambda i: f"mk_{name}_{i}_"  # noqa: E731
        source, prime = getattr(self, "_" + kind.replace("-", "_"))(name, batch, marker, made)
        outcome = Outcome(tried=len(made), good=sum(m.good for m in made), bad=sum(not m.good for m in made))
        outcome.kinds.update(("good " if m.good else "bad ") + m.kind for m in made)
        if prime is not None:
            self._poll(source, outcome, "prime")
            prime()
        first = self._poll(source, outcome, "first")
        second = self._poll(source, outcome, "again")
        if second is not None and (second.new_posts or second.quarantined):
            outcome.repeated.append(f"{name}: second poll stored {second.new_posts} and quarantined {second.quarantined}")
        self._check(name, made, outcome, first is not None)
        return outcome

    def _poll(self, source: Any, outcome: Outcome, what: str) -> Any:
        outcome.polls += 1
        try:
            return ingest.ingest(source, NOW, self.db_url)
        except Exception as exc:  # noqa: BLE001 -- counted: a crashed poll is what we look for
            outcome.crashed.append(f"{source.name} {what}: {type(exc).__name__}: {str(exc)[:300]}")
            return None

    def _check(self, name: str, made: list[Made], outcome: Outcome, polled: bool) -> None:
        with store.session_scope(self.db_url) as session:
            texts = list(session.scalars(sa.select(store.Post.text).where(store.Post.source == name)))
            rows = session.execute(sa.select(store.Quarantine.location, store.Quarantine.reason, store.Quarantine.raw)
                                   .where(store.Quarantine.source == name)).all()
        stored = set(re.findall(r"mk_\w+?_\d+_", "\n".join(texts)))
        locations = {r.location for r in rows if r.reason}
        raws = "\n".join(r.raw for r in rows if r.reason and r.location)
        for m in made:
            if m.good:
                if m.marker in stored:
                    outcome.stored += 1
                else:
                    outcome.lost.append(f"{m.marker} ({m.kind})")
                continue
            if m.marker in stored:
                outcome.accepted.append(f"{m.marker} ({m.kind})")
            elif (m.location in locations) if m.location else (m.marker in raws):
                outcome.quarantined += 1
            else:
                outcome.unexplained.append(f"{m.marker} ({m.kind}, expected at {m.location or 'its raw text'})")

    # --- one builder per kind of source: writes or serves the records, returns the source

    def _lines(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made], path: Path,
               make: Callable[[Spec, str], bytes]) -> None:
        lines = []
        for i, spec in enumerate(batch):
            mk = marker(i)
            made.append(Made(mk, spec.good, spec.kind, None if spec.good else f"{path.name}:{i + 1}"))
            line = make(spec, mk)
            lines.append(line + (b"\r" if spec.good and spec.v["crlf"] else b""))
        path.write_bytes(b"\n".join(lines) + b"\n")

    def _replay(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, None]:
        source = ReplaySource(name, self.workdir / f"{name}.jsonl")
        naive = timezone(timedelta(hours=8))
        self._lines(name, batch, marker, made, source.path,
                    lambda spec, mk: json_record(spec, mk, naive if spec.good and spec.v["style"] == "space" else None, future_is_bad=False))
        return source, None

    def _inbox_jsonl(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, None]:
        folder = self.workdir / name
        folder.mkdir()
        self._lines(name, batch, marker, made, folder / "wa.jsonl", json_record)
        return InboxSource(name, folder, key=lambda: b"fuzz-key"), None

    def _inbox_json(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, None]:
        folder = self.workdir / name
        folder.mkdir()
        items = []
        for i, spec in enumerate(batch):
            mk = marker(i)
            made.append(Made(mk, spec.good, spec.kind, None if spec.good else f"grup.json[{i}]"))
            items.append(json_record(spec, mk))
        (folder / "grup.json").write_bytes(b"[\n" + b",\n".join(items) + b"\n]")
        return InboxSource(name, folder, key=lambda: b"fuzz-key"), None

    def _feed(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made], atom: bool) -> tuple[Any, None]:
        assert self.api is not None
        items = []
        for i, spec in enumerate(batch):
            mk = marker(i)
            made.append(Made(mk, spec.good, spec.kind))
            items.append(feed_item(spec, mk, atom))
        self.api.data.feeds[f"{name}.xml"] = (f'"{name}"', feed(items, atom))
        return RssSource(name, [f"{self.api.url}/feeds/{name}.xml"], policy=FAST, sleep=lambda s: None, key=lambda: b"fuzz-key"), None

    def _rss(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, None]:
        return self._feed(name, batch, marker, made, atom=False)

    def _atom(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, None]:
        return self._feed(name, batch, marker, made, atom=True)

    def _api_records(self, batch: list[Spec], marker: Callable[[int], str], made: list[Made], item: Callable[[Spec, str, int], Raw]) -> list[Raw]:
        out = []
        for i, spec in enumerate(batch):
            mk = marker(i)
            made.append(Made(mk, spec.good, spec.kind))
            out.append(item(spec, mk, i))
        return out

    def _mastodon(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, Callable[[], None]]:
        api = self._fresh_api()
        host, tag = api.url.split("//", 1)[1], name
        api.add_status(tag, mastodon_item(Spec(True, "prime", _PRIME), f"prime_{name}", 1, host, api.url))
        items = self._api_records(batch, marker, made, lambda spec, mk, i: mastodon_item(spec, mk, 2 + i, host, api.url))
        source = MastodonSource(name, [Stream(api.url, "tag", tag)], limit=40, max_pages=20, policy=FAST, sleep=lambda s: None,
                                key=lambda: b"fuzz-key")
        return source, lambda: [api.add_status(tag, it) for it in items]

    def _bluesky(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, Callable[[], None]]:
        api = self._fresh_api()
        start = NOW - timedelta(days=1)
        api.data.bluesky.append(bluesky_item(Spec(True, "prime", _PRIME), f"prime_{name}", start))
        items = self._api_records(batch, marker, made, lambda spec, mk, i: bluesky_item(spec, mk, start + timedelta(seconds=1 + i)))
        source = BlueskySource(name, ["banjir"], appview=api.url, limit=100, max_pages=20, policy=FAST, sleep=lambda s: None,
                               key=lambda: b"fuzz-key")
        return source, lambda: api.data.bluesky.extend(items)

    def _x(self, name: str, batch: list[Spec], marker: Callable[[int], str], made: list[Made]) -> tuple[Any, Callable[[], None]]:
        api = self._fresh_api()
        api.data.x.append(x_item(Spec(True, "prime", _PRIME), f"prime_{name}", 1000))
        items = self._api_records(batch, marker, made, lambda spec, mk, i: x_item(spec, mk, 1001 + i))
        source = XSource(name, ["banjir"], X_CONN, api=api.url, max_results=100, max_pages=20, policy=FAST, sleep=lambda s: None,
                         key=lambda: b"fuzz-key")
        return source, lambda: api.data.x.extend(items)

    def _fresh_api(self) -> FakeApis:
        assert self.api is not None, "HTTP sources need the fake APIs"
        self.api.data = FakeData()
        self.api.requests.clear()
        return self.api


_PRIME = {"tail": "", "xml_tail": "", "age": 86_400 * 2, "offset": 0, "style": "Z", "id_tail": "", "author": None, "lat": None,
          "lon": None, "int_id": False, "crlf": False, "long": False}


def strategy(kind: str) -> st.SearchStrategy[list[Spec]]:
    """The batches each kind of source is fuzzed with."""
    if kind in ("replay", "inbox-jsonl"):
        return specs(JSON_FAULTS + LINE_FAULTS)
    if kind == "inbox-json":
        return specs(JSON_FAULTS + ["invalid_utf8_string"])
    if kind in ("rss", "atom"):
        return specs(FEED_FAULTS)
    return specs(API_FAULTS)
