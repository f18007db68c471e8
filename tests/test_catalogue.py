"""The message catalogue: bilingual sentences, WITA times, plural forms, safe templates."""
from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from siaga import catalogue
from siaga.catalogue import MESSAGES, both, join, say, say_in, wita
from siaga.vocabulary import local_iso

UTC = timezone.utc


def test_bilingual_indonesian_first() -> None:
    assert say("state.open") == "terbuka (open)"
    assert say_in("en", "state.false_alarm") == "false alarm"
    assert both("severity.high") == ("tinggi", "high")


def test_same_words_said_once() -> None:
    assert say("place.district", name="Sawan") == "Kec. Sawan"
    assert join("Kec. Sawan", "kec. sawan") == "Kec. Sawan"


def test_times_in_wita_with_local_month_names() -> None:
    at = datetime(2026, 8, 15, 0, 25, tzinfo=UTC)  # 08:25 WITA
    assert wita(at) == "15 Agu 2026 08:25 WITA"
    assert wita(at, lang="en") == "15 Aug 2026 08:25 WITA"
    assert wita(at, "time") == "08:25 WITA"
    assert wita(at, "short", "en") == "15 Aug 08:25 WITA"
    assert wita(None) == "–"
    # a time in a sentence is written in WITA in each language
    assert say("change.auto_resolved", last=at) == (
        "selesai otomatis: tidak ada unggahan baru sejak 15 Agu 08:25 WITA "
        "(resolved automatically: no new posts since 15 Aug 08:25 WITA)")


def test_crossing_midnight_into_the_local_day() -> None:
    assert wita(datetime(2026, 1, 14, 16, 30, tzinfo=UTC), "date") == "15 Jan 2026"


def test_naive_times_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        wita(datetime(2026, 1, 15, 8, 0))


def test_plural_forms_in_english() -> None:
    one = say("posts.count", posts=1, authors=1)
    many = say("posts.count", posts=6, authors=4)
    assert one == "1 unggahan dari 1 akun (1 post from 1 account)"
    assert many == "6 unggahan dari 4 akun (6 posts from 4 accounts)"


def test_plain_language_evidence() -> None:
    text = say_in("id", "evidence.reports", authors=4, minutes=30) + "; " + say_in("id", "evidence.usually_none")
    assert text == "4 warga melapor dalam 30 menit; biasanya hampir tidak ada"


def test_unknown_key_and_missing_field_are_named() -> None:
    with pytest.raises(KeyError, match="no message 'nope'"):
        say("nope")
    with pytest.raises(KeyError, match="'posts.count' needs field 'authors'"):
        say("posts.count", posts=3)
    with pytest.raises(ValueError, match="language"):
        say_in("fr", "state.open")


def test_both_languages_need_the_same_fields() -> None:
    """A field only one language uses would leave the other sentence without it."""
    parse = string.Formatter().parse
    for key, (local, english) in MESSAGES.items():
        assert {f for _, f, _, _ in parse(local) if f} == {f for _, f, _, _ in parse(english) if f}, key


def test_templates_hold_no_markup() -> None:
    """Callers escape fields; the templates themselves must be inert in Slack and HTML."""
    for key, pair in MESSAGES.items():
        for template in pair:
            literal = "".join(text for text, _, _, _ in string.Formatter().parse(template))
            assert not set(literal) & set("<>&*_~`"), key


def test_labels_of_a_topic() -> None:
    assert catalogue.labels("state")["acknowledged"] == "ditangani (acknowledged)"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_machine_times_carry_the_wita_offset(at: datetime) -> None:
    text = local_iso(at)
    assert text.endswith("+08:00")
    assert datetime.fromisoformat(text) == at.replace(microsecond=0)
    assert wita(at).endswith(f"{(at + timedelta(hours=8)):%H:%M} WITA")
