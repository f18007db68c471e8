"""`siaga check DIR`: a whole config folder checked as the DAGs will load it, every problem at
its file:line:column with the field, through the command line an operator types."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siaga import cli, settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped config folder to break, beside the replay file its demo source reads."""
    target = tmp_path / "config"
    shutil.copytree(settings.config_dir(), target)
    shutil.copytree(REPO / "scenarios", tmp_path / "scenarios")
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first line equal to `old` with `new` (which may span lines); return its
    1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines.index(old)
    lines[index] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


def insert(path: Path, before: str, new: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines.index(before)
    lines.insert(index, new)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


def check(capsys, *args: str) -> tuple[int, list[str], list[str]]:
    code = cli.main(["check", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_the_shipped_config_passes():
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "check", str(REPO / "config")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(
        "ok, 0 warning(s) (checked hazards/, routing.yaml, sources.yaml, abbreviations.csv, detection.yaml, "
        f"aliases.yaml, {REPO / 'geodata' / 'roads.yaml'})")


def test_default_folder_is_the_deployments(capsys, monkeypatch, folder):
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(folder))
    code, out, _ = check(capsys)
    assert code == 0 and out[-1].startswith(f"{folder}: ok")


def test_a_misspelt_hazard_key_is_refused_at_its_own_line_with_the_key_meant(capsys, folder):
    path = folder / "hazards" / "flood.yaml"
    line = edit(path, "severity_cues:", "severity_cue:")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0] == (f"error: {path}:{line}:1: severity_cue: Additional properties are not allowed "
                      "('severity_cue' was unexpected); did you mean 'severity_cues'?")
    assert err[-1].startswith(f"{folder}: 1 error(s) in 1 file(s); this config would be refused")


def test_a_nested_misspelt_key_names_its_dotted_field(capsys, folder):
    path = folder / "hazards" / "landslide.yaml"
    line = edit(path, "  min_authors: 2", "  min_author: 2")
    _, _, err = check(capsys, folder)
    assert f"error: {path}:{line}:3: detection.min_author: Additional properties are not allowed ('min_author' was unexpected); did you mean 'min_authors'?" in err
    assert any(e.startswith(f"error: {path}:") and "detection.min_authors: 'min_authors' is a required property" in e for e in err)


def test_an_unclosed_quote_is_reported_where_it_opens_not_where_yaml_gave_up(capsys, folder):
    """The next quote in the file closes it hundreds of lines below; the error is at line 51."""
    path = folder / "hazards" / "flood.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[50] = '  - "air bah'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0].startswith(f"error: {path}:51:5: (syntax): quoted text opened here runs on to line ")
    assert "is its closing quote missing?" in err[0]


def test_an_unclosed_bracket_in_routing_is_reported_at_the_bracket(capsys, folder):
    path = folder / "routing.yaml"
    line = insert(path, "route:", "  - {unclosed: [")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0].startswith(f"error: {path}:{line}:16: (syntax): '[' opened here is never closed (")


def test_a_wrong_routing_value_is_reported_at_the_value(capsys, folder):
    path = folder / "routing.yaml"
    line = edit(path, '    channel: "#dishub-siaga"', "    channel: dishub-siaga")
    _, _, err = check(capsys, folder)
    assert err[0].startswith(f"error: {path}:{line}:14: receivers[1].channel: 'dishub-siaga' does not match")


TOKEN = "xoxb-1234567890-0987654321-AbCdEfSECRETgHiJ"
HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"


@pytest.mark.parametrize("name, old, new, field", [
    ("routing.yaml", '    channel: "#dishub-siaga"', f"    channel: {TOKEN}", "receivers[1].channel"),
    ("routing.yaml", '    channel: "#dishub-siaga"', f"    channel: {HOOK}", "receivers[1].channel"),
    ("sources.yaml", "        conn_id: mastodon_online   # status search needs a token on most instances",
     "        conn_id: {password: AAAASECRETBEARERAAAA}", "conn_id"),
    ("sources.yaml", "retention_days: 30", f"retention_days: {TOKEN}", "retention_days"),
    ("sources.yaml", "retention_days: 30", "retention_days: https://feeds.example/x?token=SECRETQUERY", "retention_days"),
])
def test_a_secret_typed_into_the_wrong_field_is_not_quoted_back(capsys, folder, name, old, new, field):
    """The check quotes the value it refuses, and the DAGs log the same refusal: a token, a
    webhook address, a password under conn_id or a feed's ?token= must not be in either."""
    line = edit(folder / name, old, new)
    code, out, err = check(capsys, folder)
    said = "\n".join(out + err)
    assert code == 1 and f"{folder / name}:{line}:" in said and field in said, said
    assert "SECRET" not in said, said


