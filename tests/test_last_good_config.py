"""A typo in routing.yaml, detection.yaml or aliases.yaml at 3 a.m. must not stop alerting: the
refused file is logged with its file:line, and the run goes on under the file's last good
version, kept in the database (`siaga.last_good`; the alias file beside the matcher cache), in
the functions and in the detect job the DAG runs."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from support.logs import errors_logged
from siaga import detection_config, last_good, pipeline, store
from siaga.detection_config import DetectionConfigError
from siaga.routing import Router, RoutingConfigError
from siaga.settings import config_dir
from siaga_dev import demo

ROUTING = "routing.yaml"


def routed(url: str, path: Path) -> Router:
    with store.session_scope(url) as session:
        return Router.in_force(session, path)


def channels(router: Router) -> dict[str, str]:
    return {name: r.channel for name, r in router.receivers.items()}


def good_routing(tmp_path: Path) -> Path:
    """The shipped routing.yaml with the managers' channel renamed, so only this copy routes there."""
    path = tmp_path / ROUTING
    path.write_text((config_dir() / ROUTING).read_text(encoding="utf-8").replace('"#siaga-managers"', '"#siaga-pimpinan"'),
                    encoding="utf-8")
    return path


BREAKAGES = {
    # what an operator's edit can do -> (the text written, where the refusal must point)
    "a YAML syntax error": (lambda t: t.replace("receivers:\n", "receivers:\n  - name: [bpbd\n", 1), ":36:"),
    "an unknown receiver": (lambda t: t.replace("  receiver: bpbd\n", "  receiver: bpdb\n", 1), "route.receiver"),
    "a wrong severity list": (lambda t: t.replace("severities:", "severities: [low, high]\nold_severities:", 1), "severities"),
    "an emptied file": (lambda t: "", ROUTING),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_refused_routing_file_leaves_its_last_good_version_in_force(db_url, tmp_path, breakage):
    path = good_routing(tmp_path)
    good = routed(db_url, path)
    assert channels(good)["managers"] == "#siaga-pimpinan"
    edit, where = BREAKAGES[breakage]
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(RoutingConfigError):
        Router.load(path)

    with errors_logged("siaga.last_good") as refusals:
        kept = routed(db_url, path)

    assert channels(kept) == channels(good)
    [refusal] = refusals
    assert refusal.startswith(f"REFUSED {path}") and "last good version in force" in refusal
    assert where in refusal
    with store.session_scope(db_url) as session:  # the refused text did not become the good one
        state = session.get(store.ConfigState, last_good.state_name(path))
        assert "#siaga-pimpinan" in state.content["text"]


def test_a_routing_file_gone_or_made_a_folder_is_refused_the_same_way(db_url, tmp_path):
    path = good_routing(tmp_path)
    good = routed(db_url, path)
    path.unlink()
    assert channels(routed(db_url, path)) == channels(good)
    path.mkdir()
    assert channels(routed(db_url, path)) == channels(good)


def test_without_a_good_version_ever_the_refusal_is_raised(db_url, tmp_path):
    path = tmp_path / ROUTING
    path.write_text("receivers: [\n", encoding="utf-8")
    with pytest.raises(RoutingConfigError, match=rf"{path}:\d+:\d+"):
        routed(db_url, path)


def test_the_newest_valid_version_is_the_one_kept(db_url, tmp_path):
    path = good_routing(tmp_path)
    routed(db_url, path)
    path.write_text(path.read_text(encoding="utf-8").replace("#siaga-pimpinan", "#siaga-kepala"), encoding="utf-8")
    assert channels(routed(db_url, path))["managers"] == "#siaga-kepala"
    path.write_text("route: {receiver: nobody}\n", encoding="utf-8")
    assert channels(routed(db_url, path))["managers"] == "#siaga-kepala"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_whatever_is_saved_over_a_good_routing_file_a_router_is_in_force(sqlite_url, tmp_path_factory, text):
    """Any text at all: either a valid file (then in force) or the last good one, never an
    exception that would stop the detect run."""
    path = good_routing(tmp_path_factory.mktemp("routing"))
    good = channels(routed(sqlite_url, path))
    path.write_text(text, encoding="utf-8")
    try:
        now_valid = channels(Router.load(path))
    except RoutingConfigError:
        now_valid = None
    assert channels(routed(sqlite_url, path)) == (now_valid or good)
    with store.session_scope(sqlite_url) as session:  # each example starts from the good file again
        session.delete(session.get(store.ConfigState, last_good.state_name(path)))


def test_refused_detection_settings_leave_the_last_good_ones_in_force(db_url, tmp_path):
    path = tmp_path / detection_config.FILE_NAME
    path.write_text("lookback_minutes: 30\nincident_gap_minutes: 240\n", encoding="utf-8")
    with store.session_scope(db_url) as session:
        good = detection_config.in_force(session, path)
    assert good.lookback == timedelta(minutes=30)
    path.write_text("lookback_minutes: 30\nincident_gap_minutes: 2\n", encoding="utf-8")  # under the 5-minute minimum
    with pytest.raises(DetectionConfigError):
        detection_config.load(path)
    with errors_logged("siaga.last_good") as refusals, store.session_scope(db_url) as session:
        assert detection_config.in_force(session, path) == good
    assert f"{path}:2:" in refusals[0] and "incident_gap_minutes" in refusals[0]


def test_a_missing_detection_file_still_means_the_defaults(db_url, tmp_path):
    path = tmp_path / detection_config.FILE_NAME
    path.write_text("lookback_minutes: 30\n", encoding="utf-8")
    with store.session_scope(db_url) as session:
        detection_config.in_force(session, path)
    path.unlink()
    with store.session_scope(db_url) as session:
        assert detection_config.in_force(session, path) == detection_config.DetectSettings()


def landmarks(text: str) -> list[str]:
    from siaga.geotag import default_geotagger

    return [p.name for p in default_geotagger().tag(text).places if p.kind == "landmark"]


def break_aliases(config: Path) -> int:
    """A YAML syntax error in aliases.yaml; the line the refusal must name."""
    path = config / "aliases.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    at = lines.index("  - name: Lovina")
    lines[at] = "  - name: [Lovina"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return at + 1


def test_a_refused_alias_file_leaves_its_last_good_copy_in_force(own_config_and_cache):
    from siaga.config_errors import ConfigError
    from siaga.geotag import default_geotagger

    config = own_config_and_cache
    assert landmarks("Banjir di Lovina pagi ini") == ["Lovina"]
    line = break_aliases(config)
    default_geotagger.cache_clear()  # a new process: the next detect task
    with errors_logged("siaga.geotag") as refusals:
        assert landmarks("Banjir di Lovina pagi ini") == ["Lovina"]
    [refusal] = refusals
    assert refusal.startswith("REFUSED") and f"{config / 'aliases.yaml'}:{line}:" in refusal
    assert "last good version in force" in refusal

    shutil.rmtree(config.parent / "cache")  # nothing kept (the cache is safe to delete): the refusal is raised
    default_geotagger.cache_clear()
    with pytest.raises(ConfigError, match=rf"aliases.yaml:{line}:"):
        landmarks("Banjir di Lovina")


def _break_routing(config: Path) -> None:
    routing = config / ROUTING
    routing.write_text(routing.read_text(encoding="utf-8").replace("  receiver: bpbd\n", "  receiver: bpdb\n", 1), encoding="utf-8")


def _break_detection(config: Path) -> None:
    (config / detection_config.FILE_NAME).write_text("lookback_minutes: 7\n", encoding="utf-8")


def _break_aliases(config: Path) -> None:
    from siaga.geotag import default_geotagger

    break_aliases(config)
    default_geotagger.cache_clear()


def _break_sources(config: Path) -> None:
    """A new feed's entry with a typo in its kind: the whole file is refused, and every source's
    polling stopped with it (the ingest task listing the sources failed) until it was fixed."""
    path = config / "sources.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("sources:\n", "sources:\n  - name: kabar_baru\n    kind: rrs\n", 1),
                    encoding="utf-8")


