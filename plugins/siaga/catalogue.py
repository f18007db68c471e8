"""Every sentence Siaga says to a person, once, in Indonesian and English: Slack alerts, the
managers' digest, the incident pages and the CAP texts read from here.

Duty officers in Buleleng read Indonesian first; managers and visitors may need the English. The
Slack messages said "Indonesian (English)" while the pages spoke English only and the CAP text
said "sejak 2026-01-15T00:25:00+00:00": one catalogue keeps the words, their order and the times
in WITA the same everywhere.

    say("state.open")                         -> "terbuka (open)"
    say_in("en", "state.open")                -> "open"
    say("evidence.reports", authors=4, posts=4, minutes=30, expected=0.01)
    wita(when)                                -> "15 Jan 2026 08:25 WITA"

Templates are `str.format` strings with two additions, both decided per language:
- a datetime field is written in WITA: `{at}` "15 Jan 2026 08:25 WITA", `{at:time}` "08:25 WITA",
  `{at:short}` "15 Jan 08:25 WITA", `{at:date}` "15 Jan 2026" (Indonesian month names in the
  Indonesian text); a naive datetime is refused, its zone would be a guess;
- `{n:# post|# posts}` picks the singular when n is 1 ("#" becomes the number).

Field values are inserted as given: the caller escapes them for where the text goes (Slack's
`messages.escape`, Jinja's autoescaping). The templates themselves hold no markup and none of
`& < >`, so a sentence is safe wherever its fields are (a test checks this).
"""
from __future__ import annotations

import string
from datetime import datetime
from typing import Any, Callable, Mapping

from siaga.vocabulary import LOCAL_TZ, LOCAL_TZ_LABEL

LANGS = ("id", "en")  # Indonesian first, everywhere

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

