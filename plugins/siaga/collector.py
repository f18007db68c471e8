"""When Python's cyclic garbage collector runs while the tagger and detection work.

The collector starts a young-generation pass every 700 container objects allocated and not yet
freed. Loading the matchers creates tens of thousands of long-lived objects in one go, and
tagging a batch keeps each post's results (a few containers per post) until the batch is
written: both trigger passes that find no garbage (the tagger makes almost no reference cycles)
and only walk the same survivors again, about a twentieth of `siaga tag`'s time (issue 14). So
while they run the young generation's threshold is raised, never the collector switched off: a
long stream is still collected, only less often.

The threshold is process-wide, so nested and concurrent users (the pipeline's writer thread,
two taggers in one process) share one count: the first to enter raises it, the last to leave
puts back what it was.

Separately, the long-lived objects a task starts with (modules, the matchers, the gazetteer:
a few hundred thousand) can be left out of the passes altogether while it works
(`long_lived_frozen`), and a block that makes many objects without cycles and frees them all
before it ends can run with the collector off (`paused`).
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

# Young objects allowed before a pass while a batch is tagged (and through the pipeline's tag
# stage, its reads and writes included): more than a pipeline batch (`tagging.TAG_BATCH` posts)
# keeps, so a batch is walked at most once.
TAGGING_GEN0 = 100_000
# While a cached matcher is unpickled: more than it holds, so the load triggers no pass.
LOADING_GEN0 = 1_000_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()
_paused_depth = 0
_was_enabled = True


@contextmanager
def fewer_collections(gen0: int) -> Iterator[None]:
    """Raise the young generation's threshold to at least `gen0` inside the block."""
    global _depth, _saved
    with _lock:
        current = gc.get_threshold()
        if _depth == 0:
            _saved = current
        if 0 < current[0] < gen0:  # 0: automatic collection is off, and stays off
            gc.set_threshold(gen0, *current[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Within the block, the objects alive at its start are left out of the collector's passes
    (`gc.freeze`): every full pass, set off by the per-post and per-row objects, walked them all
    again and found no garbage (about a tenth of `siaga tag`; 0.1 s of CPU per pass in a detect
    task, two or three passes a run). Objects made inside are collected as ever; on leaving, the
    frozen ones are handed back (`gc.unfreeze`), so a process that goes on (a worker, a test)
    keeps nothing longer than it would have. A process whose objects someone else froze (a
    parent before forking workers) is left as it is: unfreezing is all or nothing."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def paused() -> Iterator[None]:
    """Automatic collection off inside the block, back as it was when the last user leaves.
    For a block whose many objects hold no reference cycles and are freed by reference counting
    before it ends (ingest's poll: posts, payloads, rows): every pass their allocations set off
    walked them, and the whole heap at each full one, and freed nothing (about a quarter of
    ingesting 20,000 posts). Nested and concurrent users share one count, as with
    `fewer_collections`, so the first to leave does not switch it back on under another."""
    global _paused_depth, _was_enabled
    with _lock:
        if _paused_depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused_depth += 1
    try:
        yield
    finally:
        with _lock:
            _paused_depth -= 1
            if _paused_depth == 0 and _was_enabled:
                gc.enable()
