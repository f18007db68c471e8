"""Hazard lists an operator has edited, for tests of what a changed hazard file changes."""
from __future__ import annotations

import shutil
from pathlib import Path

from siaga.hazard_config import default_hazard_dir
from siaga.hazards import HazardSet


def lists_with(directory: Path, hazard: str, old: str, new: str) -> HazardSet:
    """The shipped lists copied to `directory` with one piece of one hazard's file replaced
    (`old` must be there, so a reworded shipped file fails the test instead of passing it)."""
    shutil.copytree(default_hazard_dir(), directory)
    path = directory / f"{hazard}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return HazardSet.load(directory)
