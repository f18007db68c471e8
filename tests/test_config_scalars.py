"""Values PyYAML's own constructors choke on: an integer of more than 4300 digits (Python's
`int` limit) and a date that does not exist. They raised a bare ValueError out of the YAML
reader: a traceback from `siaga check`, and a detect run stopped with no last good version
taking over, since only a ConfigError is a refusal."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from siaga import cli, detection_config, hazard_lists, settings, store
from siaga.config_errors import ConfigError, parse_yaml

from support.logs import errors_logged

HOSTILE = {
    "an integer of 5000 digits": "9" * 5000,
    "a date that does not exist": "2026-02-30",
    "a negative integer of 4400 digits": "-" + "1" * 4400,
    "a hexadecimal integer of 4000 digits": "0x" + "f" * 4000,
}


@pytest.mark.parametrize("kind", ["an integer of 5000 digits", "a date that does not exist"])
def test_a_hostile_number_in_a_hazard_list_is_refused_at_its_line(db_url, tmp_path, monkeypatch, capsys, kind):
    folder = tmp_path / "config"
    shutil.copytree(settings.config_dir(), folder)
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(folder))
    with store.session_scope(db_url) as session:
        good = hazard_lists.in_force(session)
    flood = folder / "hazards" / "flood.yaml"
    lines = flood.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("min_posts:"))
    lines[at] = lines[at].split(":")[0] + ": " + HOSTILE[kind]
    flood.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with errors_logged("siaga.hazard_lists") as refusals, store.session_scope(db_url) as session:
        kept = hazard_lists.in_force(session)
    assert kept.fingerprint() == good.fingerprint()
    where = f"{flood}:{at + 1}:{lines[at].index(':') + 3}: detection.min_posts:"
    assert where in refusals[0] and "cannot be read" in refusals[0]
    assert cli.main(["check", str(folder)]) == 1
    assert where in capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_key_is_refused_too(kind):
    """Written as an explicit key (`? KEY`), as a key of any length must be."""
    with pytest.raises(ConfigError, match=r"^f\.yaml:2:3: \(top level\): .* cannot be read"):
        parse_yaml(f"a: 1\n? {HOSTILE[kind]}\n: 2\n", "f.yaml")


@hsettings(max_examples=100, deadline=None)
@given(value=st.one_of(
    st.integers().map(str),
    st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99)),
    st.builds(lambda n, sign: sign + "1" * n, st.integers(4000, 6000), st.sampled_from(["", "-", "+", "0x", "0o"])),
    st.text(max_size=30),
))
def test_any_value_of_a_detection_setting_is_a_setting_or_a_refusal(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("det") / "detection.yaml"
    path.write_text(f"quiet_period_minutes: {value}\n", encoding="utf-8")
    try:
        detection_config.load(path)
    except detection_config.DetectionConfigError as exc:
        assert str(exc).startswith(f"{path}:")
