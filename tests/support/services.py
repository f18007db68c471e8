"""The services the Airflow-stack tests need, or a clear skip (a clear failure under CI)."""
from __future__ import annotations

import os

import pytest

from siaga_dev import airflow_stack as st


def require_services() -> None:
    """Skip when PostgreSQL or Redis is not on 127.0.0.1; fail instead when
    SIAGA_REQUIRE_POSTGRES=1 (`.ci/run`), where a missing service is a broken setup."""
    reason = st.services_unreachable()
    if reason is None:
        return
    if os.environ.get("SIAGA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason}, and SIAGA_REQUIRE_POSTGRES=1")
    pytest.skip(f"needs PostgreSQL and Redis on 127.0.0.1: {reason}")