@pytest.mark.parametrize("breaks", [_break_routing, _break_detection, _break_aliases, _break_sources],
                         ids=["routing", "detection", "aliases", "sources"])
def test_the_detect_job_alerts_through_a_typo(sqlite_url, replay_to_fake_slack, own_config_and_cache, breaks):
    """The demo scenario through the jobs the DAG tasks run: one config file is broken after
    the first detect run, and the flood in Sangsit still reaches BPBD's channel."""
    fake = replay_to_fake_slack(sqlite_url, "xoxb-last-good")
    for i, when in enumerate(demo.scenario_times(3)):
        for name in pipeline.source_names():
            pipeline.ingest(name, when)
        if i == 1:
            breaks(own_config_and_cache)
        pipeline.detect_and_deliver(when)
    assert any("Sangsit" in m["text"] for m in fake.messages("#bpbd-siaga"))


def test_a_refused_sources_file_leaves_its_last_good_version_in_force(db_url, tmp_path):
    """The sources polled come from the last good sources.yaml while the file is refused, with
    the refusal logged at ERROR at its file:line; without a good version ever kept, the
    refusal is raised."""
    from siaga.sources import SourcesFileRefused, sources_in_force

    path = tmp_path / "config" / "sources.yaml"
    path.parent.mkdir()
    (tmp_path / "feed.jsonl").write_text("", encoding="utf-8")
    path.write_text("sources:\n  - name: warga\n    kind: replay\n    path: feed.jsonl\n", encoding="utf-8")
    with store.session_scope(db_url) as session:
        assert [s.name for s in sources_in_force(session, path)] == ["warga"]
    path.write_text("sources:\n  - name: warga\n    kind: replay\n    path: feed.jsonl\n  - name: baru\n    kind: rrs\n",
                    encoding="utf-8")
    with store.session_scope(db_url) as session, errors_logged("siaga.last_good") as refusals:
        (kept,) = sources_in_force(session, path)
    assert kept.name == "warga" and kept.path == tmp_path / "feed.jsonl"  # relative to the folder, as the file's own
    [refusal] = refusals
    assert refusal.startswith("REFUSED") and f"{path}:6:" in refusal and "last good version in force" in refusal
    with store.session_scope(db_url) as session:
        session.execute(sa.delete(store.ConfigState))
    with store.session_scope(db_url) as session, pytest.raises(SourcesFileRefused, match=r"sources.yaml:6:"):
        sources_in_force(session, path)
