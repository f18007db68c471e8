"""RSS 2.0 feeds as the fake sites serve them (tests/support/fakeapis.py `data.feeds`): one way
to write an item and a feed for the RSS tests, the push stack test and the latency benchmark."""
from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

DATE = "Thu, 15 Jan 2026 08:30:00 +0800"


def rss_item(guid: str, title: str, date: str | datetime = DATE, *, author: str | None = None, extra: str = "") -> str:
    """One `<item>`: its title as XML, as given (the tests of broken feeds put raw entities and
    control characters there; escape text that may hold `&` or `<`), its date as given or, for a
    datetime, in RFC 822 to the second."""
    when = format_datetime(date.replace(microsecond=0)) if isinstance(date, datetime) else date
    by = f"<author>{escape(author)}</author>" if author else ""
    return f"<item><title>{title}</title><guid>{escape(guid)}</guid>{by}<pubDate>{when}</pubDate>{extra}</item>"


def rss_feed(*items: str, built: str | datetime | None = None, title: str = "Berita") -> str:
    """A whole feed of `items`, with a `lastBuildDate` when `built` is given (a site that rewrites
    it on every change, or on every request)."""
    if isinstance(built, datetime):
        built = format_datetime(built.replace(microsecond=0))
    stamp = f"<lastBuildDate>{built}</lastBuildDate>" if built else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(title)}</title>{stamp}'
            + "".join(items) + "</channel></rss>")
