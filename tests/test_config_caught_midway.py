"""Config files caught in the middle of a change: emptied by `cp` or an editor before the new
text is written, cut off in their comment header, replaced by a link to nowhere, or sharing
hazards/ with an editor's lock and backup files. Each must be refused with its file (the last
good version staying in force) or ignored, never read as "nothing set": that silently put the
defaults, or no source at all, in force and kept them as the last good version."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from siaga import cli, detection_config, hazard_lists, last_good, pipeline, settings, store

TUNED = "quiet_period_minutes: 600\nincident_gap_minutes: 240\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the shipped config folder, the deployment's for this test."""
    target = tmp_path / "config"
    shutil.copytree(settings.config_dir(), target)
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(target))
    return target


def check(capsys, folder: Path) -> tuple[int, str]:
    code = cli.main(["check", str(folder)])
    return code, capsys.readouterr().err


def detect_settings(url: str) -> detection_config.DetectSettings:
    with store.session_scope(url) as session:
        return detection_config.in_force(session)


@pytest.mark.parametrize("blank", ["", "  \n\t\n"])
def test_an_emptied_detection_file_is_refused_not_read_as_the_defaults(db_url, folder, capsys, blank):
    """`cp new.yaml detection.yaml` truncates first: a detect run reading in between ran with the
    default quiet period (incidents tuned to stay open 10 hours resolved after 3, "resolved" sent
    to Slack) and kept the empty text as the last good version."""
    path = folder / detection_config.FILE_NAME
    path.write_text(TUNED, encoding="utf-8")
    tuned = detect_settings(db_url)
    assert tuned.quiet_period == timedelta(hours=10)
    path.write_text(blank, encoding="utf-8")
    assert detect_settings(db_url) == tuned
    with store.session_scope(db_url) as session:
        assert session.get(store.ConfigState, last_good.state_name(path)).content["text"] == TUNED
    code, err = check(capsys, folder)
    assert code == 1 and f"{path}:1:1: (file): file is empty" in err


def test_a_detection_file_holding_only_a_comment_still_means_the_defaults(sqlite_url, folder):
    """What an operator writes to mean "nothing set" (tests/test_detection_config.py) stays so."""
    (folder / detection_config.FILE_NAME).write_text("# nothing set yet\n", encoding="utf-8")
    assert detect_settings(sqlite_url) == detection_config.DetectSettings()


@pytest.mark.parametrize("link", ["dangling", "loop"])
def test_a_broken_link_in_place_of_detection_yaml_is_refused_not_taken_for_no_file(sqlite_url, folder, capsys, link):
    """A deploy that links config files (`ln -s ../releases/42/detection.yaml`) and a release
    removed under it: the link led nowhere, `exists()` said no file, and the defaults went in
    force while `siaga check` said ok."""
    path = folder / detection_config.FILE_NAME
    path.write_text(TUNED, encoding="utf-8")
    tuned = detect_settings(sqlite_url)
    path.unlink()
    path.symlink_to(folder / "releases" / "detection.yaml" if link == "dangling" else path)
    assert detect_settings(sqlite_url) == tuned
    with pytest.raises(detection_config.DetectionConfigError, match=rf"{path}:1:1: \(file\): cannot read"):
        detection_config.load(path)
    code, err = check(capsys, folder)
    assert code == 1 and f"{path}:1:1: (file): cannot read" in err


