"""Routing: the shipped config sends each alert where the agencies expect it, quiet hours hold,
and a wrong config names the file, field and line. (Silences: test_silences.py.)"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from siaga.routing import Router, RoutingConfigError

CONFIG = Path(__file__).resolve().parents[1] / "config" / "routing.yaml"
WITA = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def router() -> Router:
    return Router.load(CONFIG)


def channels(router: Router, **labels: str) -> list[str]:
    return [r.channel for r in router.route(labels)]


def test_disaster_goes_to_bpbd(router):
    assert channels(router, kind="incident", agency="bpbd", hazard="flood", on_road="false") == ["#bpbd-siaga"]


def test_traffic_goes_to_dishub_only(router):
    assert channels(router, kind="incident", agency="dishub", hazard="traffic_accident", on_road="true") == [
        "#dishub-siaga"]


def test_disaster_on_a_road_goes_to_both(router):
    assert sorted(channels(router, kind="incident", agency="bpbd", hazard="landslide", on_road="true")) == [
        "#bpbd-siaga", "#dishub-siaga"]


def test_digest_goes_to_managers_only(router):
    assert channels(router, kind="digest") == ["#siaga-managers"]


def test_unlabelled_alert_falls_back_to_root_receiver(router):
    assert channels(router) == ["#bpbd-siaga"]


def test_receiver_lookup_names_unknown(router):
    assert router.receiver("managers").channel == "#siaga-managers"
    with pytest.raises(KeyError, match="no receiver 'police'"):
        router.receiver("police")


# --- tree semantics on a synthetic config -----------------------------------------------------
TREE = {
    "severities": ["low", "medium", "high", "critical"],
    "receivers": [{"name": n, "channel": f"#{n}"} for n in ("root", "a", "b", "c", "d")],
    "route": {
        "receiver": "root",
        "routes": [
            {"receiver": "a", "match": {"hazard": "flood"}, "continue": True,
             "routes": [{"receiver": "c", "match_re": {"district": "Suka.*"}}]},
            {"match_re": {"hazard": "flood|fire"}, "receiver": "b"},
            {"receiver": "d", "match": {"hazard": "fire"}},
            {"match": {"hazard": "quake"}, "routes": [{"receiver": "d", "match": {"severity": "high"}}]},
        ],
    },
}


def names(router: Router, **labels: str) -> list[str]:
    return [r.name for r in router.route(labels)]


def test_continue_and_first_match_semantics():
    r = Router.from_dict(TREE)
    assert names(r, hazard="flood", district="Buleleng") == ["a", "b"]  # continue, then first match stops
    assert names(r, hazard="flood", district="Sukasada") == ["c", "b"]  # deepest matching child wins
    assert names(r, hazard="fire") == ["b"]  # "d" is never reached: b matched without continue
    assert names(r, hazard="quake", severity="low") == ["root"]  # child route inherits parent receiver
    assert names(r, hazard="quake", severity="high") == ["d"]


def test_match_re_is_anchored():
    r = Router.from_dict(TREE)
    assert names(r, hazard="flood", district="KotaSukasada") == ["a", "b"]
    assert names(r, hazard="firestorm") == ["root"]


# --- quiet hours ------------------------------------------------------------------------------------
QUIET = {
    "severities": ["low", "medium", "high", "critical"],
    "receivers": [
        {"name": "ops", "channel": "#ops", "quiet_hours": {
            "start": "22:00", "end": "06:00", "override_severity": "high",
            "hold": [{"match": {"hazard": "traffic_jam"}}, {"match_re": {"hazard": "road_.*"}, "match": {"severity": "low"}}],
        }},
        {"name": "managers", "channel": "#managers"},
    ],
    "route": {"receiver": "ops"},
}
JAM = {"kind": "incident", "agency": "dishub", "hazard": "traffic_jam"}
at = lambda h, m=0: datetime(2024, 3, 1, h, m, tzinfo=WITA)  # noqa: E731


@pytest.fixture(scope="module")
def quiet() -> Router:
    return Router.from_dict(QUIET)


def test_quiet_hours_wrap_midnight_in_local_time(quiet):
    assert quiet.in_quiet_hours("ops", at(22, 0), "medium", JAM)
    assert quiet.in_quiet_hours("ops", at(3, 0), "low", JAM)
    assert not quiet.in_quiet_hours("ops", at(6, 0), "low", JAM)
    assert not quiet.in_quiet_hours("ops", at(21, 59), "low", JAM)
    # 14:30 UTC is 22:30 in Buleleng
    assert quiet.in_quiet_hours("ops", datetime(2024, 3, 1, 14, 30, tzinfo=timezone.utc), "low", JAM)
    assert not quiet.in_quiet_hours("managers", at(3, 0), "low", JAM)  # no quiet hours configured


def test_quiet_hours_hold_only_what_the_receiver_names(quiet):
    fire = {"kind": "incident", "agency": "bpbd", "hazard": "fire"}
    assert not quiet.in_quiet_hours("ops", at(23, 44), "low", fire)  # a night fire is never held
    assert not quiet.in_quiet_hours("ops", at(23, 44), "low")  # no labels: nothing named, nothing held
    closure = {"kind": "incident", "agency": "dishub", "hazard": "road_closure"}
    assert quiet.in_quiet_hours("ops", at(23, 0), "low", closure)
    assert not quiet.in_quiet_hours("ops", at(23, 0), "medium", closure)  # the rule names severity low


def test_high_severity_overrides_quiet_hours(quiet):
    assert not quiet.in_quiet_hours(quiet.receiver("ops"), at(23), "high", JAM)
    assert not quiet.in_quiet_hours("ops", at(23), "critical", JAM)
    assert quiet.in_quiet_hours("ops", at(23), "medium", JAM)


@pytest.mark.parametrize("hazard", ["flood", "fire", "earthquake", "landslide", "tsunami", "drought"])
@pytest.mark.parametrize("severity", ["low", "medium", "high", "critical"])
def test_shipped_routing_pages_bpbd_at_any_hour_for_any_disaster(router, hazard, severity):
    labels = {"kind": "incident", "agency": "bpbd", "hazard": hazard, "severity": severity, "on_road": "false",
              "level": "village"}
    for hour in range(24):
        for receiver in router.route(labels):
            assert not router.in_quiet_hours(receiver, at(hour, 30), severity, labels), (hazard, severity, hour)


def test_shipped_routing_holds_only_low_traffic_jams_at_night(router):
    jam = {"kind": "incident", "agency": "dishub", "hazard": "traffic_jam", "on_road": "true"}
    accident = {**jam, "hazard": "traffic_accident"}
    assert router.in_quiet_hours("dishub", at(23), "low", jam)
    assert not router.in_quiet_hours("dishub", at(23), "medium", jam)
    assert not router.in_quiet_hours("dishub", at(23), "low", accident)
    assert not router.in_quiet_hours("dishub", at(12), "low", jam)


def test_quiet_hours_end(quiet):
    assert quiet.quiet_hours_end("ops", at(23, 0)) == datetime(2024, 3, 2, 6, 0, tzinfo=WITA)
    assert quiet.quiet_hours_end("ops", datetime(2024, 3, 2, 1, 0, tzinfo=WITA)) == datetime(2024, 3, 2, 6, 0, tzinfo=WITA)
    assert quiet.quiet_hours_end("ops", datetime(2024, 3, 2, 12, 0, tzinfo=WITA)) is None


def test_quiet_hours_reject_naive_time_and_unknown_severity(quiet):
    with pytest.raises(ValueError, match="naive"):
        quiet.in_quiet_hours("ops", datetime(2024, 3, 1, 23, 0), "low", JAM)
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        quiet.in_quiet_hours("ops", at(23), "urgent", JAM)


def test_quiet_hours_must_name_what_they_hold():
    data = {**QUIET, "receivers": [{"name": "ops", "channel": "#ops", "quiet_hours": {"start": "22:00", "end": "06:00"}}]}
    with pytest.raises(RoutingConfigError, match=r"receivers\[0\]\.quiet_hours\.hold: 'hold' is a required property"):
        Router.from_dict(data)


# --- config errors -------------------------------------------------------------------------------------
def write_broken(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(CONFIG.read_text())
    edit(data)
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["route"]["routes"][2].update(receiver="police"),
     r":\d+:\d+: route\.routes\[2\]\.receiver: unknown receiver 'police'"),
    (lambda d: d["route"]["routes"][1].update(group_by=["hazard"]),
     r":\d+:\d+: route\.routes\[1\]\.group_by: Additional properties .*'group_by'"),
    (lambda d: d["route"]["routes"][0].update(match_re={"hazard": "(flood"}),
     r":\d+:\d+: route\.routes\[0\]\.match_re\.hazard: bad regular expression"),
    (lambda d: d["receivers"][0].update(channel="xoxb-123-secret"),  # a token where a channel belongs: not quoted back
     r":\d+:\d+: receivers\[0\]\.channel: '\*\*\*' does not match"),
    (lambda d: d["receivers"][1].update(token="xoxb-1"),
     r":\d+:\d+: receivers\[1\]\.token: Additional properties .*'token'"),
    (lambda d: d["receivers"][1]["quiet_hours"].update(start="25:00"),
     r":\d+:\d+: receivers\[1\]\.quiet_hours\.start: '25:00' does not match"),
    (lambda d: d["receivers"][1]["quiet_hours"].update(override_severity="urgent"),
     r":\d+:\d+: receivers\[1\]\.quiet_hours\.override_severity: 'urgent' is not one of severities"),
    (lambda d: d["receivers"][1]["quiet_hours"]["hold"][0].update(match_re={"hazard": "(jam"}),
     r":\d+:\d+: receivers\[1\]\.quiet_hours\.hold\[0\]\.match_re\.hazard: bad regular expression"),
    # a matcher no alert can meet: a label alerts do not carry, or a value it never has
    (lambda d: d["route"]["routes"][2].update(match={"agncy": "dishub"}),
     r":\d+:\d+: route\.routes\[2\]\.match\.agncy: 'agncy' is not one of \['kind', 'hazard', 'agency'"),
    (lambda d: d["route"]["routes"][2].update(match={"agency": "dishubb"}),
     r":\d+:\d+: route\.routes\[2\]\.match\.agency: 'dishubb' is not one of \['bpbd', 'dishub'\]"),
    (lambda d: d["route"]["routes"][1].update(match={"kind": "incident", "on_road": True}),
     r":\d+:\d+: route\.routes\[1\]\.match\.on_road: True is not one of \['true', 'false'\]"),
    (lambda d: d["route"]["routes"][0].update(match_re={"severty": "high|critical"}),
     r":\d+:\d+: route\.routes\[0\]\.match_re\.severty: 'severty' is not one of"),
    (lambda d: d["receivers"][1]["quiet_hours"]["hold"][0].update(match={"hazard": "traffic_jam", "severity": "urgent"}),
     r":\d+:\d+: receivers\[1\]\.quiet_hours\.hold\[0\]\.match\.severity: 'urgent' is not one of"),
    (lambda d: d["route"]["routes"][0].update(match={"kind": "digests"}),
     r":\d+:\d+: route\.routes\[0\]\.match\.kind: 'digests' is not one of \['incident', 'digest'\]"),
    (lambda d: d["receivers"].append(dict(d["receivers"][0])),
     r":\d+:\d+: receivers\[3\]\.name: duplicate receiver 'bpbd'"),
    (lambda d: d["route"].update(match={"hazard": "flood"}),
     r":\d+:\d+: route\.match: the root route matches every alert"),
    (lambda d: d["route"].pop("receiver"), r":\d+:\d+: route\.receiver: the root route needs a receiver"),
    (lambda d: d.update(timezone="Mars/Olympus"), r":\d+:\d+: timezone: unknown time zone"),
    (lambda d: d.pop("severities"), r":1:1: severities: 'severities' is a required property"),
    # incidents are given vocabulary.SEVERITIES: a list without one of them failed at the first alert of it
    (lambda d: d.update(severities=["low", "medium"]), r":\d+:\d+: severities: must be \['low', 'medium', 'high', 'critical'\]"),
    (lambda d: d.update(severities=["critical", "high", "medium", "low"]), r":\d+:\d+: severities: must be "),
    (lambda d: d.update(timezone="Asia/" + "x" * 300), r":\d+:\d+: timezone: unknown time zone"),  # was OSError
])
def test_bad_config_names_file_field_and_line(tmp_path, edit, expected):
    path = write_broken(tmp_path, edit)
    with pytest.raises(RoutingConfigError, match=re.escape(str(path)) + expected) as err:
        Router.load(path)
    assert str(err.value).startswith(str(path))


def test_error_line_points_at_the_field(tmp_path):
    path = write_broken(tmp_path, lambda d: d["route"]["routes"][2].update(receiver="police"))
    with pytest.raises(RoutingConfigError) as err:
        Router.load(path)
    line, column = map(int, str(err.value)[len(str(path)) + 1:].split(":")[:2])
    assert path.read_text().splitlines()[line - 1][column - 1:].startswith("police")


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(RoutingConfigError, match="cannot read"):
        Router.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("route: [unclosed\n")
    with pytest.raises(RoutingConfigError, match=r"bad\.yaml:1:8: \(syntax\): '\[' opened here is never closed"):
        Router.load(bad)


@pytest.mark.parametrize("depth", [65, 150, 5000])
def test_config_nested_too_deeply_is_refused_with_its_place(tmp_path, depth):
    """Lists nested past any sensible config (the composer and the schema check recurse per
    level): one clear error, not a RecursionError."""
    path = tmp_path / "routing.yaml"
    path.write_text("severities: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(RoutingConfigError, match=re.escape(str(path)) + r":1:\d+: .*nested deeper than 64 levels"):
        Router.load(path)
