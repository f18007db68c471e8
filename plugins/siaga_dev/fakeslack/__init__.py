"""A fake Slack Web API on 127.0.0.1: what tests, benchmarks and `siaga demo` deliver to.

Import it from here (`from siaga_dev.fakeslack import FakeSlack`); the modules behind it hold
one concern each: `server` the HTTP server, its channels, recorded requests and programmed
failures; `blockkit` Slack's Block Kit limits; `cli` the printing command line
(`python -m siaga_dev.fakeslack`).
"""
from siaga_dev.fakeslack.blockkit import validate_blocks
from siaga_dev.fakeslack.cli import describe
from siaga_dev.fakeslack.server import API_PREFIX, DEFAULT_TOKEN, FAILURE_MODES, FakeSlack, Failure, RecordedRequest

__all__ = [
    "API_PREFIX",
    "DEFAULT_TOKEN",
    "FAILURE_MODES",
    "FakeSlack",
    "Failure",
    "RecordedRequest",
    "describe",
    "validate_blocks",
]
