"""Backtest: candidate hazard lists replayed over stored posts, alerts diffed against the lists in
force, scored on labelled posts; the database is only read."""
from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from siaga import backtest, cli, ingest, settings, store
from siaga_dev.scenario import HOURS, START
from siaga.sources import ReplaySource
from support.history import judge_demo, store_demo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def history(sqlite_url, monkeypatch):
    """The demo scenario stored, as the ingest DAG would have stored it."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    store_demo(sqlite_url)
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
    assert "  traffic_jam: hazard removed" in out.splitlines()
    assert re.search(r"^  traffic_jam \(hazard removed\): \d+ stored posts \(\d+ in Buleleng\) reported it$", out, re.M)
    assert "      why: traffic_jam is not in the candidate lists" in out.splitlines()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "flood.yaml").write_text("id: flood\nterms: [banjir\n")
    assert cli.main(["backtest", "--config", str(broken), "--from", start, "--to", end]) == 1
    assert "flood.yaml" in capsys.readouterr().err


def test_cli_json_lists_the_same_removed_alert_with_its_reason(history, tmp_path, capsys):
    start, end = START.isoformat(), (START + timedelta(hours=HOURS)).isoformat()
    assert cli.main(["backtest", "--config", str(candidate_without(tmp_path, "traffic_jam.yaml")), "--from", start, "--to", end,
                     "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["hazard"] for e in doc["removed"]] == ["traffic_jam"] and doc["added"] == []
    assert doc["removed"][0]["why"] == ["traffic_jam is not in the candidate lists"] and doc["removed"][0]["post_ids"]


# --- explanations, through the command line ------------------------------------------------------

FROM, TO = "2026-01-15T06:00", "2026-01-15T14:00"  # the demo morning and after, WITA


def candidate_config(tmp_path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the config folder with line edits per file (old line -> new text)."""
    target = tmp_path / "candidate"
    shutil.copytree(settings.config_dir(), target)
    for name, changes in edits.items():
        path = target / name
        lines = path.read_text(encoding="utf-8").splitlines()
        for old, new in changes:
            lines[lines.index(old)] = new
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def backtest_cli(capsys, config: Path, start: str = FROM, end: str = TO) -> tuple[int, str, str]:
    code = cli.main(["backtest", "--config", str(config), "--from", start, "--to", end])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


AIR_BAH = [  # five people in Tejakula saying "air bah", which no list in force knows
    "Air bah datang tiba-tiba di Desa Tejakula",
    "Ada air bah di Tejakula, hati-hati",
    "Air bah\ndi Tejakula \u202eawas",  # a newline and a bidi override: shown on one line, without it
    "Lihat air bah di Tejakula barusan",
    "air bah lewat Tejakula pagi ini",
]


@pytest.fixture
def history_with_air_bah(history, tmp_path):
    feed = tmp_path / "air_bah.jsonl"
    at = START + timedelta(hours=6)  # noon WITA, far from the demo's flood in Sangsit
    feed.write_text("".join(
        json.dumps({"id": f"ab-{i}", "created_at": (at + timedelta(minutes=3 * i)).isoformat(), "text": text,
                    "author": f"tejakula{i}", "url": f"https://example.org/ab/{i}"}) + "\n"
        for i, text in enumerate(AIR_BAH)), encoding="utf-8")
    ingest.ingest(ReplaySource("extra", feed), at + timedelta(hours=1), history)
    return history


def test_an_added_term_is_counted_shown_and_named_as_the_reason_for_its_alert(history_with_air_bah, tmp_path, capsys):
    config = candidate_config(tmp_path, {"hazards/flood.yaml": [("  - banjir kiriman", "  - banjir kiriman\n  - air bah")]})
    code, out, _ = backtest_cli(capsys, config)
    assert code == 0
    lines = out.splitlines()
    assert "Config difference (candidate against the lists in force):" in lines
    assert "  flood: terms added: 'air bah'" in lines
    effect = lines.index("  flood term 'air bah' (added): matches 5 stored posts (5 in Buleleng); 5 of them would join flood")
    examples = lines[effect + 1:effect + 4]
    assert len(examples) == 3 and all(x.startswith("      #") and x.endswith('"') for x in examples)
    assert any(x.endswith(' 2026-01-15 12:06 * "Air bah di Tejakula awas"') for x in examples), examples
    assert not lines[effect + 4].startswith("      #"), "at most three examples"
    added = lines.index("ADDED (candidate only): 1")
    assert lines[added + 1].startswith("  + flood in village Tejakula (")
    assert lines[added + 2:added + 4] == [
        "      why: term 'air bah' adds 5 posts in Tejakula",
        "      why: no post counts for flood in Tejakula with the in-force lists",
    ]
    assert "REMOVED (in force only): 0" in lines and "CHANGED: 0" in lines


