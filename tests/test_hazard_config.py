"""Operators edit the lists live: every mistake must be reported with file, line and field."""
from datetime import timedelta
from pathlib import Path

import pytest

from siaga.hazard_config import HazardConfigError, check_directory as check_problems
from siaga.hazards import HazardSet

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
# comment header
id: {id}
labels:
  id: {label}
  en: {label}
agency: {agency}
cap_category: {cap_category}
terms:
{terms}
exclusions:
{exclusions}
severity_cues:
  - parah
detection:
  window_minutes: 30
  min_posts: 2
  min_authors: 2
  sensitivity: 0.5
"""


def write(directory: Path, hid: str, terms=("banjir",), exclusions=("banjir diskon",), agency="bpbd", extra="",
          cap_category="Met") -> Path:
    path = directory / f"{hid}.yaml"
    path.write_text(
        GOOD.format(
            id=hid, label=hid.title(), agency=agency, cap_category=cap_category,
            terms="\n".join(f"  - {t}" for t in terms),
            exclusions="\n".join(f"  - {e}" for e in exclusions) or "  []",
        ) + extra,
        encoding="utf-8",
    )
    return path


class _Report:
    """check_directory's report as the text an operator reads."""

    def __init__(self, report):
        self.errors = [str(p) for p in report.errors]
        self.warnings = [str(p) for p in report.warnings]


def check_directory(directory: Path) -> _Report:
    return _Report(check_problems(directory))


@pytest.fixture
def hazdir(tmp_path: Path) -> Path:
    d = tmp_path / "hazards"
    d.mkdir()
    write(d, "flood")
    write(d, "traffic_jam", terms=("macet",), exclusions=("macet rezeki",), agency="dishub", cap_category="Transport")
    return d


def test_shipped_lists_are_valid_without_warnings():
    report = check_directory(REPO / "config" / "hazards")
    assert report.errors == []
    assert report.warnings == []


def test_valid_directory_loads(hazdir):
    hs = HazardSet.load(hazdir)
    assert set(hs.hazards) == {"flood", "traffic_jam"}
    assert hs.hazards["flood"].window_minutes == 30
    assert hs.hazards["traffic_jam"].sensitivity == 0.5


def test_shipped_lists_carry_their_cap_category():
    hs = HazardSet.load(REPO / "config" / "hazards")
    categories = {hid: hz.cap_category for hid, hz in hs.hazards.items()}
    assert categories == {
        "flood": "Met", "tidal_flood": "Met", "strong_wind": "Met", "high_waves": "Met", "drought": "Met",
        "earthquake": "Geo", "tsunami": "Geo", "landslide": "Geo", "volcanic_eruption": "Geo",
        "fire": "Fire", "fallen_tree": "Safety",
        "traffic_accident": "Transport", "traffic_jam": "Transport", "road_closure": "Transport",
        "road_damage": "Infra",
    }


def test_cap_category_is_loaded(hazdir):
    hs = HazardSet.load(hazdir)
    assert (hs.hazards["flood"].cap_category, hs.hazards["traffic_jam"].cap_category) == ("Met", "Transport")


def test_unknown_cap_category_names_file_line_and_field(hazdir):
    path = write(hazdir, "flood", cap_category="Weather")
    [err] = check_directory(hazdir).errors
    line = path.read_text().splitlines().index("cap_category: Weather") + 1
    assert err.startswith(f"{path}:{line}:15: cap_category:") and "'Weather' is not one of" in err
    with pytest.raises(HazardConfigError, match=r"flood\.yaml:\d+:\d+: cap_category"):
        HazardSet.load(hazdir)


def test_missing_cap_category_names_the_field(hazdir):
    path = hazdir / "flood.yaml"
    path.write_text(path.read_text().replace("cap_category: Met\n", ""), encoding="utf-8")
    [err] = check_directory(hazdir).errors
    first_field = path.read_text().splitlines().index("id: flood") + 1
    assert err.startswith(f"{path}:{first_field}:1: cap_category:") and "required" in err


