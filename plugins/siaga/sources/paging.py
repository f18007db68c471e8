"""Newest-first search APIs (X recent search, Bluesky searchPosts) page backwards from "now" to
the last thing we stored. When a run cannot reach it (page budget, rate limit, an outage left a
long gap) the walk must resume where it stopped, not restart at the top and leave a hole.

So the cursor of one query is a *sweep*:
- `high`: everything at or below this mark is stored (X: since_id; Bluesky: a time),
- `sweep.top`: the newest item of the walk in progress (becomes `high` when the walk ends),
- `sweep.until`: the oldest item reached so far; the next run continues below it.
Both marks are values the API itself filters on (`since_id`/`until_id`, `since`/`until`), not its
opaque paging token, which may expire between runs.

A search index is not written in the order of its marks: a post can become searchable seconds
after a newer one (X's and Bluesky's indexes are fed by queues). A walk that stopped at `high`
would then never see the late one, since the next walk starts above it. So each walk goes down
to a *floor* a little below `high` (`lookback`, in the API's own marks: ids or times), re-reading
the last seconds; what it reads again is a duplicate the store ignores.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from siaga.sources.base import BadInput, IncomingPost, PollResult
from siaga.sources.http import SourceError


@dataclass
class Page:
    posts: list[IncomingPost]
    bad: list[BadInput]
    marks: list[Any]  # the comparable mark (id as int, time as datetime) of every item on the page
    next_token: str | None
    exhausted: bool = False  # the rate limit window is used up: stop after this page


@dataclass
class SweepResult:
    posts: list[IncomingPost] = field(default_factory=list)
    bad: list[BadInput] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    exhausted: bool = False


FetchPage = Callable[[Any, Any, "str | None"], Page]  # (floor, until, token) -> Page
Lookback = Callable[[Any], Any]  # high -> the floor a walk goes down to, a mark at or below high


def sweep(fetch: FetchPage, state: dict[str, Any], max_pages: int, load: Callable[[str], Any], dump: Callable[[Any], str],
          lookback: Lookback | None = None) -> SweepResult:
    """Walk pages newest-first from the top (or from where the last run stopped) down to the
    floor below `high` (`lookback`; `high` itself without one).

    A first run (no `high`) reads one page only: the newest posts, no history to replay.
    Raises whatever `fetch` raises; the caller keeps the old state then."""
    high = load(state["high"]) if state.get("high") else None
    floor = lookback(high) if lookback is not None and high is not None else high
    current = state.get("sweep") or {}
    top = load(current["top"]) if current.get("top") else None
    until = load(current["until"]) if current.get("until") else None
    result = SweepResult()
    token: str | None = None
    budget = 1 if high is None else max_pages
    start_until = until  # a paging token belongs to the query it came from: keep the query fixed
    for _ in range(budget):
        page = fetch(floor, start_until, token)
        result.posts += page.posts
        result.bad += page.bad
        if page.marks:
            newest, oldest = max(page.marks), min(page.marks)
            top = newest if top is None else max(top, newest)
            until = oldest if until is None else min(until, oldest)
        reached_bottom = not page.marks or not page.next_token or (floor is not None and until is not None and until <= floor)
        if reached_bottom or high is None:
            new_high = top if high is None or (top is not None and top > high) else high
            result.state = {"high": dump(new_high)} if new_high is not None else {}
            return result
        if page.exhausted:
            result.exhausted = True
            break
        token = page.next_token
    result.state = {"high": dump(high) if high is not None else None, "sweep": {"top": dump(top), "until": dump(until)}}
    return result


QueryFetch = Callable[[str, Any, Any, "str | None"], Page]  # (query, floor, until, token) -> Page


def sweep_queries(
    queries: list[str], cursor: dict[str, Any] | None, fetch: QueryFetch, max_pages: int,
    load: Callable[[str], Any], dump: Callable[[Any], str], where: str, lookback: Lookback | None = None,
) -> PollResult:
    """One sweep per query, each with its own cursor. A failing query keeps its old state and is
    reported (a malformed page is also quarantined); the others go on. An exhausted rate limit
    is shared by every query of the API, so the rest wait for the next run."""
    state: dict[str, Any] = dict((cursor or {}).get("queries") or {})
    result = PollResult(posts=[], bad=[], cursor={"queries": state}, failed=[])
    for query in queries:
        try:
            got = sweep(lambda high, until, token: fetch(query, high, until, token), state.get(query) or {}, max_pages, load, dump,
                        lookback)
        except (SourceError, ValueError) as exc:
            if isinstance(exc, ValueError):  # a malformed page: quarantine it and retry later
                result.bad.append(BadInput(f"{where} q={query!r}", str(exc), ""))
            result.failed.append(f"{query}: {exc}")
            continue
        result.posts.extend(got.posts)
        result.bad.extend(got.bad)
        state[query] = got.state
        if got.exhausted:
            break
    return result