def test_a_file_that_is_one_long_string_is_not_quoted_whole(capsys, folder):
    """A hazard list linked to /etc/passwd, or pasted prose: a line of the file at most."""
    path = folder / "hazards" / "flood.yaml"
    text = "root:x:0:0:root:/root:/bin/bash daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin " * 30
    path.write_text(text + "\n", encoding="utf-8")
    code, _, err = check(capsys, folder)
    assert code == 1
    (problem,) = [e for e in err if str(path) in e]
    assert "characters) is not of type" in problem and len(problem) < len(str(path)) + 450, problem


def test_a_route_for_a_hazard_no_list_defines_is_a_warning(capsys, folder):
    path = folder / "routing.yaml"
    line = edit(path, "      match: {agency: dishub}", "      match: {agency: dishub, hazard: flod}")
    code, out, _ = check(capsys, folder)
    assert code == 0
    assert out[0] == (f"warning: {path}:{line}:39: route.routes[2].match.hazard: no hazard list defines 'flod': "
                      "this route never matches; did you mean 'flood'?")


def test_sources_key_typo_and_connector_errors_are_placed(capsys, folder):
    path = folder / "sources.yaml"
    typo = edit(path, "    max_pages: 3", "    max_page: 3")
    url = edit(path, "      - https://www.antaranews.com/rss/bali.xml", "      - ftp://example.org/feed")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[:1] == [f"error: {path}:{typo}:5: sources[4].max_page: Additional properties are not allowed ('max_page' was unexpected); did you mean 'max_pages'?"]
    # the schema refuses first; the connector's own checks run on a schema-valid file
    edit(path, "    max_page: 3", "    max_pages: 3")
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {path}:{url}:9: sources[1].feeds[2]: not an http(s) URL: 'ftp://example.org/feed'"


def test_an_enabled_source_whose_file_or_folder_is_missing_is_a_warning(capsys, folder):
    """The demo replay pointed at a file that is not there passed, and every ingest run failed."""
    (folder.parent / "scenarios" / "demo.jsonl").unlink()
    path = folder / "sources.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    kind: inbox\n    enabled: false\n", "    kind: inbox\n    enabled: true\n"), encoding="utf-8")
    inbox = text.splitlines().index("    kind: inbox") + 3  # its path, two lines on (1-based)
    code, out, _ = check(capsys, folder)
    assert code == 0
    replay = text.splitlines().index("    path: scenarios/demo.jsonl") + 1
    assert out[0].startswith(f"warning: {path}:{replay}:11: sources[0].path: no replay file at {folder.parent / 'scenarios' / 'demo.jsonl'}")
    assert any(w.startswith(f"warning: {path}:{inbox}:11: ") and "no folder at" in w for w in out), out


@pytest.mark.parametrize("name, old, new, column, field", [
    ("routing.yaml", "  routes:", "  routes: !!python/name:os.system", 11, "route.routes"),
    ("hazards/flood.yaml", "terms:", "terms: !!python/object/apply:os.system", 8, "terms"),
    ("aliases.yaml", "landmarks:", "landmarks: !!omap", 12, "landmarks"),
    ("sources.yaml", "sources:", "sources: !custom", 10, "sources"),
])
def test_a_tag_on_a_list_or_mapping_is_refused_at_it(capsys, folder, name, old, new, column, field):
    """A tag on a plain value was refused, one on a list or mapping read as if absent."""
    path = folder / name
    line = edit(path, old, new)
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0].startswith(f"error: {path}:{line}:{column}: {field}: the tag ") and "is not allowed" in err[0], err


def test_aliases_are_checked_against_the_gazetteer(capsys, folder):
    path = folder / "aliases.yaml"
    line = edit(path, "    village: Kalibukbuk", "    village: Kalibukbukk")
    typo = edit(path, "    variants: [Gitgit waterfall, Gitgit Waterfall, Air Terjun Git Git, Pancuran Gitgit]",
                "    varaints: [Gitgit waterfall]")
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {path}:{typo}:5: landmarks[3].varaints: Additional properties are not allowed ('varaints' was unexpected); did you mean 'variants'?"
    edit(path, "    varaints: [Gitgit waterfall]", "    variants: [Gitgit waterfall]")
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {path}:{line}:14: landmarks[2].village: village 'Kalibukbukk' (district None) is not exactly one Buleleng village"