def test_wrong_type_names_file_line_and_field(hazdir):
    path = hazdir / "flood.yaml"
    path.write_text(path.read_text().replace("min_posts: 2", "min_posts: dua"), encoding="utf-8")
    report = check_directory(hazdir)
    [err] = report.errors
    line = path.read_text().splitlines().index("  min_posts: dua") + 1
    assert err.startswith(f"{path}:{line}:14: detection.min_posts:")
    with pytest.raises(HazardConfigError, match=r"flood\.yaml:\d+:\d+: detection\.min_posts"):
        HazardSet.load(hazdir)


def test_unknown_agency_and_misspelt_field_are_errors(hazdir):
    path = hazdir / "flood.yaml"
    text = path.read_text().replace("agency: bpbd", "agency: polisi").replace("severity_cues:", "severity_cue:")
    path.write_text(text, encoding="utf-8")
    errors = check_directory(hazdir).errors
    line = text.splitlines().index("severity_cue:") + 1
    assert errors == [
        f"{path}:6:9: agency: 'polisi' is not one of ['bpbd', 'dishub']",
        f"{path}:{line}:1: severity_cue: Additional properties are not allowed ('severity_cue' was unexpected); did you mean 'severity_cues'?",
    ]


def test_bad_list_item_names_its_index_and_line(hazdir):
    path = write(hazdir, "flood", terms=("banjir", "'!!!'"))
    [err] = check_directory(hazdir).errors
    line = path.read_text().splitlines().index("  - '!!!'") + 1
    assert err.startswith(f"{path}:{line}:5: terms[1]:")


def test_yaml_syntax_error_names_the_line(hazdir):
    path = hazdir / "flood.yaml"
    lines = path.read_text().splitlines()
    lines[lines.index("  - banjir")] = "  - [banjir"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [err] = check_directory(hazdir).errors
    line = lines.index("  - [banjir") + 1
    assert err.startswith(f"{path}:{line}:5: (syntax): '[' opened here is never closed")


def test_id_must_match_file_name(hazdir):
    path = hazdir / "flood.yaml"
    path.write_text(path.read_text().replace("id: flood", "id: banjir"), encoding="utf-8")
    [err] = check_directory(hazdir).errors
    assert err.startswith(f"{path}:2:5: id:")


def test_road_consequence_must_name_a_known_hazard(hazdir):
    write(hazdir, "flood", extra="road_consequence:\n  - raises: road_closed\n    cues: [jalan]\n")
    [err] = check_directory(hazdir).errors
    assert "road_consequence[0].raises: unknown hazard 'road_closed'" in err


def test_term_under_two_hazards_warns(hazdir):
    write(hazdir, "traffic_jam", terms=("macet", "banjir"), exclusions=(), agency="dishub")
    report = check_directory(hazdir)
    assert report.errors == []
    [warning] = report.warnings
    assert "'banjir' is listed under 2 hazards" in warning and "flood" in warning and "traffic_jam" in warning


def test_term_shadowed_by_exclusion_warns(hazdir):
    path = write(hazdir, "flood", terms=("banjir", "banjir diskon besar"), exclusions=("banjir diskon",))
    [warning] = check_directory(hazdir).warnings
    line = path.read_text().splitlines().index("  - banjir diskon besar") + 1
    assert warning.startswith(f"{path}:{line}:5: terms[1]:") and "shadowed" in warning


def test_empty_directory_and_empty_file_are_errors(tmp_path):
    assert check_directory(tmp_path).errors
    (tmp_path / "flood.yaml").write_text("", encoding="utf-8")
    [err] = check_directory(tmp_path).errors
    assert "flood.yaml:1:1:" in err and "empty" in err


def test_wildcard_exclusion_vetoes_one_word_gap(hazdir):
    write(hazdir, "flood", exclusions=("harga * banjir",))
    hs = HazardSet.load(hazdir)
    assert hs.classify("harga cabai banjir di pasar") == []
    assert [m.hazard for m in hs.classify("harga cabai naik, banjir di pasar")] == ["flood"]


