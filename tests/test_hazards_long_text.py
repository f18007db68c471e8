"""The hazard matcher on long posts with many exclusions (posts of up to `vocabulary.MAX_TEXT`
characters): which exclusions overlap a term or a cue is found by bisection (`hazards._Overlaps`),
once a scan of every exclusion per term, quadratic in a post repeating both."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from siaga.hazards import _Hit, _Overlaps

_SPAN = st.tuples(st.integers(0, 200), st.integers(0, 30)).map(lambda p: (p[0], p[0] + p[1]))


@given(st.lists(_SPAN, max_size=40), _SPAN)
def test_the_overlapping_hits_are_those_a_full_scan_finds(spans, probe):
    hits = [_Hit("exclusion", "flood", f"p{i}", start, end) for i, (start, end) in enumerate(spans)]
    start, end = probe
    expected = [h for h in hits if h.start < end and start < h.end]
    assert sorted(_Overlaps(hits).over(start, end)) == sorted(expected)


def test_a_long_post_of_denied_reports_is_denied_throughout(hazard_set):
    text = "Tidak banjir di Sangsit, aman. " * 3000  # "tidak banjir": an exclusion at every term
    assert "flood" not in {m.hazard for m in hazard_set.classify(text)}
    explained = {m.hazard: m for m in hazard_set.explain(text)}
    assert explained["flood"].terms == () and explained["flood"].vetoed_by
