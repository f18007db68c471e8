"""X (Twitter) API v2 recent search with an app bearer token, one sweep per query.

Recent search pages newest-first with `next_token` and filters with `since_id`/`until_id`; the
per-query cursor is a sweep over tweet ids (see paging.py), so an outage is backfilled as long as
the gap is inside the API's seven-day window. Each sweep re-reads the last `LOOKBACK_S` seconds
of tweet ids below its mark (paging.py says why), since `since_id` is strict and the search can
show a tweet after a newer one. `x-rate-limit-remaining: 0` stops paging; a 429
waits for `x-rate-limit-reset` when that is short, else fails the task to retry later.

Links are stored as x.com/i/web/status/<id>, which opens the tweet without naming its author.

With `push: true` the same queries (geo ones included) are also the source's rules on X's
filtered stream (`sources.x_stream`), so a new matching tweet starts an ingest run at once; the
poll above still reads it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any


from siaga.sources import auth
from siaga.sources.base import AuthorPolicy, IncomingPost, PollResult, SourceConfigError
from siaga.sources.config_file import Claim
from siaga.sources.connector import HttpConnector, http_url, string_list
from siaga.sources.http import get_json, policy_from_config, rate_limit
from siaga.sources.paging import Page, sweep_queries
from siaga.sources.push import PushStream
from siaga.sources.parsing import iso_time, json_text, numeric_id, opt_str
from siaga.sources.records import Records, label
from siaga.sources.schema import MAX_TEXT, check_number, check_record, storable
from siaga.sources.x_stream import MAX_RULE_CHARS, stream_url

log = logging.getLogger(__name__)

API = "https://api.x.com"
# Seconds of tweet ids each sweep re-reads below its mark. A guess, not a measurement of X's
# index: long enough for a tweet indexed a few seconds out of order, short because X bills
# every tweet a search returns, re-read or not (at one-minute polling of a steady stream, 30 s
# re-reads at most half a poll's tweets again).
LOOKBACK_S = 30
TWEET_FIELDS = "created_at,author_id,lang,geo,referenced_tweets,conversation_id"


def status_url(tweet_id: int | str) -> str:
    return f"https://x.com/i/web/status/{tweet_id}"


# X's bounding_box operator takes boxes whose sides are at most 25 miles.
MAX_BOX_SIDE_KM = 40.2


def geo_queries(entry: dict[str, Any], where: str) -> list[str]:
    """`geo_query` run once per box of `bounding_boxes` ([west, south, east, north] each): the
    geotagged posts about the hazards in the regency, whatever place names they use."""
    boxes = entry.get("bounding_boxes")
    if boxes is None:
        return []
    query = entry.get("geo_query")
    if not isinstance(query, str) or not query.strip():
        raise SourceConfigError(f"{where}.geo_query: bounding_boxes need the query to run in them")
    if not isinstance(boxes, list) or not boxes:
        raise SourceConfigError(f"{where}.bounding_boxes: expected a list of [west, south, east, north]")
    out = []
    for i, box in enumerate(boxes):
        w = f"{where}.bounding_boxes[{i}]"
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise SourceConfigError(f"{w}: expected [west, south, east, north] in degrees")
        west, south, east, north = box
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise SourceConfigError(f"{w}: west < east and south < north, in degrees")
        width_km = (east - west) * 111.32 * math.cos(math.radians((south + north) / 2))
        height_km = (north - south) * 110.57
        if max(width_km, height_km) > MAX_BOX_SIDE_KM:
            raise SourceConfigError(f"{w}: {width_km:.0f} x {height_km:.0f} km; X allows sides of at most 25 miles: split it")
        out.append(f"({query.strip()}) bounding_box:[{west} {south} {east} {north}]")
    return out


@dataclass
class XSource(HttpConnector):
    name: str
    queries: list[str]
    conn_id: str
    api: str = API
    max_results: int = 100
    max_pages: int = 5
    push: bool = False

    @classmethod
    def from_config(cls, entry: dict[str, Any], base_dir: Any, where: str) -> "XSource":
        queries = string_list(entry, "queries", where, "an x source needs a list of query strings")
        if not isinstance(entry.get("conn_id"), str):
            raise SourceConfigError(f"{where}.conn_id: an x source needs the connection holding its bearer token")
        lang = entry.get("language")
        # The language operator belongs in the query on X; add it unless the operator wrote one.
        full = [q if not lang or "lang:" in q else f"({q}) lang:{lang}" for q in queries]
        geo = geo_queries(entry, where)
        push = bool(entry.get("push", False))
        if push:
            _check_rules([(f"{where}.queries[{i}]", q) for i, q in enumerate(full)]
                         + [(f"{where}.bounding_boxes[{i}]", q) for i, q in enumerate(geo)])
        full += geo
        return cls(
            name=entry["name"],
            queries=full,
            conn_id=entry["conn_id"],
            api=http_url(entry.get("api", API), f"{where}.api").rstrip("/"),
            max_results=int(entry.get("max_results", 100)),
            max_pages=int(entry.get("max_pages", 5)),
            push=push,
            authors=AuthorPolicy.from_config(entry, where),
            policy=policy_from_config(entry, where),
        )

    def push_streams(self) -> list[PushStream]:
        """The filtered stream that announces this source's new tweets, its queries as the
        rules (none without `push`)."""
        if not self.push:
            return []
        return [PushStream(self.name, stream_url(self.api), self.conn_id, "x", tuple(dict.fromkeys(self.queries)))]

    def claims(self) -> list[Claim]:
        """X allows one filtered-stream connection per app: a second push source on the same
        connection would take turns disconnecting the first."""
        if not self.push:
            return []
        return [Claim(f"x-stream:{self.conn_id}", "push",
                      f"X allows one filtered-stream connection per app, and connection {self.conn_id!r} "
                      "is already streamed; give this source a connection of another X app, or drop push")]

    def poll(self, cursor: dict[str, Any] | None, now: datetime) -> PollResult:
        headers = {"Authorization": f"Bearer {auth.token(self.conn_id)}"}
        return sweep_queries(self.queries, cursor, lambda q, high, until, token: self._page(q, headers, high, until, token, now),
                             self.max_pages, int, str, "x", lookback=lookback_id)

    def _page(self, query: str, headers: dict[str, str], high: int | None, until: int | None, token: str | None, now: datetime) -> Page:
        params: dict[str, Any] = {
            "query": query, "max_results": self.max_results, "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id,referenced_tweets.id", "user.fields": "username",
        }
        if high is not None:
            params["since_id"] = str(high)
        if until is not None:
            params["until_id"] = str(until)
        if token:
            params["next_token"] = token
        where = f"x q={query!r} until_id={until or 'now'}"
        body, resp = get_json(self.session, f"{self.api}/2/tweets/search/recent", params=params, headers=headers,
                              policy=self.policy, sleep=self.sleep, what=where)
        if not isinstance(body, dict) or not isinstance(body.get("meta", {}), dict):
            raise ValueError(f"{where}: expected an object with 'meta'")
        data = body.get("data", [])
        if not isinstance(data, list):
            raise ValueError(f"{where}: 'data' must be a list")
        for err in body.get("errors") if isinstance(body.get("errors"), list) else []:
            log.info("%s: API reported %s", where, storable(json_text(err)[:200]))
        includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
        users = {u["id"]: u.get("username") for u in includes.get("users") if isinstance(u, dict) and isinstance(u.get("id"), str)} \
            if isinstance(includes.get("users"), list) else {}
        page = Page([], [], [], opt_str(body["meta"].get("next_token")), rate_limit(resp.headers).exhausted)
        records = Records(now)
        for i, item in enumerate(data):
            records.take(lambda: self._where(item, where, i), item, lambda: self.parse(item, users, now))
            mark = _tweet_id(item.get("id")) if isinstance(item, dict) else None
            if mark is not None:  # the sweep moves past every tweet it read, good or quarantined
                page.marks.append(mark)
        page.posts, page.bad = records.posts, records.bad
        return page

    @staticmethod
    def _where(item: Any, page: str, i: int) -> str:
        tid = label(item.get("id")) if isinstance(item, dict) else None
        return f"x:tweet {tid}" if tid else f"{page} item {i}"

    def parse(self, item: Any, users: dict[Any, Any], now: datetime) -> IncomingPost:
        if not isinstance(item, dict):
            raise ValueError("expected a tweet object")
        check_record(item)
        tid = numeric_id(item.get("id"), "id")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("field 'text' is missing or empty")
        created = iso_time(item.get("created_at"), "created_at", now)
        author_id = opt_str(item.get("author_id"))
        handle = opt_str(users.get(author_id)) or author_id
        author, pseudonymised = self.authors.apply(handle, self.key)
        lat = lon = None
        coords = ((item.get("geo") or {}).get("coordinates") or {}) if isinstance(item.get("geo"), dict) else {}
        point = coords.get("coordinates") if isinstance(coords, dict) else None
        if isinstance(point, list) and len(point) == 2:  # GeoJSON order
            lon = check_number(point[0], "geo.coordinates[0]", -180, 180)
            lat = check_number(point[1], "geo.coordinates[1]", -90, 90)
        references = item.get("referenced_tweets") if isinstance(item.get("referenced_tweets"), list) else []
        # A reference whose id is no tweet id links nothing; the tweet itself is still good.
        refs = [r for r in references if isinstance(r, dict) and r.get("type") in ("retweeted", "quoted") and _tweet_id(r.get("id"))]
        reposts = status_url(_tweet_id(refs[0]["id"])) if refs else None
        return IncomingPost(
            source=self.name,
            source_id=str(tid),
            created_at=created,
            text=text[:MAX_TEXT],
            author=author,
            url=status_url(tid),
            lat=lat,
            lon=lon,
            raw={"id": str(tid), "lang": opt_str(item.get("lang")), "conversation_id": opt_str(item.get("conversation_id")),
                 "referenced_tweets": [{"type": r["type"], "id": str(_tweet_id(r["id"]))} for r in refs]},
            reposts=reposts,
            author_pseudonymised=pseudonymised,
        )


LOOKBACK_IDS = (LOOKBACK_S * 1000) << 22  # X's ids since 2010 are (ms << 22 | worker, sequence)


def lookback_id(high: int) -> int:
    """The id of a tweet posted `LOOKBACK_S` seconds before tweet `high`. An id smaller than the
    look-back itself is no time: X numbered tweets with a plain counter before 2010 (all below
    3e10), so such a mark is kept as it is."""
    return high - LOOKBACK_IDS if high > LOOKBACK_IDS else high


def _check_rules(rules: list[tuple[str, str]]) -> None:
    """Each query, as written to X (with its language and box), fits in one stream rule."""
    for where, rule in rules:
        if len(rule) > MAX_RULE_CHARS:
            raise SourceConfigError(f"{where}: {len(rule)} characters as an X stream rule (language and box included); "
                                    f"X allows at most {MAX_RULE_CHARS}: shorten it, split it, or drop push")


def _tweet_id(value: Any) -> int | None:
    try:
        return numeric_id(value, "id")
    except ValueError:
        return None
