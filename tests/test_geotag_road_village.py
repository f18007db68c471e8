"""A road named by a village along it ("jalan raya Kubutambahan") places the village too (issue
18, cause 6), so a minimal accident alert says where; a road whose name holds no village does
not gain one."""
from __future__ import annotations

import pytest

from siaga.geotag import default_geotagger


@pytest.fixture(scope="module")
def geotagger():
    return default_geotagger()


def test_village_named_in_a_road_name_is_placed(geotagger):
    places = geotagger.tag("Kecelakaan di jalan raya Kubutambahan, truk tabrak motor").places
    kinds = {(p.kind, p.name) for p in places}
    assert ("road", "Jalan Raya Singaraja-Amlapura") in kinds
    [village] = [p for p in places if p.kind == "village"]
    assert (village.name, village.district) == ("Kubutambahan", "Kubutambahan")
    assert "road's name" in village.reason


def test_a_road_without_a_village_in_its_name_adds_none(geotagger):
    places = geotagger.tag("macet di jalan raya singaraja amlapura").places
    assert [p.kind for p in places] == ["road"]
