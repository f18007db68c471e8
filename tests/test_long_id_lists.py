"""A long flood cites thousands of posts: every query that takes a list of ids from the data
reads it in slices (`store.in_slices`), so SQLite, the embedded default, never refuses one for
having more bound parameters than it allows (32,766), and a detect run, the timeline exports
and the term report answer as they do for a short incident.

The limit is lowered here (SQLite's own `setlimit`) so that a few hundred posts cross it: any
statement that binds a data-sized IN list in one piece fails, as it would at 32,767 posts."""
from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from siaga import cli, detect, ingest, settings, store
from siaga.routing import Router
from siaga.sources import ReplaySource

WITA = timezone(timedelta(hours=8))
START = datetime(2026, 2, 3, 5, 0, tzinfo=WITA)
LIMIT = 60  # bound parameters a statement may have: above any one row's columns
SLICE = 7  # ids per IN list here, so that a sliced list stays within LIMIT
REPORTS = ["Banjir di Desa {v}, air masuk rumah warga {n} cm", "{v} banjir lagi, jalan tergenang air sejak subuh ({n})",
           "air sungai meluap di {v}, banjir setinggi {n} cm", "macet total di jalan dekat {v}, antrean {n} meter",
           "jalan di {v} ditutup karena banjir, kendaraan putar balik ({n})"]


def feed(path: Path, posts: int, seed: int = 4) -> Path:
    """A morning's flood in two villages: `posts` reports from as many accounts over three hours."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for i in range(posts):
            text = rng.choice(REPORTS).format(v=rng.choice(["Sangsit", "Kubutambahan"]), n=rng.randint(10, 90))
            at = START + timedelta(seconds=i * 3 * 3600 // posts)
            out.write(json.dumps({"id": f"f{i}", "created_at": at.isoformat(), "text": text, "author": f"warga{i}"}) + "\n")
    return path


def tight(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite refuses a statement with more than LIMIT bound parameters on `url` from now on."""
    engine = store.engine_for(url)
    event.listen(engine, "connect", lambda conn, _: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT))
    monkeypatch.setattr(engine.dialect, "insertmanyvalues_max_parameters", LIMIT)  # multi-row INSERTs too
    monkeypatch.setattr(store, "IN_SLICE", SLICE)
    engine.dispose()


def run_morning(url: str, path: Path) -> None:
    router = Router.load(settings.config_dir() / "routing.yaml")
    ingest.ingest(ReplaySource("warga", path), START + timedelta(hours=4), url)
    for hours in (1, 2, 3, 4):
        detect.run((START + timedelta(hours=hours)).astimezone(timezone.utc), router, url)


def stored(url: str) -> dict[str, list[tuple]]:
    """What the runs wrote that a person sees: incidents, their detections and areas, messages."""
    with store.session_scope(url) as session:
        return {
            "incidents": sorted(session.execute(sa.select(
                store.Incident.id, store.Incident.hazard, store.Incident.level, store.Incident.area_code,
                store.Incident.state, store.Incident.severity, store.Incident.district)).all()),
            "alerts": sorted((a.id, a.incident_id, a.observed, json.dumps(a.explanation, sort_keys=True))
                             for a in session.scalars(sa.select(store.Alert))),
            "areas": sorted(session.execute(sa.select(
                store.IncidentArea.incident_id, store.IncidentArea.level, store.IncidentArea.area_code)).all()),
            "outbox": sorted(session.execute(sa.select(store.OutboxMessage.dedup_key, store.OutboxMessage.payload)).all(),
                             key=lambda r: r[0]),
        }


def exports(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    out = {}
    for fmt in ("csv", "timeline-csv", "geojson"):
        target = tmp_path / f"{fmt}.out"
        assert cli.main(["export", "--from", "2026-02-03", "--to", "2026-02-03", "--format", fmt, "--out", str(target), "--db", url]) == 0
        out[fmt] = target.read_text()
    capsys.readouterr()
    assert cli.main(["terms", "--json", "--days", "2", "--until", "2026-02-04T00:00", "--db", url]) == 0
    printed = capsys.readouterr().out
    out["terms"] = json.loads(printed[printed.index("{"):])  # after the libraries' log lines
    return out


@pytest.fixture
def mornings(tmp_path, capsys, monkeypatch) -> tuple[dict, dict, dict, dict]:
    """The same morning stored and read twice: with SQLite's usual limit, and with LIMIT."""
    path = feed(tmp_path / "feed.jsonl", 400)
    results = []
    for name in ("usual", "tight"):
        url = f"sqlite:///{tmp_path / name}.db"
        store.migrate(url)
        with monkeypatch.context() as patch:
            if name == "tight":
                tight(url, patch)
            run_morning(url, path)
            (tmp_path / name).mkdir()
            results += [stored(url), exports(url, tmp_path / name, capsys)]
        store.engine_for(url).dispose()
    return tuple(results)  # type: ignore[return-value]


def test_the_limit_bites_an_incident_this_long(tmp_path, monkeypatch):
    """Without slices, reading this morning's posts by id is refused under LIMIT."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    store.migrate(url)
    ingest.ingest(ReplaySource("warga", feed(tmp_path / "feed.jsonl", 400)), START + timedelta(hours=4), url)
    tight(url, monkeypatch)
    with store.session_scope(url) as session:
        ids = list(session.scalars(sa.select(store.Post.id)))
        with pytest.raises(sa.exc.OperationalError, match="too many SQL variables"):
            session.execute(sa.select(store.Post.id).where(store.Post.id.in_(ids))).all()
        assert sorted(p for among in store.in_slices(session, store.Post.id, ids)
                      for p in session.scalars(sa.select(store.Post.id).where(among))) == sorted(ids)
    store.engine_for(url).dispose()


def test_a_long_flood_is_detected_exported_and_reported_as_under_the_usual_limit(mornings):
    usual, usual_out, tight_, tight_out = mornings
    cited = max(len(json.loads(a[3]).get("post_ids") or []) for a in usual["alerts"])
    assert usual["incidents"] and cited > LIMIT, "the morning must cite more posts than LIMIT in one incident"
    assert tight_ == usual
    assert tight_out == usual_out
