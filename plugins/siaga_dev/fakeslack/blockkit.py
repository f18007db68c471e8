"""Slack's Block Kit limits, checked the way Slack checks them, so a message Slack would refuse
with `invalid_blocks` is refused by the fake too (tests send `siaga.messages` output through it).

The limits themselves are `siaga.vocabulary`'s: `siaga.messages` cuts its text to the same numbers
this refuses beyond, so the two cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from siaga.vocabulary import (
    SLACK_ACTIONS_ELEMENTS,
    SLACK_BUTTON_TEXT,
    SLACK_BUTTON_VALUE,
    SLACK_CONTEXT_ELEMENTS,
    SLACK_FIELD_TEXT,
    SLACK_MAX_BLOCKS,
    SLACK_SECTION_FIELDS,
    SLACK_SECTION_TEXT,
)


def validate_blocks(blocks: Any) -> str | None:
    """First Block Kit limit that `blocks` breaks, or None. Covers the block types Siaga uses."""
    if not isinstance(blocks, list):
        return "blocks must be an array"
    if len(blocks) > SLACK_MAX_BLOCKS:
        return f"more than {SLACK_MAX_BLOCKS} blocks"
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"blocks[{i}]"
        if kind == "section":
            text = (block.get("text") or {}).get("text", "")
            if len(text) > SLACK_SECTION_TEXT:
                return f"{where}.text longer than {SLACK_SECTION_TEXT}"
            fields = block.get("fields") or []
            if len(fields) > SLACK_SECTION_FIELDS:
                return f"{where}.fields more than {SLACK_SECTION_FIELDS}"
            if any(len(f.get("text", "")) > SLACK_FIELD_TEXT for f in fields):
                return f"{where}.fields text longer than {SLACK_FIELD_TEXT}"
            if not text and not fields:
                return f"{where} needs text or fields"
        elif kind == "context":
            if not 0 < len(block.get("elements") or []) <= SLACK_CONTEXT_ELEMENTS:
                return f"{where}.elements must hold 1..{SLACK_CONTEXT_ELEMENTS}"
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= SLACK_ACTIONS_ELEMENTS:
                return f"{where}.elements must hold 1..{SLACK_ACTIONS_ELEMENTS}"
            for el in elements:
                if len((el.get("text") or {}).get("text", "")) > SLACK_BUTTON_TEXT:
                    return f"{where} button text longer than {SLACK_BUTTON_TEXT}"
                if len(el.get("value") or "") > SLACK_BUTTON_VALUE:
                    return f"{where} button value longer than {SLACK_BUTTON_VALUE}"
        elif kind in ("divider", "header", "image", "rich_text", "input", "file"):
            continue
        else:
            return f"{where}: unknown block type {kind!r}"
    return None
