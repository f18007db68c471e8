"""Alert messages: what a duty officer sees, and that nothing from a post can act in Slack.

Hostile strings go through build_message, the real slack-sdk client and the fake server; the
assertions look at what the server received."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siaga_dev.fakeslack import FakeSlack, validate_blocks
from siaga.messages import (
    ACTION_ACK,
    ACTION_FALSE_ALARM,
    ACTION_RESOLVE,
    EXCERPT_CHARS,
    AlertView,
    EvidencePost,
    _cut_escaped,
    build_message,
    escape,
    evidence_quote,
    truncate,
)
from siaga.incidents import WhatChanged
from siaga.links import safe_url
from siaga.slackclient import make_client, post_message

TOKEN = "xoxb-test-messages"

HOSTILE = [
    "<!channel> banjir!!",
    "<!here> tolong",
    "<!everyone> darurat",
    "<!subteam^S123|@bpbd> cek",
    "hubungi <@U123ABC> sekarang",
    "lihat <#C123ABC|general>",
    "<https://evil.example|klik di sini>",
    "<https://evil.example>",
    "&lt;!channel&gt; sudah di-escape",
    "<script>alert(1)</script>",
    "a & b < c > d",
    "<\u200b!channel> dengan zero width",
    "<!chan\u200bnel>",
    "\u202egpj.exe banjir",
    "line1\n> quoted\n<!here>",
    "<mailto:x@evil.example|email>",
    "```<!channel>```",
]
ZERO_WIDTH_AND_BIDI = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# The only Slack control syntax a message may contain: links we built, to these URLs.
LINK = re.compile(r"<(https?://[^|<>\s]+)\|[^<>]*>")


def view(**overrides) -> AlertView:
    base = dict(
        incident_id=17, kind="new", hazard_id="flood", hazard_label_id="Banjir", hazard_label_en="flood",
        severity="high", village="Sambangan", district="Sukasada", road="Jalan Ahmad Yani",
        lon=115.0912, lat=-8.1234, observed=12, expected=2.5, authors=5, confidence="tinggi (0.91)",
        evidence=(EvidencePost("Banjir setinggi lutut di depan pasar", "https://x.com/budi/status/1",
                               datetime(2024, 1, 5, 2, 30, tzinfo=timezone.utc), "@budi"),),
        timeline_url="http://127.0.0.1:8080/siaga/incidents/17",
    )
    base.update(overrides)
    return AlertView(**base)


def text_objects(payload: dict) -> list[dict]:
    """Every object in a received message's blocks that holds a text string."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(payload.get("blocks") or [])
    return found


def all_texts(payload: dict) -> list[str]:
    """Every mrkdwn/plain text string in a received message, plus the fallback."""
    return [payload.get("text") or ""] + [o["text"] for o in text_objects(payload)]


def mrkdwn_texts(payload: dict) -> list[str]:
    """The text of every mrkdwn object in a received message's blocks."""
    return [o["text"] for o in text_objects(payload) if o.get("type") == "mrkdwn"]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def assert_inert(text: str, allowed_urls: set[str]) -> None:
    """No Slack control sequence except links to allowed URLs; every & starts an entity."""
    stripped = LINK.sub(lambda m: "" if unescape(m.group(1)) in allowed_urls else m.group(0), text)
    assert "<" not in stripped and ">" not in stripped, text
    assert not re.search(r"&(?!amp;|lt;|gt;)", stripped), text
    assert not ZERO_WIDTH_AND_BIDI.search(text), repr(text)


@pytest.fixture(scope="module")
def fake():
    with FakeSlack(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake):
    return make_client(token=TOKEN, base_url=fake.base_url, conn_id=None)


def send(client, fake, message: dict) -> dict:
    ts = post_message(client, "#bpbd-siaga", message)
    return next(m for m in fake.messages("#bpbd-siaga") if m["ts"] == ts)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_post_text_arrives_inert(client, fake, hostile):
    v = view(
        village=hostile, district=hostile, road=hostile, confidence=hostile,
        evidence=[EvidencePost(hostile, "https://x.com/a/status/2", None, hostile)],
    )
    received = send(client, fake, build_message(v))
    allowed = {"https://x.com/a/status/2", "http://127.0.0.1:8080/siaga/incidents/17"}
    for text in all_texts(received):
        if not text.startswith("*Peta"):
            assert_inert(text, allowed)
    # The content is kept (escaped), not silently deleted: officers can still read the post.
    visible = " ".join(ZERO_WIDTH_AND_BIDI.sub("", hostile).split())
    evidence = [t for t in all_texts(received) if t.startswith("“")][0]
    assert visible in unescape(evidence)


