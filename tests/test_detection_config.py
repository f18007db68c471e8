"""Detection settings come from config/detection.yaml: the shipped file holds the defaults, a
missing file or field means the defaults, and a wrong value is refused naming file, field and
line, in the detect DAG's own job as on the command line."""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from siaga import cli, detection_config, pipeline, settings
from siaga.detection_config import DetectionConfigError, DetectSettings

GOOD = """\
# a comment
lookback_minutes: 60
baseline_days: 14
incident_gap_minutes: 90
quiet_period_minutes: 240
reopen_window_minutes: 0
"""


def test_a_good_file_sets_every_field(tmp_path):
    path = tmp_path / "detection.yaml"
    path.write_text(GOOD)
    assert detection_config.load(path) == DetectSettings(
        lookback=timedelta(hours=1), baseline_days=14, incident_gap=timedelta(minutes=90),
        quiet_period=timedelta(hours=4), reopen_window=timedelta(0),
    )


def test_the_shipped_file_holds_the_defaults():
    """config/detection.yaml documents the defaults; the two must not drift apart."""
    shipped = settings.config_dir() / detection_config.FILE_NAME
    assert shipped.exists()
    assert detection_config.load(shipped) == DetectSettings() == detection_config.load()
    assert DetectSettings() == DetectSettings(
        lookback=timedelta(hours=3), baseline_days=28, incident_gap=timedelta(hours=2),
        quiet_period=timedelta(hours=3), reopen_window=timedelta(hours=6),
    )


def test_missing_file_or_fields_mean_the_defaults(tmp_path, monkeypatch):
    assert detection_config.load(tmp_path / "absent.yaml") == DetectSettings()
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(tmp_path))  # a config folder without the file
    assert detection_config.load() == DetectSettings()
    partial = tmp_path / "partial.yaml"
    partial.write_text("quiet_period_minutes: 45\n")
    assert detection_config.load(partial) == DetectSettings(quiet_period=timedelta(minutes=45))
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set yet\n")
    assert detection_config.load(empty) == DetectSettings()


def test_the_config_folder_is_resolved_through_settings(tmp_path, monkeypatch):
    (tmp_path / "detection.yaml").write_text("baseline_days: 7\n")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(tmp_path))
    assert detection_config.load().baseline_days == 7


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("quiet_period_minutes: -30", r"5:23: quiet_period_minutes: -30 is less than the minimum of 5"),
        ("quiet_period_minutes: three hours", r"5:23: quiet_period_minutes: 'three hours' is not of type 'integer'"),
        ("quiet_period_minutes: 2.5", r"5:23: quiet_period_minutes: 2.5 is not of type 'integer'"),
        ("quiet_period_minutes: true", r"5:23: quiet_period_minutes: True is not of type 'integer'"),
        ("quiet_periode_minutes: 30", r"5:1: quiet_periode_minutes: Additional properties are not allowed \('quiet_periode_minutes'"),
        ("lookback_minutes: 7", r"5:19: lookback_minutes: 7 is not a multiple of 5"),
        ("lookback_minutes: 10080", r"5:19: lookback_minutes: 10080 is greater than the maximum of 1440"),
        ("baseline_days: 0", r"5:16: baseline_days: 0 is less than the minimum of 1"),
    ],
)
def test_a_bad_value_names_file_field_and_line(tmp_path, line, expected):
    path = tmp_path / "detection.yaml"
    path.write_text(f"# detection settings\n\nreopen_window_minutes: 360\nincident_gap_minutes: 120\n{line}\n")
    with pytest.raises(DetectionConfigError, match=rf"(?m)^{re.escape(str(path))}:{expected}"):
        detection_config.load(path)


def test_a_file_that_is_not_a_mapping_or_not_yaml_is_refused(tmp_path):
    path = tmp_path / "detection.yaml"
    path.write_text("- lookback_minutes: 60\n")
    with pytest.raises(DetectionConfigError, match=rf"^{re.escape(str(path))}:1:1: \(top level\): .* is not of type 'object'"):
        detection_config.load(path)
    path.write_text("lookback_minutes: [60\n")
    with pytest.raises(DetectionConfigError, match=rf"^{re.escape(str(path))}:1:19: \(syntax\): '\[' opened here is never closed"):
        detection_config.load(path)


def test_the_detect_job_and_the_backtest_refuse_a_bad_file(tmp_path, monkeypatch, capsys):
    """The DAG's job raises (the task fails and says why) rather than run with settings nobody
    chose; `siaga backtest` says why and exits 1."""
    config = tmp_path / "config"
    shutil.copytree(settings.config_dir(), config)
    (config / "detection.yaml").write_text("incident_gap_minutes: 0\n")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    monkeypatch.setenv("SIAGA_DB_URL", f"sqlite:///{tmp_path / 'siaga.db'}")
    message = "detection.yaml:1:23: incident_gap_minutes: 0 is less than the minimum of 5"
    with pytest.raises(DetectionConfigError, match=re.escape(message)):
        pipeline.detect_incidents(datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc))
    assert cli.main(["backtest", "--config", str(config), "--from", "2026-01-15T08:00", "--to", "2026-01-15T09:00"]) == 1
    assert message in capsys.readouterr().err