# key -> (Indonesian, English). Keys are dotted by topic; a key never changes meaning once used.
MESSAGES: dict[str, tuple[str, str]] = {
    # --- incident states, severities, change kinds -------------------------------------------
    "state.open": ("terbuka", "open"),
    "state.acknowledged": ("ditangani", "acknowledged"),
    "state.resolved": ("selesai", "resolved"),
    "state.false_alarm": ("alarm palsu", "false alarm"),
    "severity.low": ("rendah", "low"),
    "severity.medium": ("sedang", "medium"),
    "severity.high": ("tinggi", "high"),
    "severity.critical": ("kritis", "critical"),
    "level.village": ("desa", "village"),
    "level.road": ("jalan", "road"),
    "level.district": ("kecamatan", "kecamatan"),
    "level.regency": ("kabupaten", "regency"),
    "kind.new": ("Peringatan baru", "new alert"),
    "kind.update": ("Pembaruan", "update"),
    "kind.escalation": ("Eskalasi", "escalation"),
    "kind.resolved": ("Selesai", "resolved"),
    # --- places ------------------------------------------------------------------------------
    "place.village": ("Desa {name}", "Desa {name}"),
    "place.district": ("Kec. {name}", "Kec. {name}"),
    "place.road": ("{name}", "{name}"),
    "place.unknown": ("lokasi belum pasti", "place unknown"),
    "place.no_district": ("tanpa kecamatan", "no kecamatan"),
    # --- Slack alert parts ---------------------------------------------------------------------
    "slack.place": ("Lokasi", "place"),
    "slack.map": ("Peta", "map"),
    "slack.counts": ("Jumlah", "counts"),
    "slack.confidence": ("Keyakinan", "confidence"),
    "slack.evidence": ("Bukti terbaru", "newest evidence"),
    "slack.severity": ("tingkat {severity}", "severity {severity}"),
    "slack.incident_no": ("Insiden #{id}", "incident #{id}"),
    "slack.status": ("status", "state"),
    "slack.by": ("oleh {who}", "by {who}"),
    "slack.snoozed_until": ("ditunda s/d", "snoozed until"),
    "slack.incident_page": ("halaman insiden", "incident page"),
    "slack.link": ("tautan", "link"),
    "slack.what_changed": ("Yang berubah", "what changed"),
    "button.ack": ("Tangani", "Acknowledge"),
    "button.resolve": ("Selesai", "Resolve"),
    "button.false_alarm": ("Alarm palsu", "False alarm"),
    "button.snooze": ("Tunda", "Snooze"),
    "button.false_alarm_title": ("Alarm palsu?", "False alarm?"),
    "button.false_alarm_confirm": ("Tandai insiden ini sebagai alarm palsu?", "mark as false alarm?"),
    "button.yes": ("Ya", "yes"),
    "button.cancel": ("Batal", "cancel"),
    "snooze.1h": ("1 jam", "1 h"),
    "snooze.6h": ("6 jam", "6 h"),
    "snooze.24h": ("24 jam", "24 h"),
    # --- what the evidence says, in plain words ----------------------------------------------
    "evidence.reports": (
        "{authors} warga melapor dalam {minutes} menit",
        "{authors:# resident|# residents} reported it within {minutes} minutes",
    ),
    "evidence.reports_posts": (
        "{authors} warga melapor ({posts} unggahan) dalam {minutes} menit",
        "{authors:# resident|# residents} reported it ({posts:# post|# posts}) within {minutes} minutes",
    ),
    "evidence.usually_none": ("biasanya hampir tidak ada", "usually almost none"),
    "evidence.usually": ("biasanya sekitar {expected}", "usually about {expected}"),
    "evidence.incident_total": (
        "Total insiden: {posts} unggahan dari {authors} akun",
        "incident total: {posts:# post|# posts} from {authors:# account|# accounts}",
    ),
    "confidence.high": ("tinggi: hampir pasti bukan kebetulan", "high: almost certainly not chance"),
    "confidence.medium": ("sedang: kecil kemungkinan kebetulan", "medium: unlikely to be chance"),
    "confidence.low": ("rendah: bisa jadi kebetulan", "low: could be chance"),
    "severity.why_cues": (
        "karena {count} unggahan menyebut {cues}", "because {count:# post mentions|# posts mention} {cues}",
    ),
    "severity.why_count": ("karena jumlah laporan", "because of the number of reports"),
    "severity.why_spread": ("karena meluas ke {areas} wilayah", "because it spread to {areas} areas"),
    # --- what changed since the last message (thread updates) --------------------------------
    "change.posts": (
        "{new_posts} unggahan baru, kini {posts} unggahan dari {authors} akun",
        "{new_posts:# new post|# new posts}, now {posts:# post|# posts} from {authors:# account|# accounts}",
    ),
    "change.new_authors": ("+{count} akun baru", "+{count:# new account|# new accounts}"),
    "change.areas": ("wilayah baru: {names}", "new areas: {names}"),
    "change.severity": (
        "tingkat naik {before} → {after} {why}", "severity raised {before} → {after} {why}",
    ),
    "change.state": ("status {before} → {after} oleh {who}", "state {before} → {after} by {who}"),
    "change.reopened": ("dibuka kembali setelah selesai otomatis", "reopened after it resolved itself"),
    "change.auto_resolved": (
        "selesai otomatis: tidak ada unggahan baru sejak {last:short}",
        "resolved automatically: no new posts since {last:short}",
    ),
    "change.none": ("tidak ada perubahan", "nothing changed"),
    # --- the timeline, in sentences ----------------------------------------------------------
    "event.opened": ("Insiden dibuka", "incident opened"),
    "event.alert": ("Deteksi", "detection"),
    "event.counts": ("Jumlah bertambah", "counts grew"),
    "event.grew": ("Laporan bertambah", "more reports"),
    "event.escalated": ("Eskalasi", "escalated"),
    "event.area_added": ("Wilayah bertambah", "area added"),
    "event.delivered": ("Pesan Slack terkirim", "Slack message delivered"),
    "event.delivery_failed": ("Pesan Slack gagal", "Slack delivery failed"),
    "event.resolved": ("Selesai", "resolved"),
    "event.false_alarm": ("Alarm palsu", "false alarm"),
    "event.acknowledged": ("Ditangani", "acknowledged"),
    "event.reopened": ("Dibuka kembali", "reopened"),
    "event.closed": ("Ditutup", "closed"),
    "event.note": ("Catatan", "note"),
    "event.silenced": ("Ditahan oleh penundaan", "held back by a silence"),
    "event.held": ("Menunggu jam tenang usai", "waiting for quiet hours to end"),
    "message.held": ("Ditahan jam tenang {since:short} – {until:short}", "held by quiet hours {since:short} – {until:short}"),
    "event.unknown": ("Peristiwa {kind}", "event {kind}"),
    "timeline.opened": ("Dibuka, tingkat {severity}: {evidence}", "opened, severity {severity}: {evidence}"),
    "timeline.late": ("Terhitung terlambat, dari sebelum selesai: {evidence}", "counted late, from before it closed: {evidence}"),
    "timeline.area_added": ("Wilayah baru: {names}", "new areas: {names}"),
    "timeline.escalated": ("Tingkat {before} → {after} {why}", "severity {before} → {after} {why}"),
    "timeline.reopened_auto": (
        "Dibuka kembali {after} setelah selesai otomatis", "reopened {after} after it resolved itself",
    ),
    "timeline.state": ("{before} → {after} oleh {who}", "{before} → {after} by {who}"),
    "timeline.auto_resolved": (
        "Selesai otomatis: tidak ada unggahan baru selama {quiet}", "resolved automatically: no new posts for {quiet}",
    ),
    "timeline.silenced": (
        "Pesan {kind} ditahan oleh penundaan #{silence} s/d {until:short}",
        "{kind} message held back by silence #{silence} until {until:short}",
    ),
    "timeline.held": (
        "Pesan untuk {receiver} menunggu jam tenang usai, s/d {until:short}",
        "message to {receiver} waits for quiet hours to end, until {until:short}",
    ),
    "timeline.delivered": ("Terkirim ke {channel}", "sent to {channel}"),
    "timeline.delivery_failed": ("Gagal kirim ke {channel}: {error}", "could not send to {channel}: {error}"),
    "timeline.note": ("{note}", "{note}"),
    # --- the posts an incident counts ---------------------------------------------------------
    "posts.definition": (
        "Unggahan insiden: setiap unggahan yang dikutip oleh deteksinya; akun: penulis berbeda di antaranya",
        "incident posts: every post its detections cite; accounts: the distinct authors among them",
    ),
    "posts.count": ("{posts} unggahan dari {authors} akun", "{posts:# post|# posts} from {authors:# account|# accounts}"),
    # --- the managers' digest ----------------------------------------------------------------
    "digest.title": ("Ringkasan harian Siaga", "daily digest"),
    "digest.headline": (
        "{opened} insiden dibuka, {resolved} selesai, {false_alarm} alarm palsu, {still_open} masih terbuka, "
        "{dead} gagal kirim",
        "{opened} opened, {resolved} resolved, {false_alarm:# false alarm|# false alarms}, {still_open} still open, "
        "{dead:# dead letter|# dead letters}",
    ),
    "digest.opened": ("{n} dibuka", "{n} opened"),
    "digest.resolved": ("{n} selesai", "{n} resolved"),
    "digest.false_alarm": ("{n} alarm palsu", "{n:# false alarm|# false alarms}"),
    "digest.still_open": ("{n} masih terbuka", "{n} still open"),
    "digest.no_incidents": ("Tidak ada insiden dalam periode ini", "no incidents in this period"),
    "digest.silenced": ("{n} pesan ditahan oleh penundaan", "{n:# message|# messages} held back by silences"),
    "digest.dead_letters": ("Gagal kirim: {n}", "dead letters: {n}"),
    "digest.more": ("… dan {n} lagi", "… and {n} more"),
    "digest.noisy_terms": (
        "Istilah di balik alarm palsu, {days} hari", "terms behind false alarms, {days} days",
    ),
    "digest.noisy_term": (
        "{false_alarms} dari {incidents} insiden alarm palsu",
        "{false_alarms} of {incidents} incidents false alarms",
    ),
    "digest.noisy_advice": (
        "Perketat di config/hazards lalu uji dengan siaga backtest; rincian: siaga terms",
        "tighten, then backtest; details: siaga terms",
    ),
    "digest.roads": ("lewat {roads}", "via {roads}"),
    # --- CAP texts ---------------------------------------------------------------------------
    "cap.headline": ("{hazard} di {place}, Kabupaten Buleleng", "{hazard} in {place}, Buleleng regency"),
    "cap.description": (
        "{posts} unggahan dari {authors} akun melaporkan {hazard} di {place} sejak {since}.",
        "{posts:# post|# posts} from {authors:# account|# accounts} report {hazard} in {place} since {since}.",
    ),
    # --- the managers' pages (timelines/templates) -------------------------------------------
    "page.site": ("Siaga · Insiden Buleleng", "Buleleng incidents"),
    "page.tagline": (
        "unggahan → deteksi → Slack: apa yang terjadi, di mana, dan siapa diberi tahu kapan",
        "posts → detections → Slack: what happened, where, and who was told when",
    ),
    "page.incidents": ("Insiden", "incidents"),
    "page.back": ("← semua insiden", "← all incidents"),
    "page.times": ("waktu dalam WITA", "times in WITA"),
    "filter.hazard": ("Bahaya", "hazard"),
    "filter.kecamatan": ("Kecamatan", "kecamatan"),
    "filter.village": ("Desa/kelurahan", "village"),
    "filter.road": ("Jalan", "road"),
    "filter.state": ("Status", "state"),
    "filter.from": ("Dari tanggal", "from"),
    "filter.to": ("Sampai tanggal", "to"),
    "filter.all": ("semua", "all"),
    "filter.submit": ("Saring", "filter"),
    "filter.reset": ("hapus saringan", "clear filters"),
    "overview.title": ("Gambaran periode", "overview of the period"),
    "overview.map": ("Peta insiden kabupaten", "the regency's incidents"),
    "overview.villages": ("desa menurut jumlah insiden", "villages by number of incidents"),
    "overview.roads": ("jalan dengan insiden", "roads with incidents"),
    "overview.approximate": ("garis putus-putus: jalur perkiraan melalui desa", "dashed: approximate trace through its villages"),
    "overview.districts": ("insiden tingkat kecamatan", "kecamatan-wide incidents"),
    "overview.unmapped": ("{n} insiden tanpa wilayah di peta", "{n:# incident|# incidents} with no area to draw"),
    "overview.daily": ("Insiden dibuka per hari per bahaya", "incidents opened per day per hazard"),
    "overview.cut": ("hanya {days} hari terakhir periode ini", "only the last {days} days of the period"),
    "overview.none": (
        "Tidak ada insiden dalam periode ini: peta dan grafik kosong.",
        "no incidents in this period: nothing to map or chart",
    ),
    "placement.title": (
        "Semua unggahan periode ini, dengan atau tanpa kata bahaya", "every post of the period, whether or not it names a hazard",
    ),
    "placement.summary": (
        "{total} unggahan: {in_region} ditempatkan di Buleleng, {elsewhere} hanya di tempat lain, {unplaced} tanpa tempat",
        "{total} posts: {in_region} placed in Buleleng, {elsewhere} only elsewhere, {unplaced} with no place found",
    ),
    "placement.untagged": ("{n} belum diproses", "{n} not tagged yet"),
    "placement.share": (
        "{share} % tanpa tempat: tidak pernah masuk peta atau hitungan",
        "{share} % unplaced: these never reach a map or a count",
    ),
    "placement.none": ("Belum ada unggahan dalam periode ini.", "no posts in this period yet"),
    "weekly.title": ("Insiden per bahaya per minggu", "incidents per hazard per week"),
    "weekly.note": ("minggu mulai Senin, WITA", "weeks start Monday, WITA"),
    "weekly.total": ("Jumlah", "total"),
    "list.count": ("{n} insiden", "{n:# incident|# incidents}"),
    "list.cut": (
        "Hanya {shown} insiden terbaru yang ditampilkan; persempit tanggal atau saringan, atau unduh CSV untuk semuanya.",
        "only the newest {shown} are listed; narrow the dates or filters, or download the CSV for all of them",
    ),
    "list.export": ("Unduh daftar ini", "export these"),
    "list.cap_feed": ("umpan CAP 1.2 insiden terbuka", "CAP 1.2 feed of open incidents"),
    "list.empty": ("Tidak ada insiden yang cocok dengan saringan ini.", "no incident matches these filters"),
    "list.empty_hint": (
        "Perluas rentang tanggal atau hapus saringan.", "widen the dates or clear a filter",
    ),
    "list.empty_none": (
        "Belum ada insiden tercatat. Insiden muncul di sini setelah deteksi membukanya dari lonjakan unggahan.",
        "no incidents recorded yet; they appear here once detection opens one from a spike of posts",
    ),
    "col.hazard": ("Bahaya", "hazard"),
    "col.where": ("Lokasi", "where"),
    "col.kecamatan": ("Kecamatan", "kecamatan"),
    "col.severity": ("Tingkat", "severity"),
    "col.state": ("Status", "state"),
    "col.posts": ("Unggahan", "posts"),
    "col.opened": ("Dibuka", "opened"),
    "col.last_activity": ("Aktivitas terakhir", "last activity"),
    "col.closed": ("Ditutup", "closed"),
    "col.area": ("Wilayah", "area"),
    "col.road": ("Jalan", "road"),
    "col.posts_accounts": ("Unggahan / akun", "posts / accounts"),
    "col.when": ("Waktu", "when"),
    "col.what": ("Apa", "what"),
    "col.who": ("Siapa", "who"),
    "col.details": ("Rincian", "details"),
    "col.source": ("Sumber", "source"),
    "col.author": ("Penulis", "author"),
    "col.post": ("Unggahan", "post"),
    "col.places": ("Tempat", "places"),
    "col.channel": ("Kanal", "channel"),
    "col.receiver": ("Penerima", "receiver"),
    "col.kind": ("Jenis", "kind"),
    "col.sent": ("Terkirim", "sent"),
    "col.attempts": ("Percobaan", "attempts"),
    "col.error": ("Galat terakhir", "last error"),
    "col.queued": ("Diantrikan", "queued"),
    "col.detection": ("Deteksi", "detection"),
    "col.window": ("Jendela", "window"),
    "col.observed": ("Teramati", "observed"),
    "col.expected": ("Biasanya", "expected"),
    "col.accounts": ("Akun", "accounts"),
    "col.score": ("Skor", "score"),
    "incident.exports": ("Unduh", "export"),
    "incident.map": ("Peta", "map"),
    "incident.chart": ("Unggahan per {bucket} dibanding tingkat biasa", "posts per {bucket} against the expected level"),
    "incident.no_counts": ("Tidak ada hitungan unggahan untuk insiden ini", "no post counts recorded for this incident"),
    "incident.timeline": ("Linimasa", "timeline"),
    "incident.no_events": ("Belum ada peristiwa tercatat.", "no events recorded yet"),
    "incident.messages": ("Pesan Slack", "Slack messages"),
    "incident.evidence": ("Unggahan bukti ({n})", "evidence posts ({n})"),
    "incident.evidence_cut": (
        "Hanya {shown} unggahan terbaru dari {n} yang ditampilkan; semuanya ada di unduhan GeoJSON.",
        "only the latest {shown} of {n} posts are shown; all of them are in the GeoJSON download",
    ),
    "incident.no_evidence": (
        "Tidak ada unggahan bukti tersimpan (unggahan lama dihapus oleh retensi).",
        "no evidence posts stored (old posts are removed by retention)",
    ),
    "map.affected": ("wilayah terdampak", "affected area"),
    "map.evidence": ("unggahan bukti (angka = unggahan di satu titik)", "evidence posts (number = posts at one spot)"),
    "map.boundary": ("batas kecamatan", "kecamatan boundary"),
    "map.road": ("jalan (OpenStreetMap)", "road (OpenStreetMap)"),
    "map.road_approximate": (
        "jalan: jalur perkiraan melalui desa-desanya, bukan garis jalan sebenarnya",
        "road: approximate trace through its villages, not the real line",
    ),
    "map.road_point": ("jalan: hanya pusat kotanya yang diketahui", "road: only its town centre is known"),
    "map.empty": ("Tidak ada poligon atau koordinat untuk insiden ini.", "no polygon or coordinates known for this incident"),
    "map.polygons": ("poligon: gazetir proyek (BPS/HDX)", "polygons: project gazetteer (BPS/HDX)"),
    "chart.posts": ("unggahan ({source})", "posts ({source})"),
    "chart.expected": ("biasanya", "expected"),
    "chart.detection": ("deteksi", "detection"),
    "duration.minutes": ("{n} menit", "{n} min"),
    "duration.hours": ("{n} jam", "{n} h"),
    "duration.day": ("hari", "day"),
    "chart.marker": (
        "Deteksi {n}, {at:short}: {observed} teramati, biasanya {expected}",
        "detection {n}, {at:short}: {observed} observed, {expected} expected",
    ),
    "actions.title": ("Tindakan", "actions"),
    "actions.hint": (
        "Dicatat di linimasa atas nama Anda, sama seperti tombol di Slack.",
        "recorded on the timeline in your name, exactly like the Slack buttons",
    ),
    "actions.note": ("Catatan (opsional)", "note (optional)"),
    "actions.closed": ("Insiden sudah ditutup ({state}); tidak ada tindakan lagi.", "closed ({state}): no further action"),
    "actions.done": ("Tercatat: {state} oleh {who}.", "recorded: {state} by {who}"),
    "actions.unchanged": ("Sudah {state}; tidak ada yang berubah.", "already {state}; nothing changed"),
    "actions.refused": ("Tidak bisa: insiden ini {state}.", "not possible: this incident is {state}"),
    "actions.no_user": ("Tindakan perlu pengguna yang masuk.", "actions need a signed-in user"),
    "actions.cross_site": (
        "Ditolak: permintaan tidak berasal dari halaman ini.", "refused: the request did not come from this site",
    ),
}