def test_double_escaped_input_stays_literal(client, fake):
    received = send(client, fake, build_message(view(evidence=[EvidencePost("&lt;!channel&gt;")])))
    evidence = [t for t in all_texts(received) if t.startswith("“")][0]
    assert "&amp;lt;!channel&amp;gt;" in evidence


UNSAFE_URLS = [
    "https://evil.example|klik",
    "https://evil.example>x",
    "javascript:alert(1)",
    "ftp://files.example/a",
    "https://evil.example/a b",
    "https://evil.example/\u202eexe",
    "<!channel>",
    "hxxp://x *EVAKUASI SEKARANG* _now_ ~x~ `c` :fire:",  # mrkdwn formats this, link syntax or not
    "https://x.com/a\u2028> *PENGUMUMAN RESMI BPBD*",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_post_urls_are_shown_as_plain_text_not_linked(client, fake, url):
    received = send(client, fake, build_message(view(evidence=[EvidencePost("banjir", url)])))
    for text in all_texts(received):
        if not text.startswith("*Peta"):  # the map link, built from coordinates
            assert_inert(text, allowed_urls={"http://127.0.0.1:8080/siaga/incidents/17"})
    assert safe_url(url) is None
    # not in mrkdwn, where *x*, _x_, ~x~, a backtick or :emoji: would still format the alert
    shown = " ".join(url.replace("\u202e", "").split())
    assert not any(shown in unescape(t) or url in unescape(t) for t in mrkdwn_texts(received))
    plain = [e["text"] for b in received["blocks"] if b["type"] == "context" for e in b["elements"] if e["type"] == "plain_text"]
    assert any(unescape(t).endswith(shown) for t in plain), plain


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(st.text(max_size=80), st.text(max_size=60).map(lambda t: "https://x.com/" + t)))
def test_a_post_url_adds_to_mrkdwn_only_a_checked_link(url):
    """Whatever a post's URL holds, the mrkdwn of its alert is that of the same post without a
    URL, plus at most the one link `safe_url` let through."""
    without = mrkdwn_texts(build_message(view(evidence=[EvidencePost("banjir", None)])))
    got = mrkdwn_texts(build_message(view(evidence=[EvidencePost("banjir", url)])))
    good = safe_url(url)
    if good is None:
        assert got == without
    else:
        link = f"<{good.replace('&', '&amp;')}|"
        assert [t for t in got if link not in t] == [t for t in without if t in got]
        assert sum(t.count(link) for t in got) == 1


def test_safe_post_url_is_linked_with_ampersand_escaped(client, fake):
    url = "https://www.facebook.com/groups/123/posts/456?ref=share&x=1"
    received = send(client, fake, build_message(view(evidence=[EvidencePost("banjir", url)])))
    meta = [t for t in all_texts(received) if "tautan" in t][0]
    assert "<https://www.facebook.com/groups/123/posts/456?ref=share&amp;x=1|tautan (link)>" in meta


MARKUP = ["*tebal* _miring_ ~coret~", "```kode```", "`x`", "> kutipan", "<!channel> *awas*"]


@pytest.mark.parametrize("text", MARKUP)
def test_quoted_post_markup_arrives_as_plain_text(client, fake, text):
    """Slack markup typed in a post is shown as typed: the quote is a plain_text object, never
    mrkdwn (where `*x*` would be bold and a code fence would swallow the rest)."""
    received = send(client, fake, build_message(view(evidence=[EvidencePost(text, "https://x.com/a/status/3")])))
    quotes = [b["text"] for b in received["blocks"] if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("“")]
    assert len(quotes) == 1 and quotes[0]["type"] == "plain_text" and quotes[0]["emoji"] is False
    assert unescape(quotes[0]["text"]) == f"“{text}”"
    for block in received["blocks"]:  # no mrkdwn element carries the post's words
        for element in [block.get("text")] + (block.get("elements") or []) + (block.get("fields") or []):
            if isinstance(element, dict) and element.get("type") == "mrkdwn":
                assert text not in unescape(element["text"])


def test_very_long_text_is_capped_within_slack_limits(client, fake):
    huge = "banjir " * 20000
    v = view(village=huge, district=huge, road=huge, confidence=huge,
             evidence=[EvidencePost(huge, "https://x.com/" + "a" * 5000, None, huge)] * 10)
    message = build_message(v)
    assert validate_blocks(message["blocks"]) is None
    assert len(message["text"]) <= 4000
    received = send(client, fake, message)  # the fake refuses what Slack would refuse
    evidence = [t for t in all_texts(received) if t.startswith("“")]
    assert len(evidence) == 3
    excerpt = evidence[0].split("\n")[0]
    assert excerpt.endswith("…”") and len(excerpt) <= EXCERPT_CHARS + 2


