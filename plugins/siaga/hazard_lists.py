"""Which hazard keyword lists are in force: the operators' files when they are valid, else the
last good set, kept in the database, so a typo at 3 a.m. never switches detection off.

The last good set is kept as the texts of its files, exactly as they were validated, and
compiled again when needed with the deployment's abbreviation table. Only a deployment that has
never had a valid set has nothing to fall back on: then the error is raised and the run fails
with every file:line an operator must fix.
"""
from __future__ import annotations

import csv
import io
import logging
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from siaga.hazard_config import HazardConfigError, default_hazard_dir, read_directory
from siaga.hazards import HazardSet, load_compiled
from siaga import last_good
from siaga.store import ConfigState

log = logging.getLogger(__name__)
STATE_NAME = "hazard_lists"
# Beside the files of the last good set: the abbreviation table they were validated with, as
# CSV. Without it the set was compiled again with the deployment's table, and a typo there
# raised instead of keeping the last good set in force.
TABLE_KEY = "abbreviations.csv"


def in_force(session: Session, directory: Path | None = None, remember: bool = True) -> HazardSet:
    """The operators' lists, or the last good set when they are invalid (the refusal is logged
    with every file:line: field error). A valid set becomes the new last good one unless
    `remember` is False (a read-only look, as the backtest takes). Raises HazardConfigError when
    the lists are invalid and there is no last good set."""
    directory = directory or default_hazard_dir()
    try:
        config, hazard_set = load_compiled(directory)
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
        _remember(session, hazard_set.fingerprint(), {**config.texts, TABLE_KEY: _table_text(config.abbreviations)})
    return hazard_set


def _table_text(abbreviations: dict[str, str]) -> str:
    """The abbreviation table as `normalise.load_abbreviations` reads it (its entries are
    already folded, and folding them again changes nothing), under its header row: without it, no
    abbreviations was an empty file, which the reader refuses as caught half-written, and the
    last good set could not be read back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("abbrev", "expansion"))
    writer.writerows(sorted(abbreviations.items()))
    return out.getvalue()


def _remember(session: Session, fingerprint: str, content: dict[str, str]) -> None:
    """Make this set the last good one (`last_good.remember_content`: detect and the mapped tag
    tasks start side by side and may both write it).

    A hazard whose file is gone is retired, by decision: the folder is what operators edit, and
    deleting a file is how a hazard is taken out (keeping it would make that impossible without
    touching the database). It is a valid set, so no refusal is logged; but a file deleted by
    mistake (a wrong `rm`, a checkout half-done) silently stops a hazard's detection, so the
    hazards a new set drops are named at WARNING: no new incidents of them, and their open ones
    resolve as they go quiet."""
    before = session.get(ConfigState, STATE_NAME)
    kept = set(before.content) if before is not None and isinstance(before.content, dict) else set()
    if last_good.remember_content(session, STATE_NAME, fingerprint, content):
        log.info("hazard lists in force: %s (%d hazards)", fingerprint, len(content) - (TABLE_KEY in content))
        gone = sorted(Path(name).stem for name in kept - set(content) - {TABLE_KEY})
        if gone:
            log.warning("hazard lists in force no longer define %s (their files are gone): no new incidents of them; "
                        "put a file back to detect it again", ", ".join(gone))


def _from_content(content: dict[str, str]) -> HazardSet:
    with tempfile.TemporaryDirectory(prefix="siaga-last-good-") as tmp:
        # A folder of its own inside the private one: beside it only the set's own table, else
        # (a set kept before the table was) the deployment's applies.
        directory = Path(tmp) / "hazards"
        directory.mkdir()
        for name, text in content.items():
            if name != TABLE_KEY:
                (directory / name).write_text(text, encoding="utf-8")
        if TABLE_KEY in content:  # the set's own table, beside it (a set kept before has none)
            (Path(tmp) / TABLE_KEY).write_text(content[TABLE_KEY], encoding="utf-8")
        # not through the matcher cache: this folder's path is new every time
        return HazardSet.from_config(read_directory(directory))
