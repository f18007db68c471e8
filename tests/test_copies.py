"""Near-duplicate posts count once: reposts, forwards ("Info dari grup WA: ..."), link quotes and
copy-pastes of one text, within a time window and across accounts, are one report; different
witnesses are not merged."""
from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from datasketch import MinHash, MinHashLSH
from hypothesis import given, settings, strategies as st

from siaga import copies
from siaga.copies import NUM_PERM, WINDOW, PostText, comparable, copy_keys, shingles, sketches

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from copies_legacy import one_post_at_a_time  # noqa: E402

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc)
ORIGINAL = "Banjir setinggi lutut merendam rumah warga di Desa Sangsit, Sawan sejak subuh tadi. Mohon waspada!"


def post(i: int, text: str, minutes: float = 0, duplicate_of: int | None = None) -> PostText:
    return PostText(i, T0 + timedelta(minutes=minutes), text, f"hash-{i}", duplicate_of)


def test_forwards_retweets_and_copy_pastes_share_the_originals_key():
    posts = [
        post(1, ORIGINAL),
        post(2, "Info dari grup WA: " + ORIGINAL, 5),
        post(3, "RT @bpbd_buleleng: Banjir setinggi lutut merendam rumah warga di Desa Sangsit Sawan sejak subuh tadi", 9),
        post(4, "copas dari grup sebelah: banjir setinggi lutut merendam rumah warga di desa sangsit, sawan sejak subuh tadi!!", 30),
    ]
    keys = copy_keys(posts)
    assert keys == {1: "hash-1", 2: "hash-1", 3: "hash-1", 4: "hash-1"}


def test_independent_witnesses_keep_their_own_keys():
    posts = [
        post(1, ORIGINAL),
        post(2, "Air masuk rumah kami di Sangsit, sudah selutut, anak-anak kami ungsikan ke balai banjar", 3),
        post(3, "Jalan depan pasar Sangsit tergenang banjir, motor banyak yang mogok, hati-hati lewat sini", 4),
        post(4, "banjir di sangsit", 5),
        post(5, "banjir di sawan", 6),
    ]
    assert len(set(copy_keys(posts).values())) == 5


def test_link_quotes_of_one_page_count_once():
    posts = [
        post(1, "ngeri banget https://news.example.com/banjir-sangsit?utm_source=wa"),
        post(2, "semoga cepat surut 🙏 https://NEWS.example.com/banjir-sangsit/", 10),
        post(3, "ini berita lain https://news.example.com/kebakaran-banyuasri", 11),
    ]
    keys = copy_keys(posts)
    assert keys[2] == keys[1] and keys[3] != keys[1]


def test_source_repost_fields_link_copies_even_when_the_original_is_not_read():
    posts = [post(5, "wah parah", 0, duplicate_of=1), post(6, "doakan ya", 1, duplicate_of=1), post(7, "wah parah", 2)]
    keys = copy_keys(posts)
    assert keys[5] == keys[6] != keys[7]


def test_copies_far_apart_in_time_are_separate_reports():
    later = WINDOW + timedelta(minutes=1)
    posts = [post(1, ORIGINAL), post(2, "Info dari grup WA: " + ORIGINAL, later / timedelta(minutes=1))]
    assert copy_keys(posts) == {1: "hash-1", 2: "hash-2"}


def test_comparable_strips_links_mentions_and_forwarding_prefixes():
    assert comparable("Fwd: Info dari grup WA @warga: Banjir di Sangsit https://t.co/x") == "banjir di sangsit"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=12))
def test_every_post_gets_a_key_and_the_first_keeps_its_own(texts):
    posts = [post(i, t, i) for i, t in enumerate(texts)]
    keys = copy_keys(posts)
    assert set(keys) == {p.id for p in posts}
    if posts:
        assert keys[0] == "hash-0"


def _datasketch(text: str) -> MinHash:
    """The sketch datasketch itself makes of a text: what `sketches` must equal."""
    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch(shingles(text))
    return m


def _assert_same_sketches(texts: list[str]) -> None:
    got = sketches(texts)
    assert len(got) == len(texts)
    for text, sketch in zip(texts, got):
        want = _datasketch(text)
        assert sketch == want, text  # MinHash equality: same seed, permutations and hash values
        assert sketch.hashvalues.dtype == want.hashvalues.dtype


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=200), max_size=20))
def test_batch_sketches_equal_datasketchs_own(texts):
    _assert_same_sketches(texts)


def test_batch_sketches_equal_datasketchs_own_across_chunks(monkeypatch):
    """Many texts sharing shingles, split over several chunks (a text never split)."""
    monkeypatch.setattr(copies, "SKETCH_CHUNK", 97)
    rng = random.Random(14)
    words = ["banjir", "Sangsit", "rumah", "warga", "air", "setinggi", "lutut", "🙏", "jalan", "tutup", "é"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    _assert_same_sketches(texts)
    assert [s.jaccard(t) for s, t in zip(sketches(texts), sketches(texts[1:]))] == \
        [_datasketch(a).jaccard(_datasketch(b)) for a, b in zip(texts, texts[1:])]


def test_the_index_is_made_with_the_bands_datasketch_chooses_for_the_threshold():
    """`copy_keys` makes its LSH index from bands chosen once per process: the ones datasketch
    picks for THRESHOLD and NUM_PERM."""
    chosen = MinHashLSH(threshold=copies.THRESHOLD, num_perm=copies.NUM_PERM)
    assert copies._bands() == (chosen.b, chosen.r)


_BASES = [ORIGINAL, "Pohon tumbang menutup jalan raya Singaraja-Gilimanuk di Seririt, kendaraan dialihkan",
          "Gempa terasa cukup kuat di Kubutambahan barusan, warga keluar rumah semua"]


@st.composite
def _copied_posts(draw) -> list[PostText]:
    """Posts that copy a few texts: exactly, forwarded, with words changed or added, some
    linking a page or naming a repost, at times inside and beyond the window, some at once."""
    n = draw(st.integers(0, 40))
    posts = []
    for i in range(n):
        text = draw(st.sampled_from(_BASES))
        for _ in range(draw(st.integers(0, 3))):
            words = text.split()
            at = draw(st.integers(0, len(words) - 1))
            words[at] = draw(st.sampled_from(["air", "warga", "lagi", "x", words[at] + "nya", ""]))
            text = " ".join(words)
        text = draw(st.sampled_from(["", "Fwd: ", "RT @warga: ", "info dari grup wa "])) + text
        text += draw(st.sampled_from(["", "", " https://berita.example/banjir", " #banjir"]))
        minutes = draw(st.sampled_from([0, 1, 30])) + draw(st.integers(0, 4)) * 24 * 60 + draw(st.integers(0, 3))
        repost = draw(st.one_of(st.none(), st.integers(0, max(i - 1, 0)))) if draw(st.integers(0, 9)) == 0 else None
        posts.append(post(i, text, minutes, repost))
    return posts


@settings(max_examples=300, deadline=None)
@given(_copied_posts())
def test_grouped_index_keys_every_post_as_comparing_with_each_earlier_one(posts):
    """Each distinct text once in the index (what makes a thousand forwards of one warning
    linear) gives every post the key comparing it with each earlier post gave."""
    assert copy_keys(posts) == one_post_at_a_time(posts)


def test_a_thousand_copies_of_one_text_share_the_first_ones_key():
    posts = [post(i, ("RT @w%d: " % i) + ORIGINAL, i) for i in range(1000)]
    assert set(copy_keys(posts).values()) == {"hash-0"}