class _Formatter(string.Formatter):
    """`str.format` that writes datetimes in WITA in one language and picks plural forms."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, datetime):
            return wita(value, format_spec or "datetime", self.lang)
        if "|" in format_spec:
            one, many = format_spec.split("|", 1)
            return (one if value == 1 else many).replace("#", str(value))
        return super().format_field(value, format_spec)


_FORMATTERS = {lang: _Formatter(lang) for lang in LANGS}


def say_in(lang: str, key: str, /, **fields: Any) -> str:
    """The sentence `key` in one language ("id" or "en"), with `fields` filled in."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: use one of {', '.join(LANGS)}")
    try:
        template = MESSAGES[key][LANGS.index(lang)]
    except KeyError:
        raise KeyError(f"catalogue: no message {key!r}") from None
    try:
        return _FORMATTERS[lang].format(template, **fields)
    except KeyError as exc:
        raise KeyError(f"catalogue: message {key!r} needs field {exc.args[0]!r}") from None


def both(key: str, /, **fields: Any) -> tuple[str, str]:
    """(Indonesian, English) of `key`: for pages that set each language apart."""
    return say_in("id", key, **fields), say_in("en", key, **fields)


def say(key: str, /, **fields: Any) -> str:
    """The bilingual form Slack and the pages show: "Indonesian (English)", or one of them when
    both read the same."""
    local, english = both(key, **fields)
    return join(local, english)