def test_areal_felt_and_incident_gap_are_read_from_the_file(hazdir):
    """Absent, a hazard is neither areal nor felt and takes the deployment's incident gap."""
    path = hazdir / "flood.yaml"
    path.write_text(path.read_text().replace("detection:\n", "areal: true\nfelt_authors: 7\ndetection:\n")
                    .replace("  sensitivity: 0.5\n", "  sensitivity: 0.5\n  incident_gap_minutes: 720\n"), encoding="utf-8")
    hs = HazardSet.load(hazdir)
    flood, jam = hs.hazards["flood"], hs.hazards["traffic_jam"]
    assert (flood.areal, flood.felt_authors, flood.incident_gap_minutes) == (True, 7, 720)
    assert (jam.areal, jam.felt_authors, jam.incident_gap_minutes) == (False, None, None)
    assert flood.incident_gap(timedelta(hours=2)) == timedelta(hours=12)
    assert jam.incident_gap(timedelta(hours=2)) == timedelta(hours=2)


@pytest.mark.parametrize("old, new, column, field, message", [
    ("detection:\n", "areal: yes please\ndetection:\n", 8, "areal", "'yes please' is not of type 'boolean'"),
    ("detection:\n", "felt_authors: 0\ndetection:\n", 15, "felt_authors", "0 is less than the minimum of 1"),
    ("  sensitivity: 0.5\n", "  sensitivity: 0.5\n  incident_gap_minutes: 2\n", 25, "detection.incident_gap_minutes",
     "2 is less than the minimum of 5"),
])
def test_a_bad_areal_felt_or_gap_value_names_file_line_and_field(hazdir, old, new, column, field, message):
    path = hazdir / "flood.yaml"
    text = path.read_text().replace(old, new)
    path.write_text(text, encoding="utf-8")
    [err] = check_directory(hazdir).errors
    line = text.splitlines().index(new.splitlines()[-2 if new.endswith("detection:\n") else -1]) + 1
    assert err == f"{path}:{line}:{column}: {field}: {message}"
    with pytest.raises(HazardConfigError, match=rf"flood\.yaml:{line}:{column}: {field}"):
        HazardSet.load(hazdir)


@pytest.mark.parametrize("old, new, column, field", [
    ("  min_posts: 2\n", "  min_posts: " + "9" * 400 + "\n", 14, "detection.min_posts"),
    ("  min_authors: 2\n", "  min_authors: 1.0e+300\n", 16, "detection.min_authors"),
    ("detection:\n", "felt_authors: " + "9" * 30 + "\ndetection:\n", 15, "felt_authors"),
])
def test_a_threshold_past_what_detection_can_count_is_refused(hazdir, old, new, column, field):
    """min_posts of 400 digits (or 1.0e+300, an integer to JSON Schema) passed the check and
    became the last good set; the spike test then put it in a float array and every detect run
    failed with an OverflowError (detection off), or, below that, the hazard never alerted."""
    path = hazdir / "flood.yaml"
    text = path.read_text().replace(old, new)
    path.write_text(text, encoding="utf-8")
    [err] = check_directory(hazdir).errors
    line = text.splitlines().index(new.splitlines()[0]) + 1
    assert err.startswith(f"{path}:{line}:{column}: {field}: ") and "is greater than the maximum of" in err, err
    with pytest.raises(HazardConfigError, match=rf"flood\.yaml:{line}:{column}: {field}"):
        HazardSet.load(hazdir)


def test_two_files_defining_one_hazard_are_refused(hazdir):
    """flood.yaml and flood.yml: each id matches its file's name, so both passed, and the one
    read last silently replaced the other (an operator's edits to flood.yaml then did nothing)."""
    stale = hazdir / "flood.yml"
    stale.write_text((hazdir / "flood.yaml").read_text(encoding="utf-8").replace("  - banjir\n", "  - air bah\n"), encoding="utf-8")
    line = stale.read_text(encoding="utf-8").splitlines().index("id: flood") + 1
    assert f"{stale}:{line}:5: id: hazard 'flood' is also defined by flood.yaml: keep one file per hazard" in check_directory(hazdir).errors
    with pytest.raises(HazardConfigError, match=r"flood\.yml:\d+:5: id: hazard 'flood' is also defined by flood\.yaml"):
        HazardSet.load(hazdir)
