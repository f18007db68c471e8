"""A typo in a hazard file at 3 a.m. must not switch detection off: an invalid set is refused,
the refusal is logged with file and line, and the last good set stays in force, in the
database-backed `hazard_lists.in_force` and in the running detect DAG."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from support.logs import errors_logged
from siaga import hazard_lists, store
from siaga.hazard_config import HazardConfigError
from siaga.hazards import HazardSet
from siaga.settings import config_dir
from siaga.sources.base import text_fingerprint

# "Air bah" (a deluge) is no term of the shipped lists; the good lists below add it to flood, so
# only they can raise a flood from posts that say nothing else.
EXTRA_TERM = "air bah"
AIR_BAH_TEXTS = [
    "Air bah di Desa Sangsit pagi ini",
    "air bah lagi di sangsit kec sawan",
    "Sangsit kena air bah, warga mengungsi",
    "Info air bah Desa Sangsit, Sawan. Hati-hati",
    "Dari subuh air bah di Sangsit",
]


def good_config(root: Path) -> Path:
    """A copy of the deployment's config whose flood list also has EXTRA_TERM."""
    shutil.copytree(config_dir(), root)
    flood = root / "hazards" / "flood.yaml"
    text = flood.read_text(encoding="utf-8")
    flood.write_text(text.replace("terms:\n", f"terms:\n  - {EXTRA_TERM}\n", 1), encoding="utf-8")
    return root


def break_flood(root: Path) -> tuple[Path, int]:
    """Replace EXTRA_TERM by a number (not a string: refused by the schema), so the refused set
    would not find it either; returns the file and the line operators must be told about."""
    flood = root / "hazards" / "flood.yaml"
    lines = flood.read_text(encoding="utf-8").splitlines()
    line = lines.index(f"  - {EXTRA_TERM}")
    lines[line] = "  - 42"
    flood.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return flood, line + 1


def flood_terms(hs: HazardSet, text: str) -> tuple[str, ...]:
    return next((m.terms for m in hs.classify(text) if m.hazard == "flood"), ())


def test_the_shipped_lists_do_not_know_the_extra_term(hazard_set):
    """What the tests below rely on: only the good copy raises a flood from these posts."""
    assert all(not hazard_set.classify(text) for text in AIR_BAH_TEXTS)


def test_a_valid_set_is_remembered_as_the_last_good_one(db_url, tmp_path):
    hazards = good_config(tmp_path / "config") / "hazards"
    with store.session_scope(db_url) as session:
        hs = hazard_lists.in_force(session, hazards)
    assert flood_terms(hs, AIR_BAH_TEXTS[0]) == (EXTRA_TERM,)
    with store.session_scope(db_url) as session:
        state = session.get(store.ConfigState, hazard_lists.STATE_NAME)
        assert state.fingerprint == hs.fingerprint()
        files = {name: text for name, text in state.content.items() if name != hazard_lists.TABLE_KEY}
        assert files == {p.name: p.read_text(encoding="utf-8") for p in hazards.glob("*.yaml")}
        assert "jl,jalan" in state.content[hazard_lists.TABLE_KEY].splitlines()  # the table it was validated with


def test_a_read_only_look_remembers_nothing(db_url, tmp_path):
    hazards = good_config(tmp_path / "config") / "hazards"
    with store.session_scope(db_url) as session:
        hazard_lists.in_force(session, hazards, remember=False)
    with store.session_scope(db_url) as session:
        assert session.get(store.ConfigState, hazard_lists.STATE_NAME) is None


def test_an_invalid_set_is_refused_and_the_last_good_one_stays(db_url, tmp_path):
    hazards = good_config(tmp_path / "config") / "hazards"
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session, hazards)
    flood, line = break_flood(tmp_path / "config")
    with pytest.raises(HazardConfigError):
        HazardSet.load(hazards)

    with errors_logged("siaga.hazard_lists") as refusals, store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session, hazards)

    assert kept.fingerprint() == good.fingerprint()
    assert flood_terms(kept, AIR_BAH_TEXTS[0]) == (EXTRA_TERM,)
    [refusal] = refusals
    assert refusal.startswith("REFUSED") and f"{flood}:{line}:5: terms[0]" in refusal
    with store.session_scope(db_url) as session:  # the refused set did not replace the good one
        assert session.get(store.ConfigState, hazard_lists.STATE_NAME).fingerprint == good.fingerprint()


