"""Classification with the shipped lists: what duty officers rely on."""
from pathlib import Path

import pytest

from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hs() -> HazardSet:
    return HazardSet.load(REPO / "config" / "hazards")


def ids(hs: HazardSet, text: str) -> list[str]:
    return [m.hazard for m in hs.classify(text)]


def test_required_hazard_ids_and_agencies(hs):
    required = {"flood", "landslide", "fire", "earthquake", "tsunami", "strong_wind", "fallen_tree", "drought",
                "traffic_jam", "traffic_accident", "road_damage", "road_closure"}
    assert required <= set(hs.hazards)
    assert hs.hazards["flood"].agency == "bpbd"
    assert hs.hazards["traffic_jam"].agency == "dishub"
    assert hs.hazards["flood"].label_id == "Banjir"


@pytest.mark.parametrize("text,hazard", [
    ("Banjir lagi di Seririt", "flood"),
    ("bnjr parah bgt", "flood"),
    ("BANJIRRRR depan pasar", "flood"),
    ("rumah kami kebanjiran semalam", "flood"),
    ("jalanan tergenang air sampai lutut", "flood"),
    ("#banjirbuleleng hari ini", "flood"),
    ("#infobanjir singaraja", "flood"),
    ("tanah longsor di Gitgit", "landslide"),
    ("longsoran menimbun rumah", "landslide"),
    ("rumah warga terbakar di Banjar Tegal", "fire"),
    ("dilalap si jago merah", "fire"),
    ("gempa terasa kuat di Singaraja", "earthquake"),
    ("linuh gede pisan", "earthquake"),
    ("BMKG: peringatan dini tsunami untuk pantai utara Bali", "tsunami"),
    ("angin puting beliung merusak atap", "strong_wind"),
    ("pohon tumbang di jalur Bedugul", "fallen_tree"),
    ("#pohontumbang di Pancasari", "fallen_tree"),
    ("warga Tejakula kekeringan, krisis air bersih", "drought"),
    ("macet total di Jl. Ahmad Yani", "traffic_jam"),
    ("mcet parah arah Lovina", "traffic_jam"),
    ("kemacetannya sampai Sangsit", "traffic_jam"),
    ("lakalantas di Kubutambahan", "traffic_accident"),
    ("laka tunggal pagi ini", "traffic_accident"),
    ("motor ditabrak truk", "traffic_accident"),
    ("jalan rusak parah banyak lubang", "road_damage"),
    ("jalan ditutup karena upacara", "road_closure"),
])
def test_positive_posts(hs, text, hazard):
    assert hazard in ids(hs, text)


@pytest.mark.parametrize("text", [
    "gempar satu kampung karena berita itu",
    "Banjar Dinas Kaja menggelar rapat",
    "banjir diskon akhir tahun di toko kami",
    "nonton film sampai banjir air mata",
    "warung kebanjiran order menjelang Galungan",
    "lagi macet rezeki bulan ini",
    "kredit macet di koperasi",
    "naik kereta api ke Surabaya",
    "menabrak aturan itu tidak baik",
    "harga cabai longsor",
    "hari ini cerah, jalan-jalan ke pantai",
])
def test_negative_posts(hs, text):
    assert ids(hs, text) == []


def test_tsunami_denial_vetoes_tsunami_but_keeps_earthquake(hs):
    text = "Gempa M5,1 guncang Buleleng, tidak berpotensi tsunami"
    assert ids(hs, text) == ["earthquake"]
    explained = {m.hazard: m for m in hs.explain(text)}
    assert explained["tsunami"].terms == ()
    assert explained["tsunami"].vetoed_by == ("tidak berpotensi tsunami",)
    assert ids(hs, "hoaks tsunami beredar di WA") == []


def test_match_survives_when_one_occurrence_is_unvetoed(hs):
    [m] = [m for m in hs.classify("banjir diskon? bukan, ini banjir beneran di Sukasada") if m.hazard == "flood"]
    assert m.vetoed_by == ("banjir diskon",)
    assert m.terms == ("banjir",)
    assert len(m.spans) == 1


