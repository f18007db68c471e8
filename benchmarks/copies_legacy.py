"""`copies.copy_keys` as it was first written, kept callable so `bench_copies.py` can print it
beside the code in force and tests/test_copies.py can hold the two equal. Benchmarks only:
nothing in `plugins/` imports this."""
from __future__ import annotations

from datasketch import MinHashLSH

from siaga.copies import MIN_CHARS, NUM_PERM, THRESHOLD, WINDOW, PostText, _bands, comparable, reposted_or_linked, sketches


def one_post_at_a_time(posts: list[PostText]) -> dict[int, str]:
    """`copy_keys` as it was first written: every long post in the index on its own, each new
    post compared with every earlier one the index returns. Quadratic in copies of one text,
    and the definition the grouped index must keep."""
    ordered = sorted(posts, key=lambda p: (p.created_at, p.id))
    texts = {p.id: comparable(p.text) for p in ordered}
    long = [p.id for p in ordered if len(texts[p.id]) >= MIN_CHARS]
    sketch = dict(zip(long, sketches([texts[i] for i in long])))
    key: dict[int, str] = {}
    seen: dict[int, PostText] = {}
    by_page: dict[str, PostText] = {}
    lsh = MinHashLSH(num_perm=NUM_PERM, params=_bands())
    for p in ordered:
        original = reposted_or_linked(p, key, by_page)  # unchanged since: shared, not copied
        mh = sketch.get(p.id)
        if mh is not None:
            if original is None:
                near = [seen[int(c)] for c in lsh.query(mh)]
                near = [c for c in near if p.created_at - c.created_at <= WINDOW and sketch[c.id].jaccard(mh) >= THRESHOLD]
                if near:
                    original = key[min(near, key=lambda c: (c.created_at, c.id)).id]
            lsh.insert(str(p.id), mh)
        key[p.id] = original or p.text_hash
        seen[p.id] = p
    return key
