"""What every HTTP connector shares: how it treats authors, how it retries, its session, and
how its config entry lists queries. `sleep` and `key` are injectable so tests need no waiting
and no real secret."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from siaga.links import safe_url
from siaga.redaction import redact_url
from siaga.sources.base import AuthorPolicy, SourceConfigError, author_key
from siaga.sources.http import HttpPolicy, make_session


@dataclass(kw_only=True)
class HttpConnector:
    authors: AuthorPolicy = AuthorPolicy()
    policy: HttpPolicy = HttpPolicy()
    session: requests.Session = field(default_factory=make_session)
    sleep: Callable[[float], None] = time.sleep
    key: Callable[[], bytes] = author_key


def http_url(value: Any, where: str) -> str:
    """`value` when it is an http(s) URL to a host (`links.safe_url`, the rule for every link
    Siaga follows); else a config error at `where` that shows the value redacted. One check for
    every address a source is given (a feed, an instance, an appview, an API):
    "bsky?app_password=..." as an appview passed, and failed every poll."""
    if safe_url(value) is None:
        raise SourceConfigError(f"{where}: not an http(s) URL: {redact_url(str(value))!r}")
    return value


def string_list(entry: dict[str, Any], key: str, where: str, what: str) -> list[str]:
    """entry[key] as a non-empty list of non-blank strings, stripped; else a config error."""
    values = entry.get(key)
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise SourceConfigError(f"{where}.{key}: {what}")
    return [v.strip() for v in values]
