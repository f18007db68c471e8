"""Rendering the pages: Jinja2 templates from `templates/`, autoescaped, under a content
security policy that allows nothing from elsewhere.

Autoescaping is on for every template because everything that comes from a post is hostile
text. The policy forbids scripts and anything fetched from elsewhere; the pages need neither,
as the map and chart are inline SVG.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from siaga.timelines.display import event_label, safe_url, severity_colour, wita

TEMPLATES = Path(__file__).with_name("templates")
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"


def environment() -> Environment:
    """The templates with the display helpers they use; an undefined name is an error, not blank."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["wita"] = wita
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    env.globals["severity_colour"] = severity_colour
    env.globals["event_label"] = event_label
    env.globals["safe_url"] = safe_url
    return env


def render_page(env: Environment, name: str, **context: Any) -> HTMLResponse:
    """Template `name` rendered with `context`, as an HTML response under the policy."""
    return HTMLResponse(env.get_template(name).render(**context), headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})