def test_a_removed_term_says_what_it_matched(history, tmp_path, capsys):
    """The operators' check: a term dropped from flood.yaml is reported with its stored posts."""
    config = candidate_config(tmp_path, {"hazards/flood.yaml": [("  - kebanjiran", "")]})
    code, out, _ = backtest_cli(capsys, config)
    assert code == 0
    lines = out.splitlines()
    assert "  flood: terms removed: 'kebanjiran'" in lines
    effect = lines.index("  flood term 'kebanjiran' (removed): matches 1 stored post (1 in Buleleng); "
                         "0 of them would leave flood (1 still matched by other phrases)")
    assert lines[effect + 1].endswith('"Hujan deras dari subuh, Desa Sangsit kebanjiran"')
    assert "ADDED (candidate only): 0" in lines and "REMOVED (in force only): 0" in lines


def test_a_removed_term_that_decides_posts_explains_the_alert_it_takes_away(history_with_air_bah, tmp_path, capsys, monkeypatch):
    """In force: lists with "air bah"; the candidate: the shipped lists, without it."""
    in_force = candidate_config(tmp_path / "deployed", {"hazards/flood.yaml": [("  - banjir kiriman", "  - banjir kiriman\n  - air bah")]})
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(in_force))
    code, out, _ = backtest_cli(capsys, REPO / "config")
    assert code == 0
    lines = out.splitlines()
    assert "  flood: terms removed: 'air bah'" in lines
    assert "  flood term 'air bah' (removed): matches 5 stored posts (5 in Buleleng); 5 of them would leave flood" in lines
    removed = lines.index("REMOVED (in force only): 1")
    assert lines[removed + 1].startswith("  - flood in village Tejakula (")
    assert lines[removed + 2:removed + 4] == [
        "      why: term 'air bah' no longer matches 5 posts in Tejakula",
        "      why: no post counts for flood in Tejakula with the candidate lists",
    ]


def test_raising_min_posts_says_the_peak_was_below_it(history, tmp_path, capsys):
    config = candidate_config(tmp_path, {"hazards/flood.yaml": [("  min_posts: 3", "  min_posts: 8")]})
    code, out, _ = backtest_cli(capsys, config)
    assert code == 0
    assert "  flood: detection.min_posts 3 -> 8" in out.splitlines()
    removed = re.search(r"^  - flood in village Sangsit \(.*\): .*, peak (\d+) posts\n      why: peak (\d+) posts < min_posts 8 \(candidate\)$", out, re.M)
    assert removed, out
    assert removed.group(1) == removed.group(2) and int(removed.group(1)) < 8


def test_areal_felt_and_incident_gap_changes_are_listed_as_written(history, tmp_path, capsys):
    config = candidate_config(tmp_path, {"hazards/flood.yaml": [
        ("areal: true", "felt_authors: 50"), ("  sensitivity: 0.6", "  sensitivity: 0.6\n  incident_gap_minutes: 600")]})
    code, out, _ = backtest_cli(capsys, config)
    assert code == 0
    lines = out.splitlines()
    assert "  flood: areal true -> false" in lines
    assert "  flood: felt_authors unset -> 50" in lines
    assert "  flood: detection.incident_gap_minutes unset -> 600" in lines


def test_the_candidate_folders_detection_settings_are_compared_and_used(history, tmp_path, capsys):
    config = candidate_config(tmp_path, {"detection.yaml": [("incident_gap_minutes: 120", "incident_gap_minutes: 10")]})
    code, out, _ = backtest_cli(capsys, config)
    assert code == 0
    assert "  detection.yaml: incident_gap_minutes 120 -> 10" in out.splitlines()


def test_a_folder_where_the_candidates_detection_settings_belong_is_refused(history, tmp_path, capsys):
    """A folder named detection.yaml in the candidate was skipped as if absent: the backtest ran
    with the settings in force and reported no setting change, which `siaga check` refuses."""
    config = candidate_config(tmp_path, {})
    (config / "detection.yaml").unlink()
    (config / "detection.yaml").mkdir()
    code, out, err = backtest_cli(capsys, config)
    assert code == 1 and out == ""
    assert err.startswith("siaga backtest: the detection settings are invalid:") and f"{config / 'detection.yaml'}:" in err


