"""X's filtered stream as a push reader (`push.READERS["x"]`): a matching tweet wakes ingest
at once instead of at the next poll of recent search.

X filters a stream by rules kept on X's side, per app: before each connection the source's
queries are made the app's rules tagged `siaga:<source>` (`sync_rules`), and a tweet announced
with that tag in its `matching_rules` wakes the source. Rules of other tags belong to someone
else (another tool on the same app) and are never changed. As with Mastodon the tweet is only a
wake-up: the ingest run reads it through recent search, with the source's cursor and checks.

The stream is JSON, one object per line, with a bare `\\r\\n` as keep-alive about every 20 s
(`push.IDLE_TIMEOUT` ends a silent one). X allows one stream connection per app, so two push
sources on one connection are refused at config load (`x.XSource.claims`). Refusals follow X's
reconnect guidance ("Handling disconnections", docs.x.com): HTTP errors wait from 5 s doubling
to 320 s, a 429 from a minute doubling while it repeats; `push.Backoff` carries that to
`push.listen`.

Plain httpx (as for Mastodon) rather than X's SDK: the triggerer needs an async reader with our
bounds, no redirects and our backoff, and three endpoints are little code.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, AsyncIterator

import httpx

from siaga.redaction import redact_url
from siaga.sources import push
from siaga.sources.http import USER_AGENT
from siaga.sources.schema import storable

log = logging.getLogger(__name__)

# The longest rule X accepts on its smallest plan (Basic; pay-per-use allows 1,024).
MAX_RULE_CHARS = 512
# X's reconnect guidance: HTTP errors from 5 s doubling to 320 s; 429 from 60 s doubling. X
# gives no cap for 429; a rate window is 15 minutes, so no wait needs to be longer.
HTTP_ERROR_WAIT, HTTP_ERROR_MAX = 5.0, 320.0
RATE_LIMIT_WAIT, RATE_LIMIT_MAX = 60.0, 900.0
RULES_PAGE_BYTES = 4 * push.MAX_EVENT_BYTES  # a page of up to 1,000 rules of up to 2,048 characters
RULES_MAX_PAGES = 50
_LINE_END = (b"\n",)


def stream_url(api: str) -> str:
    """The filtered stream endpoint under an X API base (https://api.x.com)."""
    return f"{api.rstrip('/')}/2/tweets/search/stream"


def rule_tag(source: str) -> str:
    """The tag of `source`'s rules: what marks a rule, and a matching tweet, as this source's."""
    return f"siaga:{source}"


def plan(existing: list[dict[str, Any]], wanted: tuple[str, ...], tag: str) -> tuple[list[str], list[str]]:
    """(ids to delete, values to add) so that the rules tagged `tag` are exactly `wanted`, each
    once; rules of any other tag are left as they are."""
    keep: set[str] = set()
    delete = []
    for rule in existing:
        rid, value = rule.get("id"), rule.get("value")
        if rule.get("tag") != tag or not isinstance(rid, str):
            continue
        if value in wanted and value not in keep:
            keep.add(value)
        else:  # not wanted any more, or a second copy
            delete.append(rid)
    return delete, [v for v in dict.fromkeys(wanted) if v not in keep]


async def sync_rules(stream: push.PushStream, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Make the app's rules tagged for this source exactly the source's terms."""
    url = _rules_url(stream.url)
    tag = rule_tag(stream.source)
    existing = await _all_rules(client, url, headers)
    delete, add = plan(existing, stream.terms, tag)
    if delete:
        body = await _json(client, "POST", url, headers, {"delete": {"ids": delete}})
        _report(body, f"deleting {len(delete)} old rule(s) of {tag}")
    if add:
        body = await _json(client, "POST", url, headers, {"add": [{"value": v, "tag": tag} for v in add]})
        _report(body, f"adding {len(add)} rule(s) of {tag}")
    if delete or add:
        log.info("push: X rules of %s synced: %d deleted, %d added", tag, len(delete), len(add))


async def x_announcements(stream: push.PushStream, client: httpx.AsyncClient, token: push.Token) -> AsyncIterator[str]:
    """"tweet" for every tweet the filtered stream delivers with this source's tag among its
    matching rules, until X ends the stream. The token goes in the Authorization header only,
    redirects are not followed (the client's setting), and a refusal raises `push.Backoff`."""
    if not stream.conn_id:
        raise ValueError(f"push: the X stream of source {stream.source} names no connection for its bearer token")
    headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {await token(stream.conn_id)}"}
    await sync_rules(stream, client, headers)
    tag = rule_tag(stream.source)
    async with client.stream("GET", stream.url, headers=headers) as response:
        _check(response)
        push.bound(response, _LINE_END)
        log.info("push: listening to %s for source %s", redact_url(stream.url), stream.source)
        async for line in response.aiter_lines():
            if not line.strip():
                continue  # keep-alive
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("push: X stream for source %s sent a line that is not JSON; skipped", stream.source)
                continue
            if not isinstance(message, dict):
                continue
            if tag in _tags(message.get("matching_rules")):
                yield "tweet"
            elif "data" not in message and message.get("errors"):
                # e.g. operational-disconnect, sent just before X closes the stream
                log.info("push: X stream for source %s: %s", stream.source, _titles(message["errors"]))


def _rules_url(stream_url: str) -> httpx.URL:
    url = httpx.URL(stream_url)
    return url.copy_with(path=url.path.rstrip("/") + "/rules")


async def _all_rules(client: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    params: dict[str, str] = {"max_results": "1000"}
    for _ in range(RULES_MAX_PAGES):
        body = await _json(client, "GET", url.copy_merge_params(params), headers)
        data = body.get("data") if isinstance(body, dict) else None
        rules += [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
        meta = body.get("meta") if isinstance(body, dict) else None
        following = meta.get("next_token") if isinstance(meta, dict) else None
        if not isinstance(following, str) or not following:
            return rules
        params["pagination_token"] = following
    raise ValueError(f"X listed rules over more than {RULES_MAX_PAGES} pages")


async def _json(client: httpx.AsyncClient, method: str, url: httpx.URL, headers: dict[str, str],
                body: dict[str, Any] | None = None) -> Any:
    """A rules request's JSON answer, read up to RULES_PAGE_BYTES."""
    async with client.stream(method, url, headers=headers, json=body) as response:
        _check(response)
        return json.loads(await push.read_at_most(response, RULES_PAGE_BYTES, "X's rules answer"))


def _check(response: httpx.Response) -> None:
    """Nothing for a success; otherwise the wait X asks for, as `push.Backoff`."""
    status = response.status_code
    if response.is_success:
        return
    if status == 429:
        raise push.Backoff("HTTP 429", _rate_limit_wait(response.headers), RATE_LIMIT_MAX)
    if status in (401, 403):  # what the operator can fix; X's body is not ours to log
        raise push.Backoff(f"HTTP {status}: X refused the app's bearer token for the filtered stream; the connection must "
                           "hold the app's bearer token and the app's plan must include the filtered stream",
                           HTTP_ERROR_WAIT, HTTP_ERROR_MAX)
    raise push.Backoff(f"HTTP {status}", HTTP_ERROR_WAIT, HTTP_ERROR_MAX)


def _rate_limit_wait(headers: httpx.Headers) -> float:
    """At least a minute; longer when X says its window resets later (up to a window)."""
    try:
        until_reset = float(headers.get("x-rate-limit-reset", "")) - time.time()
    except ValueError:
        until_reset = 0.0
    return min(max(RATE_LIMIT_WAIT, until_reset), RATE_LIMIT_MAX)


def _report(body: Any, doing: str) -> None:
    """X answers a rules change it partly refused (a duplicate or invalid rule) with a success
    listing the errors: worth a warning, not a failure (the other rules still stream)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        log.warning("push: X refused part of %s: %s", doing, _titles(errors))


def _tags(rules: Any) -> set[str]:
    return {r["tag"] for r in rules if isinstance(r, dict) and isinstance(r.get("tag"), str)} if isinstance(rules, list) else set()


def _titles(errors: Any) -> str:
    """X's errors in a few words each: title and, for a rule, its value (the operator's own
    config, no secret)."""
    items = errors if isinstance(errors, list) else [errors]
    parts = [" ".join(str(e.get(k)) for k in ("title", "value") if isinstance(e, dict) and e.get(k)) or "?" for e in items[:5]]
    return storable("; ".join(parts))[:300]