def test_spans_point_at_original_text(hs):
    text = "Info: BANJIRRR sepinggang di Jl. Pantai Lovina"
    [flood] = [m for m in hs.classify(text) if m.hazard == "flood"]
    assert [text[a:b] for a, b in flood.spans] == ["BANJIRRR"]
    assert flood.severity_cues == ("sepinggang",)


def test_spans_made_when_read_are_the_spans_everywhere(hs):
    """Spans are made on first read (`HazardMatch`): a copy, a pickle, equality and hash of a
    match whose spans were never read give the same as of one whose spans were."""
    import copy
    import pickle

    text = "Info: BANJIRRR di Jl. Pantai Lovina, lalin macet"
    unread, read = hs.classify(text), hs.classify(text)
    for m in read:
        assert m.spans  # read now
    for m in unread:
        assert "spans" not in vars(m)  # not made yet
    assert pickle.loads(pickle.dumps(unread)) == read == copy.deepcopy(unread)
    assert [hash(m) for m in unread] == [hash(m) for m in read]
    assert [text[a:b] for m in unread for a, b in m.spans] == ["BANJIRRR", "macet"]


def test_hazard_on_road_raises_the_traffic_consequence(hs):
    found = {m.hazard: m for m in hs.classify("Pohon tumbang melintang di jalan, tidak bisa dilewati")}
    assert "fallen_tree" in found
    assert found["road_closure"].terms  # Dishub hears
    flood = {m.hazard: m for m in hs.classify("banjir di jalan raya Seririt, pengendara hati-hati")}
    assert flood["road_closure"].via_road  # obstructed road: the fallback consequence
    assert "traffic_jam" not in flood  # no jam words, no jam
    assert not flood["flood"].via_road
    assert ids(hs, "banjir di rumah warga") == ["flood"]


def test_explain_includes_vetoed_hazards_classify_does_not(hs):
    text = "banjir promo di mall"
    assert hs.classify(text) == []
    [m] = hs.explain(text)
    assert (m.hazard, m.terms, m.vetoed_by) == ("flood", (), ("banjir promo",))


def test_classification_order_is_stable(hs):
    text = "gempa lalu kebakaran dan banjir"
    assert ids(hs, text) == ids(hs, text)
    order = list(hs.hazards)
    got = ids(hs, text)
    assert got == sorted(got, key=order.index)


def test_fingerprint_is_stable_and_changes_with_content(tmp_path):
    a = HazardSet.load(REPO / "config" / "hazards")
    b = HazardSet.load(REPO / "config" / "hazards")
    assert a.fingerprint() == b.fingerprint()
    copy = tmp_path / "hazards"
    copy.mkdir()
    for p in (REPO / "config" / "hazards").glob("*.yaml"):
        (copy / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "abbreviations.csv").write_text((REPO / "config" / "abbreviations.csv").read_text(encoding="utf-8"))
    assert HazardSet.load(copy).fingerprint() == a.fingerprint()
    flood = copy / "flood.yaml"
    flood.write_text(flood.read_text(encoding="utf-8").replace("  - bnjr\n", "  - bnjr\n  - banjir gede\n"), encoding="utf-8")
    changed = HazardSet.load(copy)
    assert changed.fingerprint() != a.fingerprint()
    assert "flood" in [m.hazard for m in changed.classify("ada banjir gede")]


def test_default_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAGA_CONFIG_DIR", str(tmp_path))
    assert default_hazard_dir() == tmp_path / "hazards"


def test_hostile_input_does_not_crash(hs):
    for text in ["", "   ", "#", "####", "\u200b\u200b", "🔥🔥🔥", "a" * 10000, "banjir" * 500, "#" + "banjir" * 50]:
        hs.classify(text)
        hs.explain(text)
