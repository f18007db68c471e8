"""A time a person types without a zone is WITA (vocabulary: "dates typed by people ... are in
this zone"), in every command and on the pages alike. `siaga backtest --from` and `siaga terms
--until` read "2026-12-05T10:00" as 10:00 WITA; `siaga export --from` and the incident list's
date filters read the same text as 10:00 UTC (18:00 WITA)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from siaga import cli, store
from siaga.cli.config_cmds import when
from siaga.timelines.filters import parse_day
from siaga.vocabulary import LOCAL_TZ

OPENED = datetime(2026, 12, 5, 10, 30, tzinfo=LOCAL_TZ)  # 02:30 UTC


def exported(url: str, start: str, end: str, capsys) -> list[str]:
    assert cli.main(["export", "--from", start, "--to", end, "--db", url, "--out", "-"]) == 0
    return [row["incident_id"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out))]


def test_export_reads_a_time_without_a_zone_as_wita(db_url, capsys):
    with store.session_scope(db_url) as session:
        session.add(store.Incident(
            hazard="flood", level="village", area_code="51.08.06.2001", area_name="Sangsit", village="Sangsit",
            district="Sawan", state="open", severity="low", posts=3, authors=3, notified_posts=3,
            opened_at=OPENED, last_activity_at=OPENED,
        ))
    assert len(exported(db_url, "2026-12-05T10:00", "2026-12-05T11:00", capsys)) == 1
    assert exported(db_url, "2026-12-05T18:00", "2026-12-05T19:00", capsys) == []
    assert len(exported(db_url, "2026-12-05T02:00Z", "2026-12-05T03:00Z", capsys)) == 1  # a zone given is kept


@pytest.mark.parametrize("text", ["2026-12-05T10:00", "2026-12-05T23:59:59.123", "2026-12-05T00:00:00", "2000-01-02T07:00"])
def test_every_reader_of_a_typed_time_gives_the_same_instant(text):
    assert parse_day(text) == when(text) == datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ)
    assert parse_day(text, end=True) == when(text)
    assert parse_day(text).astimezone(timezone.utc) == datetime.fromisoformat(text).replace(tzinfo=timezone.utc) - timedelta(hours=8)