def test_a_typo_in_the_abbreviation_table_keeps_the_last_good_set_in_force(db_url, tmp_path, monkeypatch):
    """The hazard lists read the deployment's abbreviations.csv too: a bad row there refuses
    them, and the last good set was then compiled again with that same bad table, which raised
    (detection off)."""
    root = good_config(tmp_path / "config")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(root))
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session, root / "hazards")
    table = root / "abbreviations.csv"
    table.write_text(table.read_text(encoding="utf-8") + "jl,jalan,raya\n", encoding="utf-8")

    with errors_logged("siaga.hazard_lists") as refusals, store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session, root / "hazards")

    assert kept.fingerprint() == good.fingerprint()
    assert flood_terms(kept, AIR_BAH_TEXTS[0]) == (EXTRA_TERM,)
    [refusal] = refusals
    assert refusal.startswith("REFUSED") and f"{table}:" in refusal


def test_a_folder_where_the_abbreviation_table_belongs_is_refused_and_the_last_good_set_stays(db_url, tmp_path, monkeypatch):
    """A folder named abbreviations.csv was skipped as if the table were absent: the lists were
    compiled without it (every "jl"/"kec" term silently stopped matching its expansion) and
    became the last good set, while `siaga check` refuses the same folder."""
    root = good_config(tmp_path / "config")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(root))
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session, root / "hazards")
    table = root / "abbreviations.csv"
    table.unlink()
    table.mkdir()

    with errors_logged("siaga.hazard_lists") as refusals, store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session, root / "hazards")

    assert kept.fingerprint() == good.fingerprint()
    [refusal] = refusals
    assert refusal.startswith("REFUSED") and f"{table}:" in refusal
    with store.session_scope(db_url) as session:
        assert session.get(store.ConfigState, hazard_lists.STATE_NAME).fingerprint == good.fingerprint()


def test_the_last_good_set_is_what_was_validated_not_a_later_save(db_url, tmp_path, monkeypatch):
    """An operator saving a broken file just after the lists were validated must not turn that
    broken text into the last good set."""
    root = good_config(tmp_path / "config")
    build = HazardSet.from_config

    def build_then_operator_saves(config):
        hs = build(config)
        break_flood(root)
        return hs

    monkeypatch.setattr(hazard_lists.HazardSet, "from_config", build_then_operator_saves)
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session, root / "hazards")
    monkeypatch.setattr(hazard_lists.HazardSet, "from_config", build)
    with store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session, root / "hazards")  # the broken save is refused
    assert kept.fingerprint() == good.fingerprint()
    assert flood_terms(kept, AIR_BAH_TEXTS[0]) == (EXTRA_TERM,)


def test_an_invalid_set_with_no_last_good_one_is_an_error(db_url, tmp_path):
    root = good_config(tmp_path / "config")
    flood, line = break_flood(root)
    with store.session_scope(db_url) as session:
        with pytest.raises(HazardConfigError, match=rf"{flood}:{line}:5: terms\[0\]"):
            hazard_lists.in_force(session, root / "hazards")


# -- processes starting side by side ---------------------------------------------------------

# A process that makes `fingerprint` the last good set at the wall-clock moment `start`, so
# that several read "no row yet" together, as detect and the mapped tag tasks do on a new
# database.
REMEMBER_AT = """
import sys, time
from siaga import hazard_lists, store
url, start, fingerprint = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with store.session_scope(url) as session:
    store.engine(url).connect().close()
    time.sleep(max(0.0, start - time.time()))
    hazard_lists._remember(session, fingerprint, {"flood.yaml": fingerprint})
"""


def test_processes_remembering_the_lists_at_once_all_succeed(db_url):
    """Every process stores the set it validated without failing on the key, whichever commits
    first, and the row holds one of their sets whole (fingerprint and content together)."""
    import subprocess
    import sys
    import time

    for round_ in range(3):
        with store.session_scope(db_url) as session:
            session.execute(sa.delete(store.ConfigState))
        start = time.time() + 2.0
        children = [subprocess.Popen([sys.executable, "-c", REMEMBER_AT, db_url, str(start), f"set-{round_}-{i}"],
                                     stderr=subprocess.PIPE, text=True) for i in range(6)]
        failures = [err for child in children for err in [child.communicate(timeout=60)[1]] if child.returncode]
        assert not failures, failures[0]
        with store.session_scope(db_url) as session:
            state = session.get(store.ConfigState, hazard_lists.STATE_NAME)
            assert state.fingerprint.startswith(f"set-{round_}-")
            assert state.content == {"flood.yaml": state.fingerprint}