@pytest.mark.parametrize("lon, lat, says", [
    ("0", "0", "(0.0, 0.0) is not in Buleleng"),
    ("115.2167", "-8.6500", "(115.2167, -8.65) is not in Buleleng"),  # Denpasar
    ("115.4000", "-8.1500", "is far from kecamatan Buleleng"),  # in Buleleng, at Tejakula
])
def test_a_landmark_point_away_from_its_place_is_refused(capsys, folder, lon, lat, says):
    """Singaraja's point put at (0, 0) or elsewhere passed the check, and every alert of the
    landmark then carried that point to the map."""
    path = folder / "aliases.yaml"
    line = edit(path, "    lon: 115.0883", f"    lon: {lon}")
    edit(path, "    lat: -8.1120", f"    lat: {lat}")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0].startswith(f"error: {path}:{line}:10: landmarks[0].lon: ") and says in err[0], err


def test_a_bad_abbreviation_row_is_reported_at_its_line_in_the_file(capsys, folder):
    path = folder / "abbreviations.csv"
    line = edit(path, "jl,jalan", "jl,jalan,raya")
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {path}:{line}:1: (row): ['jl', 'jalan', 'raya']: expected 'abbrev,expansion'"


def test_a_problem_two_loaders_find_is_reported_once(capsys, folder):
    """The hazard lists read the folder's abbreviations.csv too: its bad row is one error, not
    two, and the count says so."""
    path = folder / "abbreviations.csv"
    line = edit(path, "jl,jalan", "jl,jalan,raya")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err.count(f"error: {path}:{line}:1: (row): ['jl', 'jalan', 'raya']: expected 'abbrev,expansion'") == 1
    assert err[-1].startswith(f"{folder}: 1 error(s) in 1 file(s)")


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("name", ["hazards/flood.yaml", "routing.yaml", "sources.yaml"])
def test_aliases_that_multiply_a_file_past_any_config_are_refused(capsys, folder, name):
    """Nine lines holding 387 million values once took minutes and gigabytes to read."""
    (folder / name).write_text(BILLION_LAUGHS, encoding="utf-8")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert any(line.startswith(f"error: {folder / name}:") and "aliases repeat values more than a config file can hold" in line
               for line in err)


def test_a_few_aliases_are_still_read(capsys, folder):
    path = folder / "detection.yaml"
    path.write_text("lookback_minutes: &five 180\nquiet_period_minutes: *five\n", encoding="utf-8")
    code, _, err = check(capsys, folder)
    assert code == 0, err


def test_a_bad_detection_setting_is_reported_at_its_value(capsys, folder):
    path = folder / "detection.yaml"
    line = edit(path, "incident_gap_minutes: 120", "incident_gap_minutes: two hours")
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {path}:{line}:23: incident_gap_minutes: 'two hours' is not of type 'integer'"


def test_the_folders_own_roads_file_is_checked(capsys, folder):
    path = folder / "roads.yaml"
    shutil.copy(REPO / "geodata" / "roads.yaml", path)
    line = edit(path, "    villages: [Beratan, Sukasada, Ambengan, Gitgit, Wanagiri, Pancasari]",
                "    villages: [Beratan, Sukasada, Atlantis, Gitgit, Wanagiri, Pancasari]")
    code, _, err = check(capsys, folder)
    assert code == 1
    assert err[0] == (f"error: {path}:{line}:35: roads[1].villages[2]: village 'Atlantis' matches 0 Buleleng villages; "
                      "write 'Name (Kecamatan)'")


def test_a_missing_required_file_and_not_a_config_folder(capsys, folder, tmp_path):
    (folder / "routing.yaml").unlink()
    _, _, err = check(capsys, folder)
    assert err[0] == f"error: {folder / 'routing.yaml'}:1:1: (file): missing: the DAGs read it from this folder"
    code, _, err = check(capsys, REPO / "config" / "hazards")
    assert code == 1 and "not a config folder" in err[0] and "siaga hazards check DIR" in err[0]


