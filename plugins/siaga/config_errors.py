"""How an error in a YAML config file is told: `file: field (line N): message`.

Operators edit these files by hand; an error that names the file, the field's dotted path and
its line lets them fix it without reading code. PyYAML's composed node tree keeps each node's
line, which `yaml.safe_load`'s plain data has lost, so the line is found by walking the tree
along the field's path.
"""
from __future__ import annotations

from typing import Any, Sequence

import yaml


def located(source: str, path: Sequence[Any], message: str, text: str | None = None) -> str:
    """The message for a field at `path` (keys and list indexes) of the YAML `text` read from
    `source`; the line is left out when it cannot be found."""
    line = line_of(text, path) if text else None
    at = f" (line {line})" if line else ""
    return f"{source}: {dotted(path) or 'top level'}{at}: {message}"


def dotted(path: Sequence[Any]) -> str:
    """`receivers[0].quiet_hours.start` for ["receivers", 0, "quiet_hours", "start"]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(text: str, path: Sequence[Any]) -> int | None:
    """1-based line of the YAML node at `path` (or of its deepest existing ancestor)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