def test_escaping_expansion_does_not_break_limits(client, fake):
    # "<" escapes to 4 characters: the cap must hold after escaping, without half entities.
    v = view(village="<" * 5000, evidence=[EvidencePost("&" * 5000)] * 3)
    message = build_message(v)
    assert validate_blocks(message["blocks"]) is None
    for text in all_texts(send(client, fake, message)):
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)


def test_new_alert_has_what_where_how_sure_and_buttons():
    message = build_message(view())
    texts = all_texts(message)
    joined = "\n".join(texts)
    assert texts[0].startswith("Peringatan baru (new alert): Banjir (flood)")
    assert "*Banjir (flood)*" in texts[1] and "*tingkat tinggi (severity high)*" in texts[1]
    assert "Desa Sambangan, Kec. Sukasada, Jalan Ahmad Yani" in joined
    assert "<https://www.openstreetmap.org/?mlat=-8.12340&amp;mlon=115.09120#map=14/-8.12340/115.09120|" in joined
    assert "12 unggahan dari 5 akun (12 posts from 5 accounts)" in joined
    assert "tinggi (0.91)" in joined
    assert "Insiden #17" in joined
    assert "<http://127.0.0.1:8080/siaga/incidents/17|halaman insiden (incident page)>" in joined
    assert "5 Jan 10:30 WITA" in joined  # 02:30 UTC in Buleleng time
    actions = [b for b in message["blocks"] if b["type"] == "actions"][0]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (ACTION_ACK, "17"), (ACTION_RESOLVE, "17"), (ACTION_FALSE_ALARM, "17")]


@pytest.mark.parametrize("kind", ["update", "escalation", "resolved"])
def test_thread_updates_have_no_buttons(kind):
    message = build_message(view(kind=kind))
    assert not [b for b in message["blocks"] if b["type"] == "actions"]


def test_acknowledged_alert_shows_who_and_drops_ack_button():
    message = build_message(view(state="acknowledged", state_by="U07ABCDEF",
                                 state_at=datetime(2024, 1, 5, 3, 0, tzinfo=timezone.utc)))
    joined = "\n".join(all_texts(message))
    assert "ditangani (acknowledged)" in joined and "<@U07ABCDEF>" in joined
    actions = [b for b in message["blocks"] if b["type"] == "actions"][0]
    assert ACTION_ACK not in [e["action_id"] for e in actions["elements"]]


def test_state_by_must_be_a_slack_user_id():
    joined = "\n".join(all_texts(build_message(view(state="acknowledged", state_by="<!channel>"))))
    assert "<!channel>" not in joined and "<@" not in joined


def test_missing_place_and_point_degrade_gracefully():
    message = build_message(view(village=None, district=None, road=None, lat=None, lon=None, expected=None,
                                 evidence=(), timeline_url=None))
    joined = "\n".join(all_texts(message))
    assert "lokasi belum pasti" in joined and "openstreetmap" not in joined
    assert "12 unggahan dari 5 akun" in joined
    assert validate_blocks(message["blocks"]) is None


def test_out_of_range_coordinates_are_not_linked():
    assert "openstreetmap" not in "\n".join(all_texts(build_message(view(lat=float("nan")))))
    assert "openstreetmap" not in "\n".join(all_texts(build_message(view(lat=95.0))))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="AlertView.kind"):
        view(kind="panic")
    with pytest.raises(ValueError, match="created_at"):
        build_message(view(evidence=[EvidencePost("x", None, datetime(2024, 1, 1))]))


def test_escape_is_slacks_three_characters():
    assert escape("a & <b> \u200b") == "a &amp; &lt;b&gt; "


def test_evidence_in_plain_words_and_the_cue_that_raised_severity():
    message = build_message(view(observed=4, authors=4, expected=0.01, window_minutes=30, posts=6, incident_authors=5,
                                 why={"cues": {"setinggi dada": 2}, "posts": 2}))
    joined = "\n".join(all_texts(message))
    assert "4 warga melapor dalam 30 menit; biasanya hampir tidak ada" in joined
    assert "4 residents reported it within 30 minutes; usually almost none" in joined
    assert "Total insiden: 6 unggahan dari 5 akun" in joined
    assert ("*tingkat tinggi (severity high)* — karena 2 unggahan menyebut 'setinggi dada' / "
            "because 2 posts mention 'setinggi dada'") in joined


