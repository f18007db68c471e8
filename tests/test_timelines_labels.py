"""Pages and exports name hazards as detection does: by the lists in force (the operators' files,
or the last good set while those are invalid), re-read at most once a minute."""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siaga import cli, hazard_lists, store
from siaga.store import Incident
from siaga.timelines.labels import HazardsInForce
from siaga.timelines.web import create_app

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 1, 14, 6, 0, tzinfo=timezone.utc)
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hazard_dir(tmp_path, monkeypatch) -> Path:
    """Two of the shipped lists in a config directory of their own, drought relabelled so a page
    showing it can only have read this directory."""
    config = tmp_path / "config"
    directory = config / "hazards"
    directory.mkdir(parents=True)
    for name in ("drought", "earthquake"):
        shutil.copy(REPO / "config" / "hazards" / f"{name}.yaml", directory)
    relabel(directory, "Kemarau Uji")
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(config))
    return directory


def relabel(directory: Path, label: str) -> None:
    path = directory / "drought.yaml"
    text = re.sub(r"(?m)^(labels:\n  id: ).*$", lambda m: m[1] + label, path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def drought_db(sqlite_url) -> str:
    """A database with one incident, a drought in Kec. Sukasada."""
    with store.session_scope(sqlite_url) as s:
        s.add(Incident(hazard="drought", level="district", area_code="51.08.05", area_name="Sukasada", district="Sukasada",
                       state="open", severity="medium", posts=4, authors=3, notified_posts=4, opened_at=T0, last_activity_at=T0))
    return sqlite_url


def drought_id(url: str) -> int:
    with store.session_scope(url) as s:
        return s.scalars(select(Incident.id).where(Incident.hazard == "drought")).one()


def hazard_row_label(html: str) -> str:
    return re.search(r'<tr class="incident"[^>]*>.*?</td>\s*<td>([^<]*)</td>', html, re.S).group(1)


def hazard_options(html: str) -> list[str]:
    select = re.search(r'<select name="hazard">(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]+)"', select)


def test_pages_follow_the_lists_in_force_and_keep_the_last_good_set(hazard_dir, drought_db):
    clock = Clock()
    client = TestClient(create_app(drought_db, hazards=HazardsInForce(max_age=60, clock=clock)))
    page = client.get("/").text
    assert hazard_options(page) == ["drought", "earthquake"]
    assert hazard_row_label(page) == "Kemarau Uji"
    with store.session_scope(drought_db) as s:  # detection ran and recorded this set as the last good one
        hazard_lists.in_force(s)

    relabel(hazard_dir, "Kemarau Baru")
    clock.now += 30
    assert hazard_row_label(client.get("/").text) == "Kemarau Uji"  # read a moment ago: not re-read yet
    clock.now += 31
    assert hazard_row_label(client.get("/").text) == "Kemarau Baru"  # an operator's change shows within a minute

    (hazard_dir / "earthquake.yaml").write_text("id: [earthquake\n", encoding="utf-8")  # a typo at 3 a.m.
    clock.now += 61
    page = client.get("/")
    assert page.status_code == 200
    assert hazard_row_label(page.text) == "Kemarau Uji"  # the last good set, as detection uses
    assert hazard_options(page.text) == ["drought", "earthquake"]


def test_without_any_valid_lists_ids_stand_in(hazard_dir, drought_db, tmp_path):
    (hazard_dir / "drought.yaml").write_text("id: drought\nlabels: {id: 1}\n", encoding="utf-8")
    client = TestClient(create_app(drought_db, hazards=HazardsInForce()))
    page = client.get("/")
    assert page.status_code == 200 and hazard_row_label(page.text) == "drought"
    incident_id = drought_id(drought_db)
    alert = ET.fromstring(client.get(f"/incidents/{incident_id}/cap.xml").content)
    info = alert.find(CAP + "info")
    assert info.find(CAP + "event").text == "drought" and info.find(CAP + "category").text == "Other"
    out = tmp_path / "drought.xml"
    assert cli.main(["export", "--incident", str(incident_id), "--format", "cap", "--out", str(out), "--db", drought_db]) == 0
    assert ET.parse(out).getroot().find(CAP + "info").find(CAP + "event").text == "drought"