def test_terms_written_as_regular_expressions_get_a_warning(capsys, folder):
    path = folder / "hazards" / "flood.yaml"
    alternatives = insert(path, "  - banjir kiriman", "  - (air|banjir) bah")
    wildcard = insert(path, "  - banjir kiriman", "  - banjir.*sangsit")
    digits = insert(path, "  - banjir kiriman", "  - '[0-9]+ cm'")
    code, out, _ = check(capsys, folder)
    assert code == 0, "warnings do not refuse the folder"
    warnings = {int(w.split(":")[2]): w for w in out if w.startswith("warning:")}
    assert "matches only the words 'air banjir bah'; list each alternative as its own phrase ('air bah', 'banjir bah')" in warnings[alternatives]
    assert "matches only the words 'banjir sangsit'" in warnings[wildcard] and "'*' stands for exactly one word" in warnings[wildcard]
    assert "a character class" in warnings[digits] and "list the forms people write" in warnings[digits]
    assert out[-1].endswith("ok, 3 warning(s) (checked hazards/, routing.yaml, sources.yaml, abbreviations.csv, detection.yaml, "
                            f"aliases.yaml, {REPO / 'geodata' / 'roads.yaml'})")


def test_json_output_for_scripts(capsys, folder):
    path = folder / "hazards" / "flood.yaml"
    line = edit(path, "severity_cues:", "severity_cue:")
    code, out, _ = check(capsys, folder, "--json")
    assert code == 1
    report = json.loads("\n".join(out))
    assert report["ok"] is False and report["warnings"] == []
    assert report["errors"] == [{"file": str(path), "line": line, "column": 1, "field": "severity_cue",
                                 "message": "Additional properties are not allowed ('severity_cue' was unexpected); did you mean 'severity_cues'?"}]


def test_tag_accepts_a_config_folder_or_a_hazards_folder_and_refuses_anything_else(tmp_path, folder):
    post = '{"id": 1, "text": "banjir di Sangsit"}\n'
    for config in (folder, folder / "hazards"):
        out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag", "--config", str(config)], input=post,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["hazards"] == ["flood"]
    (folder / "hazards").rename(tmp_path / "elsewhere")
    for config, reason in ((folder, "a config folder without hazards/"), (tmp_path / "nowhere", "does not exist")):
        out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag", "--config", str(config)], input=post,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith("siaga tag: the hazard lists cannot be used:\n")
        assert f"{config}:0:0: (directory): {reason}" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["detection.yaml", "aliases.yaml", "abbreviations.csv"])
def test_a_directory_where_an_optional_file_belongs_is_refused(capsys, folder, name):
    """The loaders treat only a missing file as "use the defaults": the detect run refused a
    directory named detection.yaml (and the geotagger one named aliases.yaml) while the check,
    which skipped anything not a regular file, passed the folder."""
    (folder / name).unlink()
    (folder / name).mkdir()
    code, _, err = check(capsys, folder)
    assert code == 1
    assert f"error: {folder / name}:1:1: (file): cannot read: Is a directory" in err


@pytest.mark.parametrize("spelling", [".nan", ".NaN", ".inf", "-.Inf", "+.INF"])
@pytest.mark.parametrize("name, old, new, column, field", [
    ("hazards/flood.yaml", "  sensitivity: 0.6", "  sensitivity: {}", 16, "detection.sensitivity"),
    ("aliases.yaml", "    lon: 115.0883", "    lon: {}", 10, "landmarks[0].lon"),
    ("sources.yaml", "      speed: 10", "      speed: {}", 14, "sources[0].clock.speed"),
    ("roads.yaml", "    point: [115.0883, -8.1120]", "    point: [{}, -8.1120]", 13, "roads[6].point[0]"),
])
def test_a_number_that_is_not_finite_is_refused_at_its_value(capsys, folder, spelling, name, old, new, column, field):
    """YAML's .nan passes every JSON Schema bound (comparisons with NaN are false): a hazard's
    `sensitivity: .nan`, a landmark at longitude .nan, a replay speed of .nan and a road point
    of .nan were all accepted, by `siaga check` and by the DAGs."""
    if name == "roads.yaml":
        shutil.copy(REPO / "geodata" / "roads.yaml", folder / "roads.yaml")  # the folder's own roads file is the one read
    line = edit(folder / name, old, new.format(spelling))
    code, _, err = check(capsys, folder)
    assert code == 1
    assert f"error: {folder / name}:{line}:{column}: {field}: {spelling!r} is not a finite number" in err, err


RSS_OFFICIAL = "    official: true          # news desks and agencies publish under their own names"


