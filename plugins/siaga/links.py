"""Which of a post's links may be followed: one rule for Slack, the incident pages and every
export. A post's URL is hostile input: a `javascript:` href runs in a browser, a GIS or
spreadsheet opening an export escapes nothing, a bidi override or zero-width character disguises
where a link goes ("‮gpj.exe"), and `|`, `<` or `>` would end Slack's `<url|label>` early."""
from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_URL = 2000  # Slack's link syntax and browsers handle longer, but no post's link needs it
_UNSAFE = frozenset("|<>")
# Controls, invisible format characters (bidi, zero-width), lone surrogates, unassigned code points.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Cn"))


def safe_url(url: object) -> str | None:
    """The URL when a person may follow it as it shows: http(s) to a host, nothing hidden or
    blank inside (browsers drop a tab, so "java\\tscript:" would run), none of Slack's link
    delimiters; else None, and the caller shows no link."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return None
    if any(ch in _UNSAFE or ch.isspace() or unicodedata.category(ch) in _HIDDEN for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 host, "http://[x"
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None
