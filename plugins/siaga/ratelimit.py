"""When a server that rate-limited us says to come back: the `Retry-After` header, read once.

Slack (through slack-sdk) and the source APIs (through requests) both send it; each caller then
decides whether the wait is short enough to sleep through or long enough to give up and let the
outbox or Airflow retry later. The two used to read it differently (Slack's reading knew no
HTTP dates, the sources' no list values and crashed on digits such as "²"); this is the one
reading.
"""
from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone
from typing import Any, Mapping

# delay-seconds is 1*DIGIT in RFC 9110 (ASCII digits only). A sign is tolerated: a server that
# asks for a negative wait can only mean "now".
_SECONDS = re.compile(r"[+-]?[0-9]+")


def retry_after(headers: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (RFC 9110 §10.2.3), never negative, or None
    when there is no such header or it cannot be read.

    Accepts delta-seconds ("120") and an HTTP-date in any of the three formats RFC 9110 says a
    recipient must read (IMF-fixdate, RFC 850, asctime; a date without a zone is GMT), a date in
    the past or a negative number meaning "now". The header name matches in any case, and a value
    may be a list of values (slack-sdk keeps headers that way; the first counts). `now` is the
    clock an HTTP-date is measured against (default: the current UTC time)."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return max(float(text), 0.0)  # float: a 5,000-digit number is a very long wait, not an error
    # email.utils (standard library) reads all three HTTP-date formats; urllib3's
    # Retry.parse_retry_after does too but raises on garbage and measures against its own clock.
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """The first value of header `name` (any case), as text; None when absent or not text."""
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            return value if isinstance(value, str) else None
    return None
