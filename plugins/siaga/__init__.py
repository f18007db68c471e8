"""Siaga: watch public posts for disasters and traffic trouble in Buleleng and alert the agencies.

The package is the Airflow-independent core: every pipeline stage lives here as plain Python over
plain data and a SQLAlchemy session (Airflow is imported only inside the functions that ask it
for connections or mount the web pages), so it is testable without a scheduler and the DAG files
stay a few lines per task. Test and demo tools are not part of it: the fake Slack, the demo
scenario and `siaga demo` are in `siaga_dev`, the tests' other fakes in tests/support/.
"""
