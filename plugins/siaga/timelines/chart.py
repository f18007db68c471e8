"""The incident chart: posts per time bucket against the level detection expected, with a
marker where each alert fired, as numbers an inline SVG template draws."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from siaga.catalogue import say, say_in
from siaga.timelines.display import wita
from siaga.timelines.report import IncidentReport
from siaga.vocabulary import LOCAL_TZ

MARKER_LABEL_GAP = 26  # pixels between two written detection labels

# Bucket sizes the chart may use: the smallest that keeps it at 72 bars or fewer.
DISPLAY_BUCKETS = [timedelta(minutes=m) for m in (5, 15, 30, 60, 180, 360, 720, 1440)]


@dataclass
class ChartBar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass
class ChartMarker:
    x: float
    label: str
    title: str


@dataclass
class ChartView:
    width: int
    height: int
    left: int  # plot area's offset and size inside the SVG
    top: int
    plot_w: int
    plot_h: int
    bars: list[ChartBar] = field(default_factory=list)
    expected_path: str = ""  # SVG path data of the expected level
    markers: list[ChartMarker] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    bucket_label: str = ""  # the bar's span in English ("5 min"), for tests and logs
    bucket_labels: tuple[str, str] = ("", "")  # (Indonesian, English), for the page
    source: str = ""  # what the bars count: "area counts" or "evidence posts"


def build_chart(report: IncidentReport, width: int = 720, height: int = 260) -> ChartView:
    """Posts per bucket against the expected level, with a marker where each alert fired. The
    bars are the series' stored counts, or the evidence posts when none are stored; the span
    covers them, the alerts and the incident, plus an hour each side."""
    inc = report.incident
    counts = report.counts
    source = "area counts"
    if not counts:  # no stored counts for the series: count the evidence posts themselves
        counts = [(p.created_at, 1) for p in report.posts]
        source = "evidence posts"
    times = [t for t, _ in counts] + [a.window_start for a in report.alerts] + [a.window_end for a in report.alerts] + [inc.opened_at]
    # A person's action counts as activity, but one pressed days later must not stretch the
    # posts' chart over all the quiet time in between.
    if inc.last_activity_at <= max(times) + timedelta(hours=12):
        times.append(inc.last_activity_at)
    start, end = min(times) - timedelta(hours=1), max(times) + timedelta(hours=1)
    step = next((b for b in DISPLAY_BUCKETS if (end - start) / b <= 72), DISPLAY_BUCKETS[-1])
    start, end = _floor(start, step), _floor(end, step) + step
    n = int((end - start) / step)
    totals = [0] * n
    for t, c in counts:
        i = int((t - start) / step)
        if 0 <= i < n:
            totals[i] += c
    expected = [_expected_at(report, start + i * step + step / 2, step) for i in range(n)]
    left, top, right, bottom = 44, 14, 36, 40
    chart = ChartView(width, height, left, top, width - left - right, height - top - bottom, source=source)
    chart.bucket_label = _duration(step)
    chart.bucket_labels = bucket_words(step)
    peak = max(totals + [e for e in expected if e is not None] + [1])
    ymax = _nice_ceiling(peak)
    bw = chart.plot_w / n
    sy = chart.plot_h / ymax
    for i, total in enumerate(totals):
        if total:
            h = total * sy
            chart.bars.append(ChartBar(round(left + i * bw + 1, 1), round(top + chart.plot_h - h, 1), round(max(bw - 2, 1), 1), round(h, 1),
                                       f"{wita(start + i * step)}: {total} post(s)"))
    pts = [(left + (i + 0.5) * bw, top + chart.plot_h - e * sy) for i, e in enumerate(expected) if e is not None]
    chart.expected_path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) if pts else ""
    last_label = -MARKER_LABEL_GAP
    for j, alert in enumerate(report.alerts, 1):
        x = left + (alert.window_end - start) / step * bw
        # Many detections close together would write their labels over each other (22 of them
        # once made "A1…A22" unreadable): a label is written only where there is room for it,
        # and every marker still names itself on hover.
        label = f"D{j}" if x - last_label >= MARKER_LABEL_GAP else ""
        if label:
            last_label = x
        chart.markers.append(ChartMarker(round(x, 1), label, say("chart.marker", n=j, at=alert.window_end, observed=alert.observed,
                                                                     expected=round(alert.expected, 1))))
    chart.y_ticks = [(round(top + chart.plot_h - v * sy, 1), f"{v:g}") for v in _ticks(ymax)]
    every = max(1, math.ceil(n / 6))
    fmt = "%d %b %H:%M" if step < timedelta(days=1) else "%d %b"
    chart.x_ticks = [(round(left + i * bw, 1), (start + i * step).astimezone(LOCAL_TZ).strftime(fmt)) for i in range(0, n, every)]
    return chart


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def _expected_at(report: IncidentReport, t: datetime, step: timedelta) -> float | None:
    """The alert baseline nearest in time, scaled from its window to the display bucket."""
    if not report.alerts:
        return None
    alert = min(report.alerts, key=lambda a: abs((a.window_end - t).total_seconds()))
    window = alert.window_end - alert.window_start
    if window <= timedelta(0):
        return None
    return alert.expected * (step / window)


def _nice_ceiling(v: float) -> float:
    for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if v <= n:
            return float(n)
    return float(math.ceil(v / 1000) * 1000)


def _ticks(ymax: float) -> list[float]:
    step = ymax / 5 if ymax >= 5 else 1
    return [round(i * step, 2) for i in range(int(ymax / step) + 1)]


def bucket_words(step: timedelta) -> tuple[str, str]:
    """The bar's span in Indonesian and English ("5 menit", "5 min")."""
    minutes = int(step.total_seconds() // 60)
    if minutes < 60:
        return say_in("id", "duration.minutes", n=minutes), say_in("en", "duration.minutes", n=minutes)
    if minutes < 1440:
        return say_in("id", "duration.hours", n=minutes // 60), say_in("en", "duration.hours", n=minutes // 60)
    return say_in("id", "duration.day"), say_in("en", "duration.day")


def _duration(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else (f"{minutes // 60} h" if minutes < 1440 else "1 day")