def join(local: str, english: str, long: bool = False) -> str:
    """"Indonesian (English)", or for `long` sentences (which hold brackets of their own)
    "Indonesian / English"; just one when the two are the same (ignoring case)."""
    if not english or english.casefold() == local.casefold():
        return local
    if not local:
        return english
    return f"{local} / {english}" if long else f"{local} ({english})"


def has(key: str) -> bool:
    return key in MESSAGES


def wita(when: datetime | None, style: str = "datetime", lang: str = "id") -> str:
    """A time as people in Buleleng read it: "15 Jan 2026 08:25 WITA" (`datetime`), "15 Jan
    08:25 WITA" (`short`), "08:25 WITA" (`time`), "15 Jan 2026" (`date`); "–" when unknown.
    Month names follow `lang`. A naive datetime is refused."""
    if when is None:
        return "–"
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: give a time zone")
    local = when.astimezone(LOCAL_TZ)
    month = _MONTHS[lang if lang in _MONTHS else "id"][local.month - 1]
    hm = f"{local:%H:%M} {LOCAL_TZ_LABEL}"
    if style == "time":
        return hm
    if style == "short":
        return f"{local.day} {month} {hm}"
    if style == "date":
        return f"{local.day} {month} {local.year}"
    if style == "datetime":
        return f"{local.day} {month} {local.year} {hm}"
    raise ValueError(f"time style {style!r}: use datetime, short, time or date")


