"""The hazard definitions pages and exports name incidents by: the lists in force, exactly as
detection uses them (the operators' files, or the last good set while those are invalid), so a
page or a CAP alert never names a hazard differently from the alert that reached Slack.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping

from sqlalchemy.orm import Session

from siaga import hazard_lists
from siaga.hazard_config import Hazard, HazardConfigError

log = logging.getLogger(__name__)


def hazards_in_force(session: Session) -> dict[str, Hazard]:
    """Hazard id -> its definition, read without recording anything (pages only look). Empty
    when the lists are invalid and no good set was ever in force: the ids then stand in for the
    labels, so a page or an export never fails on a configuration error, which `siaga hazards
    check` and detection report."""
    try:
        return dict(hazard_lists.in_force(session, remember=False).hazards)
    except HazardConfigError as exc:
        log.warning("no valid hazard lists in force; pages and exports show hazard ids: %s", exc)
        return {}


def hazard_labels(hazards: Mapping[str, Hazard]) -> dict[str, tuple[str, str]]:
    """Hazard id -> (Indonesian label, English label)."""
    return {hid: (h.label_id, h.label_en) for hid, h in hazards.items()}


class HazardsInForce:
    """`hazards_in_force`, re-read at most every `max_age` seconds. Loading and validating the
    lists takes seconds (2.4-3.9 s measured on the 2-core test machine, 1.6 s of it checking the
    terms against each other), which a page cannot pay per request; an operator's change shows within `max_age`."""

    def __init__(self, max_age: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()  # one reader at a time: concurrent requests wait, not reload
        self._read_at: float | None = None
        self._hazards: dict[str, Hazard] = {}

    def __call__(self, session: Session) -> dict[str, Hazard]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.max_age:
                self._hazards = hazards_in_force(session)
                self._read_at = now
            return self._hazards
