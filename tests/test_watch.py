"""The watch loop every watched source shares (`siaga.sources.watch.changes`): whatever a
look finds, look after look, an item is announced exactly when it is held now and was not at
the last look that answered; an unchanged answer and the first look announce nothing; what was
seen survives a failed look (the reader is opened again by `push.listen`)."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from siaga.sources import push, watch

pytestmark = pytest.mark.usefixtures("new_watchers")

STREAM = push.PushStream("berita_bali", "https://bpbd.example/feed", protocol="rss", every=1e-6)
_ITEMS = st.frozensets(st.sampled_from("abcdefgh"), max_size=6)
_ANSWERS = st.lists(st.one_of(_ITEMS, st.none(), st.just("fail")), max_size=12)


class _Done(Exception):
    pass


def _announced(answers: list) -> list[str]:
    """The labels the loop yields for these answers, one look each; "fail" is a look that
    raises, after which the reader is opened again as `push.listen` does."""
    script = iter(answers)
    labels: list[str] = []

    async def look(seen: watch.Seen):
        answer = next(script, _Done)
        if answer is _Done:
            raise _Done
        if answer == "fail":
            raise OSError("look failed")
        return answer

    async def run() -> None:
        while True:
            try:
                async for label in watch.changes(STREAM, look):
                    labels.append(label)
            except OSError:
                continue
            except _Done:
                return

    asyncio.run(run())
    return labels


def _expected(answers: list) -> list[str]:
    labels, last = [], None
    for answer in answers:
        if answer in (None, "fail"):
            continue
        if last is not None:
            labels += [f"item {i}" for i in sorted(answer - last)]
        last = answer
    return labels


@hsettings(max_examples=200, deadline=None)
@given(answers=_ANSWERS)
def test_an_item_is_announced_when_it_appears_and_only_then(answers):
    watch._seen.clear()
    assert _announced(answers) == _expected(answers)


def test_the_first_look_only_learns():
    assert _announced([frozenset("abc")]) == []
    watch._seen.clear()
    assert _announced([frozenset("abc"), None, frozenset("abcd"), "fail", frozenset("bde")]) == ["item d", "item e"]