def header_of(path: Path) -> list[str]:
    """Every cut of the file inside its leading comment block (what a reader sees of a file
    being rewritten before the first setting arrives)."""
    text = path.read_text(encoding="utf-8")
    end = next(i for i, line in enumerate(text.splitlines(keepends=True)) if not line.startswith("#") and line.strip())
    head = "".join(text.splitlines(keepends=True)[:end])
    return [head[:n] for n in (0, 1, len(head) // 2, len(head))]


def test_a_sources_file_emptied_or_cut_in_its_header_keeps_the_last_good_sources_polled(sqlite_url, folder, monkeypatch, capsys):
    """An emptied sources.yaml was a valid file with no source: every ingest run polled nothing,
    and that became the last good version, so the next refused edit fell back to nothing too."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    path = folder / "sources.yaml"
    good = pipeline.source_names()
    assert good == ["demo"]
    for cut in header_of(path):
        path.write_text(cut, encoding="utf-8")
        assert pipeline.source_names() == good, repr(cut[-60:])
        code, err = check(capsys, folder)
        assert code == 1 and f"{path}:1:1:" in err
    path.write_text("retention_days: 30\nsources: []\n", encoding="utf-8")  # nothing to poll, said so
    assert pipeline.source_names() == []


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=400))
def test_a_sources_file_cut_anywhere_in_its_first_settings_never_stops_polling(sqlite_url, tmp_path_factory, cut):
    """Cut anywhere before its first source is complete, the file is refused (last good in
    force) or, when what is left is valid, still polls the demo source."""
    from siaga.sources import sources_in_force

    original = (settings.config_dir() / "sources.yaml").read_text(encoding="utf-8")
    folder = tmp_path_factory.mktemp("cfg") / "config"
    folder.mkdir()
    path = folder / "sources.yaml"
    path.write_text(original, encoding="utf-8")
    state = last_good.state_name(path)
    with store.session_scope(sqlite_url) as session:
        session.query(store.ConfigState).filter_by(name=state).delete()
        [demo] = [s.name for s in sources_in_force(session, path)]
    path.write_text(original[:original.index("  - name: demo") + cut], encoding="utf-8")
    with store.session_scope(sqlite_url) as session:
        names = [s.name for s in sources_in_force(session, path)]
    assert names == [demo]


EDITOR_FILES = {
    "an Emacs lock (a link to user@host.pid)": (".#flood.yaml", None),
    "a hidden copy": (".flood.yaml", ""),
    "a hidden half-saved copy": (".flood.yaml", "id: flood\nlabels: {id: Banjir\n"),
}


@pytest.mark.parametrize("kind", sorted(EDITOR_FILES))
def test_hidden_editor_files_in_hazards_are_not_hazard_lists(sqlite_url, folder, capsys, kind):
    """An operator editing flood.yaml in Emacs leaves `.#flood.yaml` (a link to nowhere) while
    the buffer is unsaved: it was read as a hazard list, the whole set was refused and the
    valid edits saved meanwhile did not go in force."""
    name, text = EDITOR_FILES[kind]
    hazards = folder / "hazards"
    if text is None:
        (hazards / name).symlink_to("operator@bpbd-laptop.4242:1764900000")
    else:
        (hazards / name).write_text(text, encoding="utf-8")
    flood = hazards / "flood.yaml"
    flood.write_text(flood.read_text(encoding="utf-8").replace("terms:\n", "terms:\n  - banjir bandang probe\n", 1),
                     encoding="utf-8")
    with store.session_scope(sqlite_url) as session:
        lists = hazard_lists.in_force(session)
    assert "banjir bandang probe" in lists.hazards["flood"].terms
    assert check(capsys, folder)[0] == 0


@pytest.mark.parametrize("zone", ["Asia/Makasar", "../../etc/passwd", "Asia/" + "x" * 300])
def test_a_replay_timezone_typo_is_refused_at_its_line_and_polling_goes_on(sqlite_url, folder, monkeypatch, capsys, zone):
    """`timezone: Asia/Makasar` (or a save cut after "A") under a replay source was a
    ZoneInfoNotFoundError traceback from `siaga check`, and from the ingest DAG's listing of the
    sources, which no last good version caught: every source stopped being polled."""
    monkeypatch.setenv("SIAGA_DB_URL", sqlite_url)
    path = folder / "sources.yaml"
    good = pipeline.source_names()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("timezone: Asia/Makassar", f"timezone: {zone}", 1), encoding="utf-8")
    line = text.splitlines().index("    timezone: Asia/Makassar") + 1
    assert pipeline.source_names() == good
    code, err = check(capsys, folder)
    assert code == 1 and f"{path}:{line}:15: sources[0].timezone: unknown time zone" in err


def test_a_deleted_hazard_file_retires_the_hazard_and_says_so(sqlite_url, folder, caplog):
    """Decided: the folder is what operators edit, and deleting a file is how a hazard is taken
    out. It is no refusal, but a file deleted by mistake must not stop a hazard silently."""
    import logging

    with store.session_scope(sqlite_url) as session:
        assert "tidal_flood" in hazard_lists.in_force(session).hazards
    (folder / "hazards" / "tidal_flood.yaml").unlink()
    with caplog.at_level(logging.WARNING, logger="siaga.hazard_lists"), store.session_scope(sqlite_url) as session:
        lists = hazard_lists.in_force(session)
    assert "tidal_flood" not in lists.hazards and "flood" in lists.hazards
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "no longer define tidal_flood" in warning
