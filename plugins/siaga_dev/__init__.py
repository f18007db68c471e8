"""Siaga's development tools: the fake Slack, the synthetic demo scenario, `siaga demo`, and a
real Airflow deployment run as child processes for the Celery tests and the latency benchmark.

Kept apart from the core package `siaga` so production code cannot come to depend on a fake:
`siaga` never imports this package at module level (the `siaga demo` and `siaga scenario`
commands import it when they run; tests/test_core_boundaries.py checks). It is still installed
with Siaga, because `make demo` and the benchmarks use it. Airflow does not scan it as plugin
files (plugins/.airflowignore).
"""
