"""Which hazard keyword lists are in force: the operators' files when they are valid, else the
last good set, kept in the database, so a typo at 3 a.m. never switches detection off."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from siaga.hazard_config import HazardConfigError, default_hazard_dir
from siaga.hazards import HazardSet
from siaga.store import ConfigState, utcnow

log = logging.getLogger(__name__)
STATE_NAME = "hazard_lists"


def in_force(session: Session, directory: Path | None = None, remember: bool = True) -> HazardSet:
    """The operators' lists, or the last good set when they are invalid. A valid set becomes the
    new last good one unless `remember` is False (a read-only look, as the backtest takes)."""
    directory = directory or default_hazard_dir()
    try:
        hazard_set = HazardSet.load(directory)
    except HazardConfigError as exc:
        last_good = session.get(ConfigState, STATE_NAME)
        if last_good is None:
            raise
        log.error(
            "REFUSED the hazard lists in %s: %s -- keeping the last good set in force (%s, from %s)",
            directory, exc, last_good.fingerprint, last_good.updated_at.isoformat(),
        )
        return _from_content(last_good.content)
    if remember:
        _remember(session, hazard_set, directory)
    return hazard_set


def _remember(session: Session, hazard_set: HazardSet, directory: Path) -> None:
    fingerprint = hazard_set.fingerprint()
    state = session.get(ConfigState, STATE_NAME)
    if state is not None and state.fingerprint == fingerprint:
        return
    content = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.yaml"))}
    if state is None:
        session.add(ConfigState(name=STATE_NAME, fingerprint=fingerprint, content=content, updated_at=utcnow()))
    else:
        state.fingerprint, state.content, state.updated_at = fingerprint, content, utcnow()
    log.info("hazard lists in force: %s (%d hazards)", fingerprint, len(hazard_set.hazards))


def _from_content(content: dict[str, str]) -> HazardSet:
    with tempfile.TemporaryDirectory(prefix="siaga-last-good-") as tmp:
        for name, text in content.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        return HazardSet.load(Path(tmp))
