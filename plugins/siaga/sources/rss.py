"""RSS 2.0 and Atom feeds of news portals and agency sites, fetched conditionally.

Parsed with the standard library (`xml.etree`) and `requests`, not feedparser: feedparser is not
in the pinned environment, and we need only items' id, time, title, summary, link, author and a
GeoRSS point. The stdlib parser never fetches external entities, and the bundled expat (>= 2.4)
limits entity expansion ("billion laughs"), which is what defusedxml would otherwise add.

The cursor per feed is its `ETag` and `Last-Modified`, sent back as `If-None-Match` and
`If-Modified-Since`: an unchanged feed costs a 304 and no parsing. Items are re-read while they
stay in the feed; the store keeps one row per (source, item id), so that is harmless.
"""
from __future__ import annotations

import bisect
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping


from siaga.redaction import redact_url
from siaga.sources.base import AuthorPolicy, BadInput, IncomingPost, PollResult, SourceConfigError
from siaga.sources.connector import HttpConnector, http_url
from siaga.sources.http import SourceError, policy_from_config, request
from siaga.sources.parsing import html_text, iso_time, rfc822_time
from siaga.sources.push import PushStream
from siaga.sources.records import Records, label
from siaga.sources.schema import ID_CHARS, MAX_TEXT, storable
from siaga.sources.watch import WATCH_EVERY, check_watch

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
GEORSS = "{http://www.georss.org/georss}"
GEO = "{http://www.w3.org/2003/01/geo/wgs84_pos#}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
MAX_FEED_BYTES = 5_000_000
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
# For reading a broken feed item by item: the items, the XML declaration, the root's namespaces.
# An item's opening and closing tags (a namespace prefix allowed), paired by `_item_fragments`.
_ITEM_NAME = rb"(?:[A-Za-z_][\w.-]*:)?(?:item|entry)"
_ITEM_OPEN = re.compile(rb"<(" + _ITEM_NAME + rb")\b[^>]*>")
_ITEM_CLOSE = re.compile(rb"</(" + _ITEM_NAME + rb")\s*>")
_DECLARATION = re.compile(rb"<\?xml[^>]*\?>")
_ROOT_TAG = re.compile(rb"<(?![?!])[^>]*>")
_XMLNS = re.compile(rb"""xmlns(?::[\w.-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")


def _item_fragments(body: bytes) -> list[tuple[bytes, bytes]]:
    """(fragment, tag name) of each item of a broken feed: from an opening tag to the first
    closing tag of the same name after it, then on from there. What the one regex
    `(<(NAME)\\b[^>]*>.*?</\\2\\s*>)` finds, in one pass over the tags: that regex searched
    from every opening tag without a closing one to the end of the body, quadratic in such tags
    (16,000 in 96 kB took 5.7 s; a 5 MB feed of them, hours of an ingest task)."""
    closes: dict[bytes, list[tuple[int, int]]] = {}
    for m in _ITEM_CLOSE.finditer(body):
        closes.setdefault(m.group(1), []).append((m.start(), m.end()))
    starts = {name: [start for start, _ in spans] for name, spans in closes.items()}
    fragments: list[tuple[bytes, bytes]] = []
    done = 0  # where the last item found ends: tags inside it belong to it
    for m in _ITEM_OPEN.finditer(body):
        name = m.group(1)
        if m.start() < done or name not in closes:
            continue
        k = bisect.bisect_left(starts[name], m.end())
        if k < len(starts[name]):
            done = closes[name][k][1]
            fragments.append((body[m.start():done], name))
    return fragments


@dataclass
class RssSource(HttpConnector):
    name: str
    feeds: list[str]
    push: bool = False
    watch_every: float = WATCH_EVERY  # with push: seconds between two looks at each feed (`rss_watch`)

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Any, where: str) -> "RssSource":
        feeds = entry.get("feeds")
        if not isinstance(feeds, list) or not feeds:
            raise SourceConfigError(f"{where}.feeds: an rss source needs a list of feed URLs")
        for i, url in enumerate(feeds):
            http_url(url, f"{where}.feeds[{i}]")
        push, every = check_watch(entry, where)
        return cls(entry["name"], list(feeds), push=push, watch_every=every,
                   authors=AuthorPolicy.from_config(entry, where), policy=policy_from_config(entry, where))

    def push_streams(self) -> list[PushStream]:
        """One watcher per feed (none without `push`): a feed has no stream of its own, so the
        triggerer asks it every `watch_every` seconds whether it changed (`rss_watch`)."""
        if not self.push:
            return []
        return [PushStream(self.name, url, protocol="rss", every=self.watch_every) for url in dict.fromkeys(self.feeds)]

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        state: dict[str, Any] = dict((cursor or {}).get("feeds") or {})
        posts: list[IncomingPost] = []
        bad: list[BadInput] = []
        failed: list[str] = []
        for url in self.feeds:
            shown = redact_url(url)  # the feed as logs, errors, quarantine and raw posts name it
            headers = conditional_headers(state.get(url) or {})
            try:
                resp = request(self.session, url, headers=headers, policy=self.policy, ok=(200, 304), sleep=self.sleep, what=shown)
            except SourceError as exc:
                failed.append(str(exc))
                continue
            if resp.status_code == 304:
                continue
            body = resp.content[:MAX_FEED_BYTES + 1]
            if len(body) > MAX_FEED_BYTES:
                bad.append(BadInput(f"{shown} etag={resp.headers.get('ETag')}", f"feed larger than {MAX_FEED_BYTES} bytes", ""))
                failed.append(f"{shown}: feed too large")
                continue
            try:
                got, got_bad = self.parse(body, shown, now)
            except ValueError as exc:
                # Keyed by the body's content: the same broken feed is quarantined once, a new one again.
                digest = hashlib.sha256(body).hexdigest()[:16]
                bad.append(BadInput(f"{shown}#sha256={digest}", str(exc), body.decode("utf-8", "backslashreplace")))
                failed.append(f"{shown}: {exc}")
                continue
            posts += got
            bad += got_bad
            state[url] = validators(resp.headers)
        return PollResult(posts=posts, bad=bad, cursor={"feeds": state}, failed=failed)

    def parse(self, body: bytes, url: str, now: datetime) -> tuple[list[IncomingPost], list[BadInput]]:
        """Every item of a feed, each on its own, named after `url` (already redacted: it is
        shown in locations and kept in each post's raw). A feed that is not well-formed XML as a whole
        (one item with a stray control character or an undecodable byte makes it so) is read
        item by item instead, so that item alone is quarantined; ValueError when no item at all
        can be found."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            return self._parse_items_alone(body, url, now, f"not well-formed XML: {exc}")
        items, atom = _items(root)
        records = Records(now)
        for i, item in enumerate(items, start=1):
            records.take(lambda: self._where(url, item, atom, i), lambda: _xml_text(item), lambda: self._item(item, atom, url, now))
        return records.posts, records.bad

    def _parse_items_alone(self, body: bytes, url: str, now: datetime, error: str) -> tuple[list[IncomingPost], list[BadInput]]:
        """Recovery for a feed that is not well-formed: each `<item>`/`<entry>` parsed on its own,
        inside the feed's own XML declaration (its encoding) and namespace declarations.
        Hand-written because a recovering parser (lxml's `recover=True`) silently drops or
        mends the broken part, where we must refuse exactly that item and say why."""
        fragments = _item_fragments(body)
        if not fragments:
            raise ValueError(error)
        declaration = _DECLARATION.match(body.lstrip())
        root_tag = _ROOT_TAG.search(body)
        namespaces = b" ".join(_XMLNS.findall(root_tag.group())) if root_tag else b""
        records = Records(now)
        for i, (fragment, tag) in enumerate(fragments, start=1):
            atom = tag.endswith(b"entry")
            wrapped = (declaration.group() if declaration else b"") + b"<siaga-item " + namespaces + b">" + fragment + b"</siaga-item>"

            def parse_one() -> IncomingPost:
                try:
                    (item,) = ET.fromstring(wrapped)
                except (ET.ParseError, ValueError) as exc:
                    raise ValueError(f"not well-formed XML: {exc}") from None
                return self._item(item, atom, url, now)

            records.take(f"{url} item {i}", fragment, parse_one)
        return records.posts, records.bad

    def _item(self, item: ET.Element, atom: bool, url: str, now: datetime) -> IncomingPost:
        return self._atom(item, url, now) if atom else self._rss(item, url, now)

    @staticmethod
    def _where(url: str, item: ET.Element, atom: bool, i: int) -> str:
        return f"{url} item {label(_ident(item, atom)) or i}"

    def _rss(self, item: ET.Element, feed: str, now: datetime) -> IncomingPost:
        link = _text(item, "link")
        ident = _ident(item, False)
        when = _text(item, "pubDate") or _text(item, f"{DC}date")
        body = _text(item, f"{CONTENT}encoded") or _text(item, "description")
        author = _text(item, f"{DC}creator") or _text(item, "author")
        return self._post(feed, ident, rfc822_time(when, "pubDate", now), _text(item, "title"), body, link, author, item)

    def _atom(self, entry: ET.Element, feed: str, now: datetime) -> IncomingPost:
        link = _atom_link(entry)
        when = _text(entry, f"{ATOM}published") or _text(entry, f"{ATOM}updated")
        body = _text(entry, f"{ATOM}content") or _text(entry, f"{ATOM}summary")
        author = _text(entry.find(f"{ATOM}author"), f"{ATOM}name") if entry.find(f"{ATOM}author") is not None else None
        return self._post(feed, _ident(entry, True), iso_time(when, "published", now), _text(entry, f"{ATOM}title"), body, link, author, entry)

    def _post(self, feed: str, ident: str | None, when: datetime, title: str | None, body: str | None, link: str | None,
              author: str | None, el: ET.Element) -> IncomingPost:
        if not ident:
            raise ValueError("item has no guid/id and no link")
        source_id = ident
        if len(ident) > ID_CHARS:  # long guids (URLs with tracking): shortened, still one per item; raw keeps it whole
            source_id = f"{ident[:ID_CHARS - 17]}#{hashlib.sha256(ident.encode('utf-8', 'backslashreplace')).hexdigest()[:16]}"
        text = "\n".join(t for t in (html_text(title or ""), html_text(body or "")) if t)[:MAX_TEXT]
        if not text:
            raise ValueError("item has no title and no description")
        lat, lon = _point(el)
        stored_author, pseudonymised = self.authors.apply(author, self.key)
        return IncomingPost(
            source=self.name,
            source_id=source_id,
            created_at=when,
            text=text,
            author=stored_author,
            url=link,
            lat=lat,
            lon=lon,
            raw={"feed": feed, "id": ident, "link": link},
            author_pseudonymised=pseudonymised,
        )


def conditional_headers(seen: dict[str, str]) -> dict[str, str]:
    """The request headers that ask a feed for a version newer than `seen` (its `validators`):
    the poll and the watcher (`rss_watch`) ask the same way, so a 304 means the same to both."""
    headers = {"Accept": ACCEPT}
    if seen.get("etag"):
        headers["If-None-Match"] = seen["etag"]
    if seen.get("last_modified"):
        headers["If-Modified-Since"] = seen["last_modified"]
    return headers


def validators(headers: Mapping[str, str]) -> dict[str, str]:
    """A feed answer's `ETag` and `Last-Modified`, as `conditional_headers` sends them back."""
    return {k: v for k, v in (("etag", headers.get("ETag")), ("last_modified", headers.get("Last-Modified"))) if v}


def _items(root: ET.Element) -> tuple[list[ET.Element], bool]:
    """A feed's items and whether they are Atom entries; ValueError for a document that is
    neither RSS nor Atom."""
    if root.tag == f"{ATOM}feed":
        return root.findall(f"{ATOM}entry"), True
    if root.tag in ("rss", "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"):
        return list(root.iter("item")), False
    raise ValueError(f"neither RSS nor Atom: root element <{storable(root.tag)[:80]}>")


def _ident(item: ET.Element, atom: bool) -> str | None:
    """An item's id as the poll stores it: its guid (Atom: id), else its link."""
    if atom:
        return _text(item, f"{ATOM}id") or _atom_link(item)
    return _text(item, "guid") or _text(item, "link")


def _atom_link(entry: ET.Element) -> str | None:
    """An Atom entry's link to its page (`rel="alternate"`, the default)."""
    for el in entry.findall(f"{ATOM}link"):
        if el.get("rel", "alternate") == "alternate" and el.get("href"):
            return el.get("href")
    return None


def item_ids(body: bytes) -> frozenset[str]:
    """What tells one version of a feed from the next (`rss_watch`): each item's id as the poll
    reads it, or a digest of the item's XML where it has none, or where the feed is not
    well-formed. Not the body's digest: many feeds rewrite `lastBuildDate` on every request, and
    a watcher must not wake ingest for that. ValueError for a document that is no feed."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return frozenset(_digest(fragment) for fragment, _ in _item_fragments(body))
    items, atom = _items(root)
    return frozenset(_ident(item, atom) or _digest(_xml_text(item).encode("utf-8", "backslashreplace")) for item in items)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _xml_text(el: ET.Element) -> str:
    """An item as XML text for quarantine (the serializer recurses: a deeply nested item is
    quoted by its text instead)."""
    try:
        return ET.tostring(el, encoding="unicode")
    except RecursionError:
        return "".join(el.itertext())


def _text(el: ET.Element | None, tag: str) -> str | None:
    if el is None:
        return None
    found = el.find(tag)
    if found is None:
        return None
    value = "".join(found.itertext()).strip()
    return value or None


def _point(el: ET.Element) -> tuple[float | None, float | None]:
    """GeoRSS `<georss:point>lat lon</georss:point>` or W3C `geo:lat`/`geo:long`."""
    point = _text(el, f"{GEORSS}point")
    pair = point.split() if point else [_text(el, f"{GEO}lat"), _text(el, f"{GEO}long")]
    if len(pair) != 2 or None in pair:
        return None, None
    try:
        lat, lon = float(pair[0]), float(pair[1])
    except ValueError:
        raise ValueError(f"field 'georss:point': not two numbers: {point or pair!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"field 'georss:point': {lat} {lon} is outside the globe")
    return lat, lon
