"""Siaga: watch public posts for disasters and traffic trouble in Buleleng and alert the agencies.

The package is the Airflow-independent core: every pipeline stage lives here as plain functions
over plain data and a SQLAlchemy session, so it is testable without a scheduler and the DAG files
stay a few lines per task.
"""