@pytest.mark.parametrize("new, column, field", [
    ("      speed: " + "9" * 400, 14, "sources[0].clock.speed"),  # too large for a float: an OverflowError traceback
    ("      speed: 1.0e+300", 14, "sources[0].clock.speed"),  # passed, then overflowed the ingest task's clock
    ("      speed: 1.0e-300", 14, "sources[0].clock.speed"),
    (RSS_OFFICIAL + "\n    http: {backoff: " + "9" * 400 + "}", 21, "sources[1].http.backoff"),
    (RSS_OFFICIAL + "\n    http: {attempts: 1000000000000}", 22, "sources[1].http.attempts"),
])
def test_source_numbers_the_code_cannot_compute_with_are_refused_at_their_value(capsys, folder, new, column, field):
    old = new.split("\n")[0] if new.startswith(RSS_OFFICIAL) else "      speed: 10"
    line = edit(folder / "sources.yaml", old, new) + new.count("\n")
    code, _, err = check(capsys, folder)
    assert code == 1 and not any("Traceback" in e for e in err), err
    assert any(e.startswith(f"error: {folder / 'sources.yaml'}:{line}:{column}: {field}: ") for e in err), err


@pytest.mark.parametrize("value, column", [("9" * 400, 13), ("1.0e+300", 13), ("-181", 13)])
def test_a_road_point_off_the_globe_is_refused_at_its_value(capsys, folder, value, column):
    """A road's point was any two numbers: 400 digits made `siaga check` (and the geotagger)
    fail with an OverflowError traceback, and 1.0e+300 was accepted."""
    shutil.copy(REPO / "geodata" / "roads.yaml", folder / "roads.yaml")
    line = edit(folder / "roads.yaml", "    point: [115.0883, -8.1120]", f"    point: [{value}, -8.1120]")
    code, _, err = check(capsys, folder)
    assert code == 1 and not any("Traceback" in e for e in err), err
    assert any(e.startswith(f"error: {folder / 'roads.yaml'}:{line}:{column}: roads[6].point[0]: ")
               and ("less than the minimum of -180" in e or "greater than the maximum of 180" in e) for e in err), err


def _small_memory() -> None:
    """Address space enough for `siaga check` (a few hundred MB), so reading a device whole
    fails in the child instead of filling the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1500 << 20, 1500 << 20))


@pytest.mark.parametrize("name", ["routing.yaml", "hazards/flood.yaml", "abbreviations.csv", "detection.yaml", "aliases.yaml"])
@pytest.mark.parametrize("kind", ["a character device", "a named pipe"])
def test_a_device_or_a_pipe_where_a_config_file_belongs_is_refused_not_read(folder, name, kind):
    """`ln -s /dev/zero routing.yaml`, or a FIFO: read until memory ran out (a MemoryError
    traceback), waited on for ever, reported as "missing", or, in hazards/, skipped, so the
    folder passed without flood's list."""
    path = folder / name
    path.unlink()
    if kind == "a character device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "check", str(folder)], capture_output=True, text=True,
                         timeout=60, preexec_fn=_small_memory)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"error: {path}:1:1: (file): cannot read: not a regular file but {kind}" in out.stderr.splitlines()


def test_a_dangling_link_in_the_hazard_lists_is_refused_not_skipped(folder):
    """flood.yaml a link to a file that moved: skipped, so the lists passed, and went into force,
    without flood."""
    path = folder / "hazards" / "flood.yaml"
    path.unlink()
    path.symlink_to(folder / "moved" / "flood.yaml")
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "hazards", "check", str(folder)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and f"{path}:1:1: (file): cannot read: No such file or directory" in out.stderr, out.stderr


def test_tag_with_a_device_for_aliases_refuses_it_without_reading_it(folder, tmp_path):
    """The matcher cache's key hashed aliases.yaml whole before its loader looked: /dev/zero
    there was a MemoryError traceback from `siaga tag`, a FIFO a hang."""
    (folder / "aliases.yaml").unlink()
    (folder / "aliases.yaml").symlink_to("/dev/zero")
    env = {**os.environ, "SIAGA_CONFIG_DIR": str(folder), "SIAGA_CACHE_DIR": str(tmp_path / "cache"), "SIAGA_GAZETTEER": "buleleng"}
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input='{"id": 1, "text": "banjir"}\n', capture_output=True,
                         text=True, timeout=300, env=env, preexec_fn=_small_memory)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"{folder / 'aliases.yaml'}:1:1: (file): cannot read: not a regular file but a character device" in out.stderr
