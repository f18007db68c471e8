"""Families of everyday wording the shipped lists must read (vocabulary rounds 2 and 3, issue 16).

Held-out data showed whole families missed: road damage, drought and clean-water shortage,
tidal flooding mistaken for a tsunami, and crowd flood reports that describe the water without
saying "banjir". Each family is pinned here with sentences written for these tests (Buleleng
places, the way people post), together with the look-alikes that must stay quiet.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from siaga.hazards import HazardSet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hs() -> HazardSet:
    return HazardSet.load(REPO / "config" / "hazards")


def found(hs: HazardSet, text: str) -> dict[str, bool]:
    """hazard -> reached only through a road consequence (via_road)."""
    return {m.hazard: m.via_road for m in hs.classify(text)}


# -- road damage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Hati-hati, jalanan yg berlubang di depan SDN 1 Kalibukbuk sudah makan korban",
    "lubang besar di tengah jalan raya Seririt, pengendara motor jatuh tadi malam",
    "Jalan menuju Desa Sidatapa makin rusak, jln banyak yg berlubang",
    "Bahu jalan amblas sepanjang 10 meter di jalur Singaraja-Kintamani",
    "Aspal ambles di tikungan Gitgit, retakan di jalan makin lebar",
    "Jembatan gantung putus, anak-anak Desa Galungan tidak bisa ke sekolah",
    "Jembatan ikut hanyut terbawa arus Tukad Saba",
    "Oprit jembatan ambrol setelah hujan deras semalam",
    "senderan jalan jebol, separuh badan jalan terancam",
    "Jalane uug pesan di Banjar Dinas Kaja",
])
def test_road_damage_is_read_in_its_everyday_forms(hs, text):
    assert "road_damage" in found(hs, text)


def test_a_collapsed_retaining_wall_is_a_landslide_and_damages_the_road(hs):
    got = found(hs, "TPT jebol di jalan Desa Pegayaman setelah hujan deras")
    assert got["landslide"] is False
    assert got["road_damage"] is True  # Dishub hears through landslide's road consequence
    got = found(hs, "Tembok penahan tanah roboh, material menutup sebagian jalan")
    assert "landslide" in got and "road_damage" in got


@pytest.mark.parametrize("text", [
    "gigiku berlubang, ngilu banget",
    "rumah makan di Jalan Lubang Buaya rusak parah? bukan, itu hoaks",
    "jalan hidupnya rusak karena judi online",
    "di jalan putus asa, akhirnya pulang",
    "jalan di desa kami tidak rusak kok, mulus",
])
def test_road_damage_lookalikes_stay_quiet(hs, text):
    assert "road_damage" not in found(hs, text)


# -- drought and clean-water shortage ----------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Sumur warga sudah kering, kami terpaksa beli air tangki Rp 150 ribu",
    "BPBD Buleleng droping air bersih ke Desa Sumberkima hari ini",
    "Dropping air 5 tangki untuk warga Tembok",
    "Mata air mulai mengering, warga Pedawa antre air bersih tiap pagi",
    "Debit mata air berkurang drastis sejak Agustus",
    "Warga Tejakula kesulitan air, tiga minggu tak ada hujan",
    "Tangki air bersih keliling Kecamatan Gerokgak tiap Senin",
    "Padi puso, sawah retak-retak karena kemarau",
    "Embung mengering, petani Kubutambahan gagal tanam",
])
def test_drought_and_clean_water_shortage(hs, text):
    assert "drought" in found(hs, text)


@pytest.mark.parametrize("text", [
    "dompetku kering kerontang akhir bulan",
    "rambutku kering habis dicat",
    "sosialisasi antisipasi kekeringan di kantor desa",
    "Tiga mobil tangki air dikerahkan memadamkan kebakaran gudang di Banyuasri",
])
def test_drought_lookalikes_stay_quiet(hs, text):
    assert "drought" not in found(hs, text)


# -- tidal flooding is not a tsunami -------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("Air laut naik sampai ke permukiman warga di Pantai Penimbangan", {"tidal_flood"}),
    ("Banjir rob lagi di Kampung Bugis, air laut pasang masuk rumah", {"tidal_flood", "flood"}),
    ("Luapan air laut merendam jalan di pesisir Pengastulan", {"tidal_flood"}),
    ("Gelombang pasang menerjang pesisir Tejakula, warung rusak", {"high_waves"}),
])
def test_sea_water_rising_is_tide_not_tsunami(hs, text, expected):
    got = found(hs, text)
    assert "tsunami" not in got
    assert expected <= set(got)


@pytest.mark.parametrize("text", [
    "BMKG: peringatan dini tsunami untuk pantai utara Bali, segera menjauh dari pantai",
    "Gempa M6,5 berpotensi tsunami, warga pesisir Buleleng mengungsi",
    "tsunamiii!!! air laut surut tiba-tiba lalu datang lagi",
])
def test_tsunami_from_tsunami_words_and_warnings(hs, text):
    assert "tsunami" in found(hs, text)


def test_receding_sea_adds_to_a_tsunami_report_but_does_not_make_one(hs):
    assert found(hs, "Air laut surut jauh sore ini, anak-anak cari kerang") == {}
    [tsunami] = [m for m in hs.classify("Tsunami! air laut surut tiba-tiba di Lovina") if m.hazard == "tsunami"]
    assert "laut surut tiba tiba" in tsunami.severity_cues


def test_ordinary_tide_and_drills_stay_quiet(hs):
    assert found(hs, "air laut pasang surut normal hari ini, nelayan tetap melaut") == {}
    [tidal] = [m for m in hs.explain("air laut pasang surut normal hari ini") if m.hazard == "tidal_flood"]
    assert tidal.terms == () and "pasang surut" in tidal.vetoed_by
    assert "tsunami" not in found(hs, "Simulasi tsunami di Pantai Lovina pagi ini, warga diimbau tidak panik")
    assert "tsunami" not in found(hs, "Papan jalur evakuasi tsunami di Desa Kalibukbuk sudah dipasang")
    assert found(hs, "jangan pasang tinggi-tinggi harapanmu sama dia") == {}


# -- crowd flood reports without the word "banjir" -----------------------------------------------

@pytest.mark.parametrize("text", [
    "Di Banjar Dinas Kelod sudah sepinggang, mohon kirim perahu",
    "Masih semata kaki di depan pasar Anyar",
    "air udah sampe selutut di gang sebelah",
    "airnya sebetis, motor mogok semua",
    "Got mampet, air meluber ke jalan",
    "Selokan tersumbat sampah, tiap hujan begini terus",
    "Saluran yang mampet bikin halaman sekolah jadi kolam",
    "Kalau hujan air cepat naik, rumah kemasukan air lagi",
    "belom surut2 dari subuh",
    "bajir lg di Seririt",
])
def test_crowd_flood_reports_describing_the_water(hs, text):
    assert "flood" in found(hs, text)


@pytest.mark.parametrize("text", [
    "rambutnya sudah sepinggang, mau dipotong",
    "roknya hampir selutut, sopan kok",
    "celana pendek sampai selutut boleh dipakai ke pura?",
    "hidung mampet karena pilek",
    "blom ada bnjir di Sangsit, aman",
])
def test_crowd_flood_lookalikes_stay_quiet(hs, text):
    assert "flood" not in found(hs, text)


# -- chat spellings and Balinese ------------------------------------------------------------------

@pytest.mark.parametrize("text,hazard", [
    ("bnjir lg di Kampung Anyar", "flood"),          # dropped vowel: a listed spelling
    ("longsorr di jalur Gitgit!!", "landslide"),     # doubled letters squeezed
    ("mcet parah depan Pasar Banyuasri", "traffic_jam"),
    ("air sdh naek, blom surut jg", "flood"),        # abbreviations.csv: naek, blom
    ("blabar gede di Tukad Buleleng", "flood"),      # Balinese: blabar = banjir
    ("linuh keras sajan", "earthquake"),             # Balinese: linuh = gempa
    ("jalan bnyk berlubang di Sawan", "road_damage"),  # bnyk = banyak
])
def test_chat_spellings_and_balinese(hs, text, hazard):
    assert hazard in found(hs, text)


# -- the same families through `siaga tag` (vocabulary round 3) -----------------------------------
# One `siaga tag` run over a batch of posts, as an operator or the pipeline feeds it: each family
# (road and bridge damage by class or role, retaining walls and slopes, dry water sources and
# clean-water aid, sea water rising, lifted tsunami warnings and comparisons, drainage and pump
# requests, crash verbs) with the look-alikes that must stay quiet. Exactly what is reported.

CLI_CASES = [
    # road and bridge damage: a road named by its class or role, slang, asphalt, bridges by kind
    ("Jalan provinsi amblas di Gitgit, hati-hati", ["road_damage"]),
    ("jalannya ancur parah ke Pancasari", ["road_damage"]),
    ("aspalnya mengelupas semua habis hujan", ["road_damage"]),
    ("Jembatan gantung ambruk, warga Desa Lemukih terisolir", ["road_closure", "road_damage"]),
    # retaining walls and slopes: a landslide, and the road's damage through its road consequence
    ("TPT ambruk di jalan Desa Pegayaman", ["landslide", "road_damage"]),
    ("Tebing ambles menutup jalan ke Munduk", ["landslide", "road_closure"]),
    # drought: dry water sources, clean water brought in, Balinese
    ("sumurnya udah kering sejak Agustus", ["drought"]),
    ("Mata air sudah mengering, warga Pedawa antre air", ["drought"]),
    ("BPBD kirim air bersih ke Desa Tembok", ["drought"]),
    ("BPBD kirim air bersih untuk pengungsi banjir di Seririt", ["flood"]),  # relief, not a drought
    ("sumure tuh, kuangan yeh di Banjar Dinas Kaja", ["drought"]),
    # sea water rising is the tide, never a tsunami
    ("air laut mulai naik ke permukiman Kampung Bugis", ["tidal_flood"]),
    ("kampung nelayan kebanjiran air laut", ["flood", "tidal_flood"]),
    ("ombak tinggi seperti tsunami kecil di Lovina", ["high_waves"]),
    # tsunami: an official warning reports one, a lifted warning does not
    ("Peringatan dini tsunami untuk pantai utara Bali, segera menjauh dari pantai", ["tsunami"]),
    ("Peringatan dini tsunami telah berakhir, warga boleh kembali", []),
    ("BMKG mencabut peringatan dini tsunami", []),
    # crowd flood reports: failing drainage, pump requests, water going down
    ("#drainaseburuk di Banyuasri", ["flood"]),
    ("mohon kirim pompa ke Kampung Anyar", ["flood"]),
    ("Alhamdulillah sudah mulai surut", ["flood"]),
    ("butuh pompa asi yang bagus", []),
    ("air laut sudah mulai surut", []),
    ("air sampe pinggang di gang sebelah", ["flood"]),       # "sampe" arrives as "sampai"
    ("Tanggul bocor, air masuk ke permukiman Kampung Baru", ["flood"]),
    ("jalan jadi sungai tiap hujan deras", ["flood", "road_closure"]),
    ("tukad tuh sejak Juli, petani keweh yeh", ["drought"]),
    # crash verbs without "kecelakaan"
    ("Truk menyeruduk warung di Jalan Seririt", ["traffic_accident"]),
    ("mobil tercebur ke sungai di Kubutambahan", ["traffic_accident"]),
    # look-alikes
    ("hp ku rusak parah", []),
    ("bibirku kering banget", []),
    ("jembatan cinta kita putus", []),
]


def test_round3_families_through_siaga_tag():
    posts = "".join(json.dumps({"id": i, "text": text}) + "\n" for i, (text, _) in enumerate(CLI_CASES))
    out = subprocess.run([sys.executable, "-m", "siaga.cli", "tag"], input=posts, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    got = {row["id"]: sorted(row["hazards"]) for row in map(json.loads, out.stdout.splitlines())}
    assert {CLI_CASES[i][0]: hazards for i, hazards in got.items()} == {text: want for text, want in CLI_CASES}
