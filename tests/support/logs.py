"""What a logger said during a test, read with a handler of our own."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def errors_logged(logger_name: str) -> Iterator[list[str]]:
    """The ERROR messages one logger emits meanwhile. A handler of our own on that logger:
    inside dag.test() Airflow routes logging through its own handlers, which pytest's caplog
    sees or not depending on which test configured Airflow's logging first."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler = Collect(level=logging.ERROR)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
