"""Compiled matchers cached on disk (`siaga.matcher_cache`, issue 14): rebuilt when any input
changes, written safely by concurrent workers, and a damaged entry costs a rebuild, never a crash."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siaga import matcher_cache
from siaga.geotag import cached_geotagger
from siaga.hazards import HazardSet, load_compiled

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("SIAGA_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def config(tmp_path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(REPO / "config", root)
    return root


def entries(directory: Path, kind: str) -> list[Path]:
    return sorted(directory.glob(f"{kind}-*.pickle"))


def flood_terms(hazard_set: HazardSet, text: str) -> tuple[str, ...]:
    return next((m.terms for m in hazard_set.classify(text) if m.hazard == "flood"), ())


def test_hazard_lists_are_cached_and_rebuilt_when_a_list_changes(cache, config):
    first = HazardSet.load(config / "hazards")
    [entry] = entries(cache, "hazards")
    again = HazardSet.load(config / "hazards")  # from the cache now
    assert again.fingerprint() == first.fingerprint()
    assert flood_terms(again, "air bah kiriman") == flood_terms(first, "air bah kiriman") == ()

    flood = config / "hazards" / "flood.yaml"
    flood.write_text(flood.read_text(encoding="utf-8").replace("terms:\n", "terms:\n  - air bah kiriman\n", 1), encoding="utf-8")
    changed = HazardSet.load(config / "hazards")
    assert changed.fingerprint() != first.fingerprint()
    assert flood_terms(changed, "air bah kiriman") == ("air bah kiriman",)
    assert len(entries(cache, "hazards")) == 2 and entry.exists()


def test_an_abbreviation_change_rebuilds_the_hazard_matcher(cache, config):
    assert flood_terms(HazardSet.load(config / "hazards"), "bjr di sini") == ()
    with open(config / "abbreviations.csv", "a", encoding="utf-8") as handle:
        handle.write("bjr,banjir\n")
    assert flood_terms(HazardSet.load(config / "hazards"), "bjr di sini") == ("banjir",)


def test_an_invalid_list_is_refused_every_time_and_never_cached(cache, config):
    from siaga.hazard_config import HazardConfigError

    flood = config / "hazards" / "flood.yaml"
    flood.write_text(flood.read_text(encoding="utf-8").replace("terms:\n", "terms:\n  - '!!!'\n", 1), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(HazardConfigError, match="flood.yaml"):
            load_compiled(config / "hazards")
    assert entries(cache, "hazards") == []


def test_an_alias_change_rebuilds_the_geotagger(cache, config):
    geodata = REPO / "geodata"
    before = cached_geotagger(geodata, config / "aliases.yaml", national=False)
    assert not any(p.name == "Warung Siaga" for p in before.tag("makan di Warung Siaga").places)
    aliases = (config / "aliases.yaml").read_text(encoding="utf-8")
    (config / "aliases.yaml").write_text(
        aliases.replace("landmarks:\n", "landmarks:\n  - name: Warung Siaga\n    village: Sangsit\n    confidence: 0.9\n", 1),
        encoding="utf-8")
    after = cached_geotagger(geodata, config / "aliases.yaml", national=False)
    assert any(p.name == "Warung Siaga" and p.village == "Sangsit" for p in after.tag("makan di Warung Siaga").places)
    assert len(entries(cache, "geotagger")) == 2
    # and the cached one answers as a freshly built one does, point-in-polygon included
    fresh = cached_geotagger(geodata, config / "aliases.yaml", national=False)
    for text, lat, lon in (("Banjir di Desa Sangsit, Sawan", None, None), ("macet jl ahmad yani", None, None),
                           ("pohon tumbang", -8.1234, 115.0912), ("ke Denpasar lewat Gilimanuk", None, None)):
        assert fresh.tag(text, lat=lat, lon=lon) == after.tag(text, lat=lat, lon=lon)


def test_a_corrupt_or_truncated_entry_is_rebuilt_not_a_crash(cache, config):
    good = HazardSet.load(config / "hazards")
    [entry] = entries(cache, "hazards")
    whole = entry.read_bytes()
    for damage in (b"", b"not a pickle", whole[: len(whole) // 2], pickle.dumps(("another key", None))):
        entry.write_bytes(damage)
        again = HazardSet.load(config / "hazards")
        assert again.fingerprint() == good.fingerprint()
        assert flood_terms(again, "banjir di Sangsit") == ("banjir",)
        assert matcher_cache.load("hazards", pickle.loads(entry.read_bytes())[0]) is not None  # rewritten whole


def test_an_unwritable_cache_folder_only_costs_the_speed(tmp_path, monkeypatch, config):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SIAGA_CACHE_DIR", str(blocker / "cache"))
    assert flood_terms(HazardSet.load(config / "hazards"), "banjir di Sangsit") == ("banjir",)


def test_a_matcher_just_built_is_returned_as_read_back_from_its_entry(cache, tmp_path):
    """The compact form every later process loads, not the built object (which still holds
    what building needed); with an unwritable folder, the built one."""
    built = []

    def build() -> dict:
        built.append({"names": ["Sangsit", "Kubutambahan"]})
        return built[-1]

    got = matcher_cache.cached("test", "k1", build)
    assert got == built[0] and got is not built[0]
    assert matcher_cache.cached("test", "k1", build) == got and len(built) == 1
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    assert matcher_cache.cached("test", "k2", build, directory=blocker / "cache") is built[1]


BUILD_AT_ONCE = """
import sys, time
from pathlib import Path
from siaga.hazards import HazardSet

start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
# both processes miss the cache and build; each writes its entry while the other may read it
hazard_set = HazardSet.load(Path(sys.argv[1]))
print(hazard_set.fingerprint())
"""


def test_two_processes_building_at_once_leave_a_valid_entry(cache, config, tmp_path):
    import time

    env = {**os.environ, "SIAGA_CACHE_DIR": str(cache)}
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_AT_ONCE, str(config / "hazards"), start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode() for _, err in outs]
    fingerprints = {out.decode().strip() for out, _ in outs}
    assert len(fingerprints) == 1
    [entry] = entries(cache, "hazards")
    assert not list(cache.glob(".*.tmp"))  # no temporary file left behind
    key, (hazard_config, hazard_set) = pickle.loads(entry.read_bytes())
    assert hazard_set.fingerprint() in fingerprints and set(hazard_config.texts) == {p.name for p in (config / "hazards").glob("*.yaml")}
    assert json.dumps(flood_terms(hazard_set, "banjir di Sangsit")) == '["banjir"]'


def test_a_code_change_changes_every_key(monkeypatch):
    key = matcher_cache.fingerprint("hazards", [REPO / "config" / "hazards" / "flood.yaml"])
    monkeypatch.setattr(matcher_cache, "_CODE_VERSION", "another version of the code")
    assert matcher_cache.fingerprint("hazards", [REPO / "config" / "hazards" / "flood.yaml"]) != key