def test_update_names_what_changed_since_the_last_message(client, fake):
    what = WhatChanged(new_post_ids=(8, 9), posts_before=5, posts=7, authors_before=5, authors=6, areas=("Giri Emas",),
                       severity=("medium", "high"), severity_why={"cues": {"terjebak": 1}, "posts": 1},
                       states=(("open", "acknowledged", "U07ABCDEF"),))
    received = send(client, fake, build_message(view(kind="update", what=what)))
    joined = "\n".join(all_texts(received))
    assert "*Yang berubah (what changed)*" in joined
    assert "2 unggahan baru, kini 7 unggahan dari 6 akun (2 new posts, now 7 posts from 6 accounts)" in joined
    assert "+1 akun baru (+1 new account)" in joined
    assert "wilayah baru: Giri Emas (new areas: Giri Emas)" in joined
    assert "tingkat naik sedang → tinggi karena 1 unggahan menyebut 'terjebak'" in joined
    assert "status terbuka → ditangani oleh <@U07ABCDEF>" in joined
    assert received["text"].startswith("Pembaruan (update): Banjir (flood)") and "2 unggahan baru" in received["text"]
    assert validate_blocks(received["blocks"]) is None


def test_what_changed_escapes_names_and_actors():
    what = WhatChanged(areas=("<!channel>",), states=(("open", "resolved", "<@U1> *x*"),))
    joined = "\n".join(all_texts(build_message(view(kind="resolved", what=what))))
    assert "<!channel>" not in joined and "<@U1>" not in joined and "&lt;!channel&gt;" in joined


def test_newest_evidence_first():
    old = EvidencePost("lama", None, datetime(2024, 1, 5, 1, 0, tzinfo=timezone.utc))
    new = EvidencePost("baru", None, datetime(2024, 1, 5, 2, 0, tzinfo=timezone.utc))
    quotes = [t for t in all_texts(build_message(view(evidence=(new, old)))) if t.startswith("“")]
    assert quotes == ["“baru”", "“lama”"]


# Graphemes of more than one code point: a flag, skin-toned and family emoji (the ZWJ is taken
# out by `clean` before a cut), a keycap, letters with marks that have no precomposed form.
_CLUSTERS = ["🇮🇩", "👍🏽", "👨‍👩‍👧", "1️⃣", "ק\u05b8", "n\u0303\u0301", "ᬩᬮᬶ", "e\u0301"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_CLUSTERS), st.text(max_size=3)), max_size=60), st.integers(2, 120))
def test_a_cut_never_splits_a_grapheme(pieces, limit):
    """An excerpt, a place name or a section cut to Slack's limits cut by code points, so a flag
    became a lone regional indicator (🇮🇩 -> 🇮, a boxed "I") and a skin-toned thumb a thumb and a
    colour swatch. Whatever the text, what is kept is whole graphemes of it."""
    from wcwidth import iter_graphemes

    text = "".join(pieces).replace("&", "+")  # no entity for `_cut_escaped` to keep whole
    for cut in (truncate(text, limit), _cut_escaped(text, limit)):
        kept = cut if cut == text else cut.removesuffix("…").rstrip()
        assert len(cut) <= limit and text.startswith(kept)
        graphemes = list(iter_graphemes(text))
        assert "".join(graphemes[: len(list(iter_graphemes(kept)))]) == kept, (text, cut)


def test_a_flag_at_the_limit_of_an_excerpt_is_kept_whole_or_left_out():
    text = "Banjir di Sangsit " + "a" * (EXCERPT_CHARS - 20) + "🇮🇩 lagi"
    quote = evidence_quote(EvidencePost(text))
    assert "🇮" not in quote.replace("🇮🇩", "")


def _mrkdwn_texts(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for v in node.values() for t in _mrkdwn_texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _mrkdwn_texts(v)]
    return []


@pytest.mark.parametrize("author", ["*Pak Wayan*", "_info_bpbd_", "`kode", "```", "~coret~", "> kutipan", "<!here> @channel"])
def test_an_authors_markup_stays_as_typed(client, fake, author):
    """A quoted post's text went out as plain text, its author's handle (the post's too) as
    mrkdwn, where "*Pak Wayan*" was bold, "_info_bpbd_" italic and a backtick opened a code
    span over the rest of the line."""
    received = send(client, fake, build_message(view(evidence=(EvidencePost("Banjir di pasar", None, None, author),))))
    assert not any(author.strip("<>!") in text for text in _mrkdwn_texts(received["blocks"])), received["blocks"]
    shown = [e for b in received["blocks"] if b["type"] == "context" for e in b["elements"] if e["type"] == "plain_text"]
    assert [e["text"] for e in shown] == [escape(author)]
