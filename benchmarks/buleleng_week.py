"""A multi-day Buleleng stream as an outside probe sees it: real events (a flood growing for
hours, a landslide closing a road, a regency-wide earthquake, a night fire, an accident), a
routine weekday-morning jam on Jalan Ahmad Yani, and bait (one account posting 40 times, 30
reposts of one post, an old news link, an anniversary, a BMKG "potensi banjir" forecast, a drill,
a Denpasar flood trending, Banjar in chatter, a song lyric, a question, a denial, a Jakarta flood
story) in everyday Indonesian / Balinese / English chatter with slang and typos.

It reuses `scenario_trust.py`'s player (replay source, `pipeline.ingest` / `detect_incidents` /
`deliver` every minute against the fake Slack, shipped config) and, with `--restart`, plays the
stream in two child processes over the same database (a scheduler restart mid-stream).

Checked from outside, per event: alerted once, right hazard and place, delay after the third
independent report, updates in its thread, resolved after posts stop; per bait: no alert; the
routine jam: alerts per morning; and incidents nothing explains (chatter made a spike).

Usage: python benchmarks/buleleng_week.py [--seed 7] [--days 4] [--restart] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenario_trust as st  # noqa: E402
from scenario_trust import D, H, Plan  # noqa: E402

M = timedelta(minutes=1)
FELT = ("Singaraja", "Sukasada", "Seririt", "Kubutambahan", "Tejakula", "Gerokgak", "Sawan", "Banjar",
        "Busungbiu", "Pancasari", "Kalibukbuk", "Anturan", "Sangsit", "Pemuteran", "Gitgit", "Bondalem",
        "Tukadmungga", "Panji")

# (name, hazard, agency, expected place words: any of them in the incident's area name)
EVENTS = {
    "flood-bungkulan-growing": ("flood", "bpbd", ("bungkulan", "sawan")),
    "landslide-gitgit-road": ("landslide", "bpbd", ("gitgit", "sukasada", "singaraja-denpasar")),
    "quake-regency": ("earthquake", "bpbd", ("buleleng",)),
    "fire-kalibukbuk-night": ("fire", "bpbd", ("kalibukbuk", "buleleng")),
    "accident-celukan-bawang": ("traffic_accident", "dishub", ("celukan", "gerokgak", "gilimanuk")),
}

PLANS: tuple[Plan, ...] = (
    # --- events -------------------------------------------------------------------------------
    Plan("flood-bungkulan-growing", "event", "flood", "bpbd", D + 13 * H, 300, 14, (
        "hujan deres bgt dr siang, got di Bungkulan mulai meluap {n}",
        "air mulai naik di jalan desa Bungkulan, hati2 yg lewat",
        "Bungkulan mulai banjir nih, air sampe mata kaki",
        "banjir di desa bungkulan makin tinggi, udh selutut",
        "Desa Bungkulan kebanjiran, air masuk rumah warga",
        "bnjir di Bungkulan kec Sawan, air udah sepinggang, warga ngungsi",
        "banjir Bungkulan makin parah, tolong BPBD kirim perahu karet",
        "yeh ageng di Bungkulan, banjir nganti ke jalan raya",
        "Update banjir Bungkulan: air setinggi dada di banjar dinas kaja",
        "Flooding in Bungkulan village, water up to the waist",
        "banjir bungkulan blm surut, warga mengungsi ke balai desa",
        "Banjir Desa Bungkulan Sawan, ratusan rumah terendam",
        "masih banjir di bungkulan, listrik padam",
        "banjir di Bungkulan mulai surut dikit")),
    Plan("landslide-gitgit-road", "event", "landslide", "bpbd", 2 * D + 6 * H + 30 * M, 60, 7, (
        "Longsor di jalan raya Singaraja-Denpasar di Desa Gitgit, jalan tertutup total {n}",
        "tanah longsor di gitgit, jalur singaraja bedugul ga bisa lewat",
        "Longsor tutup jalan di Gitgit Sukasada, kendaraan putar balik",
        "jln di gitgit ketutup longsoran tanah, hati2 bro",
        "Landslide blocking the road at Gitgit, Singaraja-Denpasar road closed",
        "longsor Gitgit: material tanah menutup badan jalan, alat berat dikerahkan",
        "masih longsor di gitgit, jalan blm bisa dilewati")),
    Plan("quake-regency", "event", "earthquake", "bpbd", 2 * D + 21 * H + 40 * M, 15, 30, (
        "Gempa kenceng bgt barusan di {p}!! {n}", "gempaaa di {p}, lemari goyang2",
        "linuh gede pisan di {p}, iraga pesu makejang", "Barusan gempa lumayan lama di {p}, warga panik",
        "earthquake just now in {p}, felt strong", "Gempa bumi terasa di {p}, semua keluar rumah"),
        places=FELT, regional=True),
    Plan("fire-kalibukbuk-night", "event", "fire", "bpbd", 3 * D + H + 20 * M, 30, 5, (
        "Kebakaran di Desa Kalibukbuk, api gede bgt {n}", "ada rmh terbakar di kalibukbuk lovina, damkar otw",
        "Kebakaran hebat di Kalibukbuk malam ini, warga bantu padamkan api",
        "fire in Kalibukbuk Lovina right now, big flames", "api melalap warung di Desa Kalibukbuk")),
    Plan("accident-celukan-bawang", "event", "traffic_accident", "dishub", 17 * H + 10 * M, 30, 5, (
        "Kecelakaan di jalan raya Celukan Bawang, truk tabrak motor {n}",
        "laka lantas di celukan bawang gerokgak, korban dibawa ke rs",
        "tabrakan di jalan raya Celukan Bawang barusan, macet panjang",
        "accident on the main road at Celukan Bawang, truck vs motorbike",
        "Ada kecelakaan di Jalan Raya Seririt-Gilimanuk Celukan Bawang, hati-hati")),
    # --- the routine weekday-morning jam (Mon-Thu), marked "routine" ----------------------------
    *(Plan(f"jam-ahmad-yani-day{d}", "routine", "traffic_jam", "dishub", d * D + 7 * H, 60, 5, (
        "macet di Jalan Ahmad Yani Singaraja pagi ini {n}", "jl ahmad yani singaraja macet lg, biasa jam sekolah",
        "Macet parah di Jalan Ahmad Yani Singaraja, antre panjang", "ahmad yani singaraja macet total, telat ngantor",
        "traffic jam on Jalan Ahmad Yani Singaraja again")) for d in range(4)),
    # --- bait -----------------------------------------------------------------------------------
    Plan("one-account-40", "bait", "flood", "bpbd", 9 * H, 180, 1, (
        "BANJIR DI DESA ANTURAN!!! {n}", "anturan banjir lg {n}", "banjir anturan parah bgt {n}",
        "tolong banjir di Anturan {n}"), posts=40, same_author=True),
    Plan("reposts-30", "bait", "flood", "bpbd", D + 9 * H, 60, 30, (
        "{c}", "RT @kabarbuleleng: {c}", "wah ngeri {c}", "Info grup WA: {c}", "QT: semoga aman semua 🙏 {c}"),
        copies_of="Banjir besar di Desa Pemaron, air setinggi lutut masuk rumah warga"),
    Plan("old-news-link", "bait", "flood", "bpbd", 3 * D + 10 * H, 120, 8, (
        "Banjir rendam puluhan rumah di Tukadmungga https://balipost.example/2023/01/12/banjir-tukadmungga {n}",
        "Ingat ini? Banjir rendam puluhan rumah di Tukadmungga https://balipost.example/2023/01/12/banjir-tukadmungga",
        "berita lama nih: banjir rendam rumah di Tukadmungga https://balipost.example/2023/01/12/banjir-tukadmungga",
        "Banjir rendam puluhan rumah di Tukadmungga (2023) https://balipost.example/2023/01/12/banjir-tukadmungga")),
    Plan("anniversary", "bait", "flood", "bpbd", 3 * D + 8 * H, 120, 6, (
        "Tepat 3 tahun lalu banjir bandang menerjang Desa Sambirenteng, semoga tak terulang {n}",
        "mengenang banjir bandang Sambirenteng 3 tahun silam 🙏",
        "hari ini 3 thn lalu banjir bandang di Sambirenteng, doa utk korban",
        "Peringatan 3 tahun banjir bandang Sambirenteng Tejakula")),
    Plan("bmkg-forecast", "bait", "flood", "bpbd", 2 * D + 11 * H, 90, 6, (
        "BMKG: potensi banjir di wilayah Buleleng akibat hujan lebat hari ini {n}",
        "Peringatan dini BMKG, waspada potensi banjir dan longsor di Buleleng",
        "RT @infobmkg: Potensi hujan lebat disertai banjir di Kab. Buleleng",
        "bmkg bilang ada potensi banjir di Singaraja, hati2 ya")),
    Plan("drill", "bait", "earthquake", "bpbd", 2 * D + 9 * H, 60, 6, (
        "Simulasi gempa bumi dan tsunami di SDN 1 Kalibukbuk pagi ini {n}",
        "lagi simulasi evakuasi gempa di sekolah anakku di Lovina",
        "Simulasi bencana gempa bersama BPBD Buleleng di Kalibukbuk",
        "drill gempa di Kalibukbuk, anak2 sembunyi di bawah meja")),
    Plan("denpasar-trending", "bait", "flood", "bpbd", D + 16 * H, 90, 20, (
        "Denpasar banjir parah, Jalan Teuku Umar terendam {n}", "banjir di denpasar lagi, kuta juga kena",
        "#DenpasarBanjir air setinggi lutut di Sanur", "Banjir Denpasar Barat, warga mengungsi",
        "flood in Denpasar again, stay safe guys")),
    Plan("banjar-chatter", "bait", "flood", "bpbd", 2 * D + 15 * H, 180, 8, (
        "Rapat banjar adat di Banjar Dinas Kaja malam ini {n}", "ngopi di Banjar, Buleleng, adem bgt",
        "Air terjun di Kecamatan Banjar rame wisatawan", "odalan di banjar kami lancar, suksma nyama",
        "mampir ke pemandian air panas Banjar")),
    Plan("song-lyric", "bait", "flood", "bpbd", D + 20 * H, 120, 6, (
        "🎶 banjir air mata di pipiku, tiap kau pergi 🎶 {n}", "lagi dengerin lagu 'banjir air mata', galau di Singaraja",
        "♪ gempa di hatiku saat kau datang ♪ #nowplaying", "lirik: hatiku banjir air mata karenamu")),
    Plan("question", "bait", "flood", "bpbd", 3 * D + 15 * H, 60, 6, (
        "ada banjir? mau lewat Sukasada {n}", "sukasada ada banjir gak ya?", "min, di Sukasada banjir kah?",
        "apakah ada banjir di Sukasada sore ini?")),
    Plan("denial", "bait", "flood", "bpbd", 3 * D + 16 * H, 60, 6, (
        "tidak ada banjir di Seririt, aman kok {n}", "hoax itu, ga ada banjir di seririt",
        "Seririt aman, tidak ada banjir, jangan percaya berita hoaks", "nggak banjir kok di Seririt, lancar")),
    Plan("jakarta-story", "bait", "flood", "bpbd", 3 * D + 12 * H, 90, 10, (
        "Banjir Jakarta hari ini, Kampung Melayu terendam 2 meter {n}", "jakarta banjir lagi, kasian warga Kemang",
        "Jakarta flood again, Kampung Melayu under water", "Banjir di Jakarta Timur, ribuan warga mengungsi")),
)

CHATTER = (
    "Selamat pagi Singaraja, cuaca cerah hari ini", "ngopi dlu di lovina sblm kerja", "rahajeng semeng nyama Buleleng",
    "Pasar Anyar rame bgt pagi ini", "sunrise di pantai lovina indah sekali", "good morning from Lovina beach",
    "Upacara di pura desa hari ini", "ada yg tau warung babi guling enak di Seririt?", "panes gati dini di Singaraja",
    "Besok libur, mau ke air terjun Gitgit", "harga cabe naik lg di pasar banyuasri", "jalan2 sore di pantai penimbangan",
    "nonton bola di warkop sukasada", "lagi nunggu bus ke Denpasar", "mendung nih, kayaknya mau hujan",
    "hujan gerimis di Singaraja, adem", "macet dikit depan sekolah, biasa", "lancar jaya jalanan pagi ini",
    "sing ngelah pis, tanggal tua nyama 😂", "wkwk lucu bgt video ini", "dolphin tour Lovina pagi tadi, mantap",
    "siapa yg ke Singaraja minggu ini?", "kopi Munduk the best", "otw kampus undiksha",
)


def play_range(root: Path, lo: int, hi: int, days: int) -> None:
    """Child process: play ticks [lo, hi) of the stream written in ROOT."""
    from siaga import hazard_lists, pipeline

    posts = pickle.loads((root / "posts.pickle").read_bytes())
    st._cache_hazard_lists(hazard_lists)
    for now in ticks_of(posts, days)[lo:hi]:
        pipeline.ingest("trust", now)
        pipeline.detect_incidents(now)
        pipeline.deliver(now)


def ticks_of(posts: list[dict], days: int) -> list[datetime]:
    arrivals = {p["created_at"].astimezone(timezone.utc).replace(second=0, microsecond=0) + st.TICK for p in posts}
    quarter = {st.START.astimezone(timezone.utc) + k * timedelta(minutes=15) for k in range(days * 96 + 4 * 12 + 1)}
    return sorted(arrivals | quarter)  # plus 12 h after the end, so the last incidents can resolve


def play(posts: list[dict], root: Path, days: int, restart: bool) -> tuple[dict, list[dict]]:
    from siaga_dev.fakeslack import FakeSlack

    fake = FakeSlack(token=st.TOKEN).start()
    replay = root / "trust.jsonl"
    st.write_replay(posts, replay)
    (root / "posts.pickle").write_bytes(pickle.dumps(posts))
    env = dict(os.environ)
    env.update({
        "SIAGA_DB_URL": f"sqlite:///{root / 'siaga.db'}", "SIAGA_CONFIG_DIR": str(st.config_for(root, replay)),
        "SIAGA_SLACK_TOKEN": st.TOKEN, "SIAGA_SLACK_BASE_URL": fake.base_url, "SIAGA_REPLAY_CLOCK": "identity",
        "SIAGA_AUTHOR_KEY": "buleleng-week-not-a-secret", "SIAGA_DATA_DIR": str(root / "var"),
        "PYTHONPATH": str(st.REPO / "plugins"),
    })
    n = len(ticks_of(posts, days))
    cuts = [0, n // 2, n] if restart else [0, n]
    for lo, hi in zip(cuts, cuts[1:]):
        subprocess.run([sys.executable, __file__, "--child", str(root), str(lo), str(hi), str(days)], env=env, check=True)
    messages = fake.messages()
    fake.close()
    os.environ.update({k: env[k] for k in ("SIAGA_DB_URL", "SIAGA_CONFIG_DIR")})
    return st.read_results(root), messages


def check(results: dict, messages: list[dict]) -> list[str]:
    posts = results["posts"]
    lines = []
    parents = {m["ts"] for m in messages if m.get("thread_ts") is None}
    for inc in results["incidents"]:
        inc["owner"] = st.owner(inc["labels"])
    by_owner: dict[str | None, list[dict]] = {}
    for inc in results["incidents"]:
        if inc["sent"]:
            by_owner.setdefault(inc["owner"], []).append(inc)
    for plan in PLANS:
        mine = by_owner.get(plan.name, [])
        third = st.third_report(posts, plan.name)
        firsts = [min(t for _, t, _ in i["sent"]) for i in mine]
        delay = st.fmt_delay(min(firsts) - third) if firsts and third else "—"
        kinds = Counter(k for i in mine for _, _, k in i["sent"])
        what = "; ".join(f"{i['hazard']}@{i['area']}" for i in mine) or "—"
        verdict = ""
        if plan.kind == "event":
            hazard, agency, places = EVENTS[plan.name]
            main = [i for i in mine if i["hazard"] == hazard]  # others: a road consequence (road_closure) beside it
            ok = (len(main) == 1 and any(w in (main[0]["area"] or "").lower() for w in places)
                  and f"#{agency}-siaga" in {c for c, _, _ in main[0]["sent"]})
            verdict = "OK" if ok and kinds["resolved"] else "CHECK"
        elif plan.kind == "bait":
            verdict = "OK" if not mine else "BAIT ALERTED"
        channels = sorted({c for i in mine for c, _, _ in i["sent"]})
        what += f" → {', '.join(channels)}" if channels else ""
        lines.append(f"| {plan.kind} | {plan.name} | {len(mine)} | {what} | {delay} | {dict(kinds)} | {verdict} |")
    for inc in by_owner.get(None, []):
        lines.append(f"| unexplained | {inc['hazard']}@{inc['area']} | labels {dict(inc['labels'])} | | | | CHECK |")
    twice = [i["id"] for i in results["incidents"] if max(Counter((c, k) for c, _, k in i["sent"] if k == "new").values(), default=0) > 1]
    texts = Counter((m.get("channel"), m.get("text")) for m in messages if m.get("thread_ts") is None)
    lines.append(f"\nincidents announced twice on a channel: {twice or 'none'}; identical top-level Slack texts in one channel: "
                 f"{sum(n - 1 for n in texts.values() if n > 1)}")
    stray = [m for m in messages if m.get("thread_ts") and m["thread_ts"] not in parents]
    lines.append(f"\nSlack: {len(messages)} messages, {len(parents)} top-level; replies outside a known thread: {len(stray)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        play_range(Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--restart", action="store_true", help="play the stream in two processes (restart mid-stream)")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args(argv)
    st.PLANS, st.CHATTER = PLANS, CHATTER
    posts = st.generate(args.seed, args.days)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="buleleng_week_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        results, messages = play(posts, root, args.days, args.restart)
        print(f"buleleng_week: seed {args.seed}, {args.days} days, {len(posts)} posts, restart={args.restart}\n")
        print("| kind | plan | incidents alerted | hazard@area | first Slack after 3rd report | messages | verdict |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(check(results, messages)))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
