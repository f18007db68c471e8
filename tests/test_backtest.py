"""Backtest: candidate hazard lists replayed over stored posts, alerts diffed against the lists in
force, scored on labelled posts; the database is only read."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from siaga import backtest, cli, ingest, settings, store
from siaga_dev.scenario import HOURS, START
from siaga.sources import ReplaySource

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def history(sqlite_url, monkeypatch):
    """The demo scenario stored, as the ingest DAG would have stored it."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    ingest.ingest(ReplaySource("demo", REPO / "scenarios" / "demo.jsonl"), START + timedelta(hours=HOURS), sqlite_url)
    return sqlite_url


def candidate_without(tmp_path, term_file: str) -> Path:
    target = tmp_path / "candidate" / "hazards"
    shutil.copytree(settings.config_dir() / "hazards", target)
    (target / term_file).unlink()
    return target.parent


def test_same_lists_change_nothing(history):
    result = backtest.run_backtest(backtest.candidate_lists(settings.config_dir()), START, START + timedelta(hours=HOURS), history, progress=None)
    kinds = {(e.hazard, e.level) for e in result.in_force}
    assert ("flood", "village") in kinds and ("traffic_jam", "road") in kinds
    assert result.added == [] and result.removed == [] and result.changed == []
    assert result.labelled_posts == result.posts > 100
    assert result.scores_in_force["flood"].recall == 1.0 and result.scores_in_force["flood"].precision == 1.0


def test_dropping_a_hazard_list_shows_its_alerts_removed(history, tmp_path):
    candidate = backtest.candidate_lists(candidate_without(tmp_path, "flood.yaml"))
    result = backtest.run_backtest(candidate, START, START + timedelta(hours=HOURS), history, progress=None)
    assert [e.hazard for e in result.removed] == ["flood"]
    assert result.removed[0].area_name == "Sangsit"
    assert result.scores_candidate["flood"].recall == 0.0


def test_backtest_writes_nothing(history):
    def counts():
        with store.session_scope(history) as session:
            models = (store.Alert, store.Incident, store.OutboxMessage, store.Geotag, store.ConfigState)
            return [session.scalar(sa.select(sa.func.count()).select_from(m)) for m in models]

    before = counts()
    backtest.run_backtest(backtest.candidate_lists(settings.config_dir()), START, START + timedelta(hours=HOURS), history, progress=None)
    assert counts() == before == [0, 0, 0, 0, 0]


def test_cli_prints_the_diff_and_refuses_invalid_lists(history, tmp_path, capsys):
    start, end = START.isoformat(), (START + timedelta(hours=HOURS)).isoformat()
    assert cli.main(["backtest", "--config", str(candidate_without(tmp_path, "traffic_jam.yaml")), "--from", start, "--to", end]) == 0
    out = capsys.readouterr().out
    assert "REMOVED (in force only): 1" in out and "traffic_jam in road" in out
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "flood.yaml").write_text("id: flood\nterms: [banjir\n")
    assert cli.main(["backtest", "--config", str(broken), "--from", start, "--to", end]) == 1
    assert "flood.yaml" in capsys.readouterr().err
