"""Rendering the pages: Jinja2 templates from `templates/`, autoescaped, under a content
security policy that allows nothing from elsewhere.

Autoescaping is on for every template because everything that comes from a post is hostile
text. The policy forbids scripts and anything fetched from elsewhere; the pages need neither,
as the map and chart are inline SVG. Forms may post only to this site (form-action).

Every word on the pages comes from the message catalogue (`siaga.catalogue`), Indonesian first:
`t(key)` is the bilingual text for attributes and options ("terbuka (open)"), `bi(key)` the
Indonesian with the English set apart in a muted span.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from siaga import catalogue
from siaga.links import safe_url
from siaga.timelines.display import event_label, severity_colour, wita

TEMPLATES = Path(__file__).with_name("templates")
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'; form-action 'self'"


def bi(key: str, /, **fields: Any) -> Markup:
    """`key` for a heading or label: the Indonesian, then the English in a muted span (just one
    when both read the same). Fields are escaped; a field given as a pair (`words`) is put in
    each language in its own words."""
    local = catalogue.say_in("id", key, **{k: v[0] if isinstance(v, tuple) else v for k, v in fields.items()})
    english = catalogue.say_in("en", key, **{k: v[1] if isinstance(v, tuple) else v for k, v in fields.items()})
    if not english or english.casefold() == local.casefold():
        return Markup("{}").format(local)
    return Markup('{} <span class="en" lang="en">({})</span>').format(local, english)


def words(prefix: str, value: str | None) -> tuple[str, str]:
    """A state, severity or level as (Indonesian, English), for a field of `bi`."""
    if value and catalogue.has(f"{prefix}.{value}"):
        return catalogue.both(f"{prefix}.{value}")
    return (value or "–", value or "–")


def named(prefix: str, value: str | None) -> str:
    """A state, severity or level in both languages ("terbuka (open)"); an unknown value as it is."""
    if value and catalogue.has(f"{prefix}.{value}"):
        return catalogue.say(f"{prefix}.{value}")
    return value or "–"


def environment() -> Environment:
    """The templates with the display helpers they use; an undefined name is an error, not blank."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["wita"] = wita
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    env.globals["severity_colour"] = severity_colour
    env.globals["event_label"] = event_label
    env.globals["safe_url"] = safe_url
    env.globals["t"] = catalogue.say
    env.globals["bi"] = bi
    env.globals["named"] = named
    env.globals["words"] = words
    env.globals["has_text"] = catalogue.has
    env.globals["say_in"] = catalogue.say_in
    return env


def render_page(env: Environment, name: str, **context: Any) -> HTMLResponse:
    """Template `name` rendered with `context`, as an HTML response under the policy."""
    return HTMLResponse(env.get_template(name).render(**context), headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})