def test_an_empty_range_says_which_range_the_database_holds(history, tmp_path, capsys, monkeypatch):
    code, out, err = backtest_cli(capsys, settings.config_dir(), "2025-06-01", "2025-06-02")
    assert code == 1 and out == ""
    assert err.strip() == ("siaga backtest: no posts between 2025-06-01 00:00 and 2025-06-02 00:00 WITA; "
                           "the database holds 122 posts, from 2026-01-15 06:01 to 2026-01-15 11:54 WITA")
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    store.migrate(empty)  # an existing database without posts (a missing file is refused by name)
    monkeypatch.setenv("SIAGA_DB_URL", empty)
    code, _, err = backtest_cli(capsys, settings.config_dir())
    assert code == 1 and err.strip().endswith("; the database holds no posts")


@pytest.mark.parametrize("start, end", [(TO, FROM), (FROM, FROM), ("2026-01-15T16:00+08:00", "2026-01-15T07:00Z")])
def test_an_impossible_range_is_refused(history, capsys, start, end):
    code, out, err = backtest_cli(capsys, settings.config_dir(), start, end)
    assert code == 2 and out == ""
    assert err.startswith("siaga backtest: --from ") and "is not before --to" in err and "nothing to replay" in err


def test_naive_times_are_bali_time(history, capsys):
    naive = backtest_cli(capsys, settings.config_dir(), "2026-01-15T06:00", "2026-01-15T12:00")
    aware = backtest_cli(capsys, settings.config_dir(), "2026-01-14T22:00Z", "2026-01-15T04:00Z")
    assert naive[0] == aware[0] == 0 and naive[1] == aware[1]
    assert naive[1].startswith("backtest 2026-01-15 06:00 .. 2026-01-15 12:00 WITA: 122 stored posts")


# --- officers' verdicts as labels ----------------------------------------------------------------


@pytest.fixture
def judged_history(history):
    """The jam on Jalan Ahmad Yani called a false alarm, the flood in Sangsit confirmed."""
    judge_demo(history)
    return history


def test_backtest_scores_the_lists_against_the_officers_verdicts(judged_history, tmp_path, capsys):
    code, out, _ = backtest_cli(capsys, candidate_without(tmp_path, "traffic_jam.yaml"))
    assert code == 0
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("Officers' verdicts in this range:"))
    assert head.startswith("Officers' verdicts in this range: 1 confirmed (resolved by a person), 1 false alarm(s); their ")
    assert "  confirmed incidents still alerted:  in force 1/1, candidate 1/1" in lines
    assert "  false alarms no longer alerted:     in force 0/1, candidate 1/1" in lines
    jam = next(line for line in lines if line.startswith("  incident #") and "traffic_jam" in line)
    assert "no longer alerted (a false alarm); false alarm by U_DISHUB at 2026-01-15 12:31 WITA" in jam
    posts = next(line for line in lines if line.startswith("  posts of false alarms no longer matched:"))
    n = int(posts.rsplit("/", 1)[1])
    assert posts.endswith(f"in force 0/{n}, candidate {n}/{n}") and n > 0


def test_losing_a_confirmed_incident_is_shown(judged_history, tmp_path, capsys):
    code, out, _ = backtest_cli(capsys, candidate_without(tmp_path, "flood.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert "  confirmed incidents still alerted:  in force 1/1, candidate 0/1" in lines
    assert any(line.startswith("  incident #") and "flood in Sangsit: no longer alerted (confirmed); resolved by U_BPBD at 2026-01-15 12:32 WITA" in line
               for line in lines)


def test_a_reopened_incident_loses_its_verdict_and_machine_closings_give_none(judged_history):
    from siaga import incidents, verdicts

    start, end = START, START + timedelta(hours=8)
    with store.session_scope(judged_history) as session:
        found = verdicts.verdicts(session, start, end)
        assert sorted((v.hazard, v.verdict, v.actor) for v in found) == [
            ("flood", "resolved", "U_BPBD"), ("traffic_jam", "false_alarm", "U_DISHUB")]
        assert all(v.post_ids for v in found)
        flood = next(v for v in found if v.hazard == "flood")
        incidents.transition(session, flood.incident_id, "open", "U_BPBD", START + timedelta(hours=7))
        assert [v.hazard for v in verdicts.verdicts(session, start, end)] == ["traffic_jam"]
