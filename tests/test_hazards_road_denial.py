"""Second-round rules: the traffic consequence of a hazard on a road, denials, figurative uses."""
from pathlib import Path

import pytest

from siaga.hazards import HazardSet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hs() -> HazardSet:
    return HazardSet.load(REPO / "config" / "hazards")


def found(hs: HazardSet, text: str) -> dict:
    return {m.hazard: m for m in hs.classify(text)}


@pytest.mark.parametrize("text,hazard,consequence", [
    ("Banjir di Jl. Ahmad Yani Singaraja, jalan tidak bisa dilewati", "flood", "road_closure"),
    ("genangan air setinggi lutut di badan jalan Seririt", "flood", "road_closure"),
    ("pohon tumbang melintang di jalur Singaraja-Bedugul", "fallen_tree", "road_closure"),
    ("longsor menutup jalan di Gitgit, akses terputus", "landslide", "road_closure"),
    ("banjir bikin jalan amblas di Sawan", "flood", "road_damage"),
])
def test_hazard_on_a_road_raises_the_traffic_consequence(hs, text, hazard, consequence):
    got = found(hs, text)
    assert hazard in got and consequence in got
    assert hs.hazards[consequence].agency == "dishub"
    assert "traffic_jam" not in got  # no jam words: a flooded road is not called a jam


def test_jam_words_give_the_jam_and_no_guessed_closure(hs):
    got = found(hs, "banjir di jalan raya Seririt, lalu lintas macet panjang")
    assert {"flood", "traffic_jam"} <= set(got)
    assert not got["traffic_jam"].via_road  # said in so many words
    assert "road_closure" not in got  # the fallback stays quiet once Dishub already hears


def test_blocked_road_beats_the_fallback_and_a_hazard_off_road_raises_nothing(hs):
    assert set(found(hs, "banjir di rumah warga Banjar Paketan")) == {"flood"}
    assert set(found(hs, "kebakaran rumah di Kampung Anyar")) == {"fire"}
    got = found(hs, "pohon tumbang di jalan, jalan ditutup sementara")
    assert got["road_closure"].terms


def test_denied_closure_cue_does_not_raise_a_closure(hs):
    got = found(hs, "longsor kecil di Wanagiri, tidak ada penutupan jalan")
    assert "landslide" in got
    assert "road_closure" not in got or got["road_closure"].via_road


@pytest.mark.parametrize("text,hazard,cue", [
    ("Gempa M5,1 guncang Buleleng, tidak berpotensi tsunami", "earthquake", "berpotensi tsunami"),
    ("kebakaran gudang di Banyuasri, tidak ada korban jiwa", "fire", "korban jiwa"),
    ("kecelakaan di Jl. Udayana, belum ada laporan korban jiwa", "traffic_accident", "korban jiwa"),
    ("banjir di Seririt, korban jiwa nihil", "flood", "korban jiwa"),
])
def test_severity_cue_inside_a_denial_does_not_count(hs, text, hazard, cue):
    got = found(hs, text)
    assert hazard in got
    assert cue not in got[hazard].severity_cues


def test_severity_counts_when_not_denied(hs):
    got = found(hs, "kecelakaan di Jl. Udayana, dua orang meninggal, tidak ada yang selamat")
    assert "meninggal" in got["traffic_accident"].severity_cues


@pytest.mark.parametrize("text", [
    "alhamdulillah tidak ada banjir di Singaraja hari ini",
    "tidak terjadi longsor di jalur Gitgit",
    "jalan ke Lovina tdk macet kok",
    "gak ada kecelakaan, aman",
])
def test_denied_hazard_does_not_fire(hs, text):
    assert hs.classify(text) == []
    assert any(m.vetoed_by for m in hs.explain(text))  # the operator sees why


def test_not_only_is_no_denial(hs):
    assert {"flood", "landslide"} <= set(found(hs, "tidak hanya banjir, longsor juga terjadi di Sukasada"))


@pytest.mark.parametrize("text", [
    "postingan itu banjir pujian dari netizen",
    "gempa politik jelang pilkada Buleleng",
    "pemerintah kebakaran jenggot soal data itu",
    "lagi macet ide buat tugas",
    "toko baru itu banjir pembeli",
    "pasar murah diserbu pembeli",
    "kami mengenang almarhum sebagai orang baik",
])
def test_figurative_uses_do_not_fire(hs, text):
    assert hs.classify(text) == []


@pytest.mark.parametrize("text,hazard", [
    ("flood in Singaraja this morning", "flood"),
    ("streets flooded near Lovina", "flood"),
    ("landslide on the road to Munduk", "landslide"),
    ("traffic jam at the Seririt junction", "traffic_jam"),
    ("accident near Kubutambahan, two motorbikes", "traffic_accident"),
    ("fallen tree near Pancasari", "fallen_tree"),
    ("road closed at Gitgit", "road_closure"),
    ("earthquake felt strongly in Singaraja", "earthquake"),
])
def test_english_posts(hs, text, hazard):
    assert hazard in found(hs, text)


@pytest.mark.parametrize("text,hazard", [
    ("tanah ambles di Desa Pancasari", "landslide"),
    ("jalan amblas di Tejakula", "road_damage"),
    ("jalan berlubang di Jl. Pramuka", "road_damage"),
    ("ada pengalihan arus di Jl. Gajah Mada", "road_closure"),
    ("tabrakan beruntun di Jl. Singaraja-Gilimanuk", "traffic_accident"),
    ("karhutla di lereng bukit", "fire"),
    ("puting beliung terjang Desa Sangsit", "strong_wind"),
    ("angin ribut semalam", "strong_wind"),
    ("gempa bumi terasa di Buleleng", "earthquake"),
    ("lindu gede", "earthquake"),
])
def test_slang_and_variants(hs, text, hazard):
    assert hazard in found(hs, text)


def test_menggenang_needs_its_double_g(hs):
    assert "flood" in found(hs, "air menggenang di depan pasar")
    assert "flood" not in found(hs, "warga mengenang almarhum")


def test_chat_and_balinese_negations_deny_too(hs):
    assert hs.classify("tusing ada banjir di Buleleng") == []
    assert hs.classify("jalan ke Seririt ndak macet") == []
    assert "flood" in found(hs, "tusing bisa pulang, banjir di Banjar Jawa")


def test_anniversaries_of_past_disasters_do_not_fire(hs):
    assert hs.classify("Peringatan 20 tahun tsunami Aceh hari ini") == []
    assert "earthquake" not in found(hs, "mengenang 10 tahun gempa Lombok")
    assert "flood" in found(hs, "setiap tahun banjir di Jl. Ahmad Yani, tolong perbaiki saluran")


def test_flooded_street_without_a_road_phrase_still_reaches_dishub(hs):
    got = found(hs, "hujan deras, jalanan di Banyuasri tergenang")
    assert got["road_closure"].via_road
