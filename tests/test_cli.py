"""The `siaga` command line: the `siaga tag` contract as measured from outside, and the operator
commands' errors."""
from __future__ import annotations

import json
import subprocess
import sys

from siaga import cli

CONTRACT_PLACE_KEYS = {"kind", "name", "village", "district", "code", "lon", "lat", "confidence", "span", "reason"}


def run_siaga(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "siaga.cli", *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_tag_contract_one_object_per_post_in_order():
    posts = [
        {"id": "a", "text": "Banjir setinggi lutut di Desa Sangsit, Kec. Sawan"},
        {"id": 2, "text": "Selamat pagi semua"},
        {"id": "c", "text": "macet parah di Denpasar"},
        {"id": "d", "text": "pohon tumbang", "lat": -8.1125, "lon": 115.0905},
    ]
    out = run_siaga(["tag"], "\n".join(json.dumps(p) for p in posts) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", 2, "c", "d"]
    for row in rows:
        assert set(row) == {"id", "hazards", "places", "in_region"}
        for place in row["places"]:
            assert set(place) == CONTRACT_PLACE_KEYS
    flood = rows[0]
    assert flood["hazards"] == ["flood"] and flood["in_region"] is True
    village = next(p for p in flood["places"] if p["kind"] == "village")
    assert (village["village"], village["district"]) == ("Sangsit", "Sawan")
    start, end = village["span"]
    assert posts[0]["text"][start:end] == "Sangsit"
    assert rows[1]["hazards"] == [] and rows[1]["in_region"] is False
    assert rows[2]["hazards"] == ["traffic_jam"] and rows[2]["in_region"] is False
    point = rows[3]
    assert "fallen_tree" in point["hazards"] and point["in_region"] is True
    assert any(p["span"] is None and p["village"] for p in point["places"])


def test_tag_reports_a_bad_line_and_keeps_going():
    out = run_siaga(["tag"], '{"id": 1, "text": "banjir"}\nnot json\n{"id": 3, "text": "gempa"}\n')
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("id") for r in rows] == [1, None, 3]
    assert "line 2" in rows[1]["error"] and "stdin line 2" in out.stderr


def test_tag_reports_hostile_lines_and_goes_on():
    """Deep nesting once stopped the whole stream; bytes that are not UTF-8, numbers that are
    not numbers and lone surrogates must each cost one line too."""
    lines = [
        b'{"id": 1, "text": "banjir di Sangsit"}',
        b'{"id": 2, "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"id": 3, "text": "air \xff naik"}',
        b'{"id": 4, "text": "gempa", "lat": NaN}',
        b'{"id": 5, "text": "x", "lon": 1' + b"0" * 5000 + b"}",
        b'{"id": "\\ud800", "text": "longsor"}',
        '{"id": 7, "text": "macet\u2028di Seririt"}'.encode(),
        b'{"id": 8, "text": "pohon tumbang", "lat": "-8.11", "lon": 115.09}',
    ]
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input=b"\n".join(lines) + b"\n", capture_output=True, timeout=120)
    assert out.returncode == 1
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, None, None, None, None, None, 7, 8]  # one object per line, in order
    assert all(set(r) == {"id", "error"} for r in rows[1:6])
    errors = [r["error"] for r in rows[1:6]]
    for n, words in zip(range(2, 7), ("nested deeper", "not valid UTF-8", "field 'lat'", "field 'lon'", "lone surrogate")):
        assert errors[n - 2].startswith(f"line {n}: ") and words in errors[n - 2], errors[n - 2]
        assert f"stdin line {n}: " in out.stderr.decode()
    assert set(rows[7]) == {"id", "hazards", "places", "in_region"} and rows[7]["in_region"] is True


def test_tag_explain_says_why(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": 1, "text": "Banjir diskon besar! Tapi banjir sepinggang di Sangsit"}\n'))
    assert cli.main(["tag", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "hazard flood: MATCH" in text
    assert "vetoed by" in text and "severity cues" in text
    assert "place village 'Sangsit' [Sangsit, Sawan]" in text


def test_hazards_check_refuses_a_broken_list(tmp_path, capsys):
    bad = tmp_path / "hazards"
    bad.mkdir()
    (bad / "flood.yaml").write_text("id: flood\nlabels: {id: Banjir, en: Flood}\nagency: bpbd\nterms: banjir\n")
    assert cli.main(["hazards", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "flood.yaml" in err and "terms" in err


def test_hazards_check_passes_the_repository_lists(capsys):
    assert cli.main(["hazards", "check"]) == 0
    assert "ok" in capsys.readouterr().out


def test_hazards_check_of_a_config_folder_checks_its_hazard_lists_only(capsys):
    """Not routing.yaml or aliases.yaml read as if they were hazard lists."""
    from siaga import settings

    assert cli.main(["hazards", "check", str(settings.config_dir())]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == f"{settings.config_dir() / 'hazards'}: ok (0 warning(s))" and out.err == ""


def test_outbox_retry_requeues_only_dead_letters(sqlite_url, monkeypatch, capsys):
    from datetime import datetime, timezone

    from siaga import store

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low", opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        session.add(store.OutboxMessage(dedup_key="k", incident_id=incident.id, receiver="bpbd", channel="#c", kind="new", payload={}, state="dead", attempts=8, next_attempt_at=t))
    assert cli.main(["outbox", "--retry", "1"]) == 0
    assert cli.main(["outbox", "--retry", "1"]) == 1  # no longer dead
    with store.session_scope(sqlite_url) as session:
        row = session.get(store.OutboxMessage, 1)
        assert row.state == "pending" and row.attempts == 1  # a retry checks Slack before posting


def test_quarantine_counts_bad_lines_with_where_and_why(sqlite_url, monkeypatch, capsys, tmp_path):
    from datetime import datetime, timezone

    from siaga import ingest
    from siaga.sources import ReplaySource

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1", "created_at": "2026-01-15T08:00:00+08:00", "text": "banjir"}\n{broken\n')
    ingest.ingest(ReplaySource("feed", feed), datetime(2026, 1, 16, tzinfo=timezone.utc), sqlite_url)
    assert cli.main(["quarantine", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_source"] == {"feed": 1}
    (entry,) = report["latest"]
    assert entry["location"] == "feed.jsonl:2" and "not valid JSON" in entry["reason"]


def test_outbox_summary_counts_states(sqlite_url, monkeypatch, capsys):
    from datetime import datetime, timezone

    from siaga import store

    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with store.session_scope(sqlite_url) as session:
        incident = store.Incident(hazard="flood", level="village", area_code="x", area_name="X", state="open", severity="low", opened_at=t, last_activity_at=t)
        session.add(incident)
        session.flush()
        for i, state in enumerate(["sent", "sent", "pending", "dead"]):
            session.add(store.OutboxMessage(dedup_key=str(i), incident_id=incident.id, receiver="bpbd", channel="#c", kind="new", payload={}, state=state, next_attempt_at=t))
    assert cli.main(["outbox", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["states"] == {"sent": 2, "pending": 1, "dead": 1}
    assert [d["id"] for d in report["dead"]] == [4]