def test_a_row_written_after_this_process_looked_is_overwritten_not_collided_with(db_url, tmp_path, monkeypatch):
    """The race above made certain: another process stores its set between this one's look
    (no row) and its write."""
    hazards = good_config(tmp_path / "config") / "hazards"
    with store.session_scope(db_url) as session:
        looked = session.get(store.ConfigState, hazard_lists.STATE_NAME)
        with store.session_scope(db_url) as other:
            other.add(store.ConfigState(name=hazard_lists.STATE_NAME, fingerprint="other", content={}, updated_at=store.utcnow()))
        monkeypatch.setattr(session, "get", lambda *args, **kwargs: looked)
        hs = hazard_lists.in_force(session, hazards)
    with store.session_scope(db_url) as session:
        state = session.get(store.ConfigState, hazard_lists.STATE_NAME)
        assert (state.fingerprint, set(state.content)) == (hs.fingerprint(), {p.name for p in hazards.glob("*.yaml")} | {hazard_lists.TABLE_KEY})


# -- in the DAG ------------------------------------------------------------------------------

T0 = datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)  # 10:00 WITA


def add_posts(url: str, texts: list[str], start: datetime) -> None:
    with store.session_scope(url) as session:
        for i, text in enumerate(texts):
            session.add(store.Post(
                source="test", source_id=f"air-bah-{i}", created_at=start + timedelta(minutes=3 * i),
                author=f"warga{i}", text=text, url=None, lat=None, lon=None,
                text_hash=text_fingerprint(text), raw={"i": i},
            ))


def run_detect_dag(when: datetime) -> str:
    from airflow.dag_processing.dagbag import DagBag

    from siaga.settings import REPO_ROOT

    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "siaga_detect.py")).get_dag("siaga_detect")
    return str(dag.test(logical_date=when).state)


@pytest.mark.airflow
def test_the_detect_dag_keeps_the_last_good_lists_when_a_file_breaks(sqlite_url, airflow_db, tmp_path, monkeypatch):
    root = good_config(tmp_path / "config")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(root))
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    monkeypatch.setenv("SIAGA_GAZETTEER", "buleleng")

    with errors_logged("siaga.hazard_lists") as refusals:
        assert run_detect_dag(T0) == "success"  # the good lists become the last good set
        assert refusals == []
        flood, line = break_flood(root)
        add_posts(sqlite_url, AIR_BAH_TEXTS, T0 + timedelta(minutes=1))
        assert run_detect_dag(T0 + timedelta(minutes=20)) == "success"

    [refusal] = refusals
    assert refusal.startswith("REFUSED the hazard lists") and "keeping the last good set" in refusal
    assert f"{flood}:{line}:5: terms[0]" in refusal
    with store.session_scope(sqlite_url) as session:
        (incident,) = session.scalars(sa.select(store.Incident)).all()
        assert (incident.hazard, incident.village) == ("flood", "Sangsit")
        alert = session.scalars(sa.select(store.Alert)).first()
        assert EXTRA_TERM in alert.explanation["terms"]
        assert session.scalar(sa.select(sa.func.count()).select_from(store.OutboxMessage)) >= 1


def test_a_bad_incident_gap_or_felt_value_is_refused_and_the_last_good_values_stay(db_url, tmp_path):
    """The hazard settings beside the terms (areal, felt_authors, detection.incident_gap_minutes)
    are refused like any other field, naming file, line and field, and the last good values stay
    in force."""
    root = tmp_path / "config"
    shutil.copytree(config_dir(), root)
    drought, quake = root / "hazards" / "drought.yaml", root / "hazards" / "earthquake.yaml"
    drought.write_text(drought.read_text(encoding="utf-8").replace("incident_gap_minutes: 1440", "incident_gap_minutes: 600"),
                       encoding="utf-8")
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session, root / "hazards")
    assert good.hazards["drought"].incident_gap_minutes == 600

    text = drought.read_text(encoding="utf-8").replace("incident_gap_minutes: 600", "incident_gap_minutes: a day")
    drought.write_text(text, encoding="utf-8")
    quake.write_text(quake.read_text(encoding="utf-8").replace("felt_authors: 10", "felt_authors: -3"), encoding="utf-8")
    with errors_logged("siaga.hazard_lists") as refusals, store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session, root / "hazards")

    assert kept.fingerprint() == good.fingerprint()
    assert kept.hazards["drought"].incident_gap_minutes == 600 and kept.hazards["earthquake"].felt_authors == 10
    [refusal] = refusals
    line = text.splitlines().index("  incident_gap_minutes: a day") + 1
    assert f"{drought}:{line}:25: detection.incident_gap_minutes: 'a day' is not of type 'integer'" in refusal
    assert f"{quake}:" in refusal and "felt_authors: -3 is less than the minimum of 1" in refusal