def evidence_sentence(lang: str, authors: int, posts: int, minutes: int, expected: float | None) -> str:
    """A window's count in plain words, in one language: "4 warga melapor dalam 30 menit;
    biasanya hampir tidak ada" (`expected` is what the baseline expects in such a window)."""
    key = "evidence.reports" if posts == authors else "evidence.reports_posts"
    text = say_in(lang, key, authors=authors, posts=posts, minutes=minutes)
    if expected is not None:
        usual = say_in(lang, "evidence.usually_none") if expected < 0.5 else say_in(lang, "evidence.usually", expected=_number(expected))
        text += "; " + usual
    return text


def why_text(lang: str, why: Mapping[str, Any] | None, quote: Callable[[str], str] = str) -> str:
    """Which cue raised a severity, in one language: "karena 2 unggahan menyebut 'terjebak'",
    the spread over areas, or the number of reports; "" when unknown. `quote` escapes the cue
    words (they come from the operators' lists) for where the text goes."""
    if not why:
        return ""
    if why.get("cues"):
        cues = ", ".join(f"'{quote(str(c))}'" for c in why["cues"])
        count = int(why.get("posts") or max(int(n) for n in why["cues"].values()))
        return say_in(lang, "severity.why_cues", count=count, cues=cues)
    if why.get("spread"):
        return say_in(lang, "severity.why_spread", areas=int(why["spread"]))
    return say_in(lang, "severity.why_count")


def in_both(make: Callable[[str], str], long: bool = True) -> str:
    """A sentence built per language by `make(lang)`, joined Indonesian first."""
    return join(make("id"), make("en"), long=long)


def _number(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def labels(prefix: str) -> Mapping[str, str]:
    """Every bilingual label under `prefix` ("state", "severity", ...) by its last part: the
    choices a page's filter offers."""
    cut = len(prefix) + 1
    return {key[cut:]: say(key) for key in MESSAGES if key.startswith(prefix + ".")}
