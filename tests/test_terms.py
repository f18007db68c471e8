"""`siaga terms`: per term, the posts it matched, the incidents it fed and how many of those the
officers called false alarms, from the stored matches and the incidents' timelines."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from siaga import cli, ingest
from siaga.sources import ReplaySource
from siaga_dev.scenario import START
from support.history import judge_demo, store_demo

UNTIL = "2026-01-16T00:00"  # WITA: the day after the demo morning


@pytest.fixture
def judged(sqlite_url, monkeypatch, tmp_path):
    """The demo morning judged by the officers, plus one post found only through the root
    "banjir" ("membanjiri" is on no list)."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    store_demo(sqlite_url)
    feed = tmp_path / "root.jsonl"
    feed.write_text(json.dumps({"id": "r1", "created_at": (START + timedelta(hours=2, minutes=31)).isoformat(),
                                "text": "Air sungai membanjiri jalan desa di Sangsit", "author": "sangsit7"}) + "\n")
    ingest.ingest(ReplaySource("extra", feed), START + timedelta(hours=3), sqlite_url)
    return sqlite_url, judge_demo(sqlite_url)


def terms_json(capsys, *args: str) -> dict:
    assert cli.main(["terms", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_terms_report_counts_posts_incidents_and_false_alarms(judged, capsys):
    url, ids = judged
    report = terms_json(capsys, "--days", "2", "--until", UNTIL, "--db", url)
    assert report["since"] == "2026-01-14T00:00:00+08:00" and report["until"] == "2026-01-16T00:00:00+08:00"
    rows = {(r["hazard"], r["kind"], r["term"]): r for r in report["terms"]}
    macet = rows[("traffic_jam", "term", "macet parah")]
    assert (macet["incidents"], macet["false_alarms"], macet["confirmed"], macet["false_alarm_share"]) == (1, 1, 0, 1.0)
    assert macet["incident_ids"] == [ids["traffic_jam"]] and macet["posts"] > 0
    banjir = rows[("flood", "term", "banjir")]
    assert (banjir["incidents"], banjir["false_alarms"], banjir["confirmed"], banjir["false_alarm_share"]) == (1, 0, 1, 0.0)
    root = rows[("flood", "root", "banjir")]
    assert root["posts"] == 1, "a word found through a root is reported under the root"
    # the terms behind false alarms come first
    first_clean = next(i for i, r in enumerate(report["terms"]) if r["false_alarms"] == 0)
    assert all(r["false_alarms"] > 0 for r in report["terms"][:first_clean]) and first_clean > 0
    assert all(r["hazard"] == "traffic_jam" for r in report["terms"][:first_clean])


def test_terms_table_for_people(judged):
    url, _ = judged
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "terms", "--days", "2", "--until", UNTIL, "--db", url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "terms 2026-01-14 00:00 .. 2026-01-16 00:00 WITA"
    assert lines[1].split() == ["hazard", "term", "kind", "posts", "incidents", "confirmed", "false", "alarms", "false-alarm", "share"]
    first = lines[3].split()
    assert first[0] == "traffic_jam" and first[-1] == "100%"
    assert lines[-1].startswith("false-alarm share: of the incidents a term contributed to, the share officers marked False alarm")


def test_a_period_without_posts_and_a_bad_days_value(judged, capsys):
    url, _ = judged
    assert terms_json(capsys, "--days", "1", "--until", "2025-01-01", "--db", url)["terms"] == []
    assert cli.main(["terms", "--days", "1", "--until", "2025-01-01", "--db", url]) == 0
    assert capsys.readouterr().out.strip().endswith("no stored post matched any hazard term")
    with pytest.raises(SystemExit):
        cli.main(["terms", "--days", "0"])
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["800000", "99999999999"])
def test_more_days_than_the_calendar_holds_mean_every_stored_post(judged, capsys, days):
    """Once an OverflowError traceback: a period reaching before year 1."""
    url, _ = judged
    everything = terms_json(capsys, "--days", days, "--until", UNTIL, "--db", url)
    assert everything["since"] == "2000-01-01T08:00:00+08:00"
    assert everything["terms"] == terms_json(capsys, "--days", "2", "--until", UNTIL, "--db", url)["terms"]
