"""A push trigger made again as Airflow's triggerer makes it: from its class path and the
keyword arguments stored as JSON."""
from __future__ import annotations

import importlib
import json
from typing import Any


def rebuilt(trigger: Any) -> Any:
    """`trigger` serialized, stored through JSON and built again; asserts that nothing was lost
    on the way (the same serialization, the same stream) and that it is an event trigger, the
    kind an AssetWatcher accepts."""
    from airflow.triggers.base import BaseEventTrigger

    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(kwargs))
    assert stored == kwargs
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**stored)
    assert isinstance(again, BaseEventTrigger) and again.serialize() == (classpath, kwargs)
    assert again.stream == trigger.stream
    return again
