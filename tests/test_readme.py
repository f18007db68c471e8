"""The README's architecture table is how a newcomer finds their way: it must name every module
of the core package, and every module it names must exist."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "plugins" / "siaga"


def _table_rows() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("| stage | module (`plugins/siaga/`) | what it does |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _named() -> set[str]:
    """Module names in the table's second column (`x.py`, `sources/`, `../siaga_plugin.py`)."""
    names: set[str] = set()
    for row in _table_rows():
        modules_cell = row.split("|")[2]
        names.update(re.findall(r"`([^`]+)`", modules_cell))
    return names


def _tree() -> set[str]:
    out = {p.name for p in CORE.glob("*.py") if p.name != "__init__.py"}
    out |= {f"{p.name}/" for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists() or p.name == "migrations"}
    return out


def test_every_core_module_is_in_the_architecture_table() -> None:
    missing = _tree() - _named()
    assert not missing, f"README architecture table does not name: {sorted(missing)}"


def test_every_module_the_table_names_exists() -> None:
    for name in _named():
        path = (CORE / name).resolve()
        assert path.exists(), f"README names {name}, which is not in plugins/siaga/"
