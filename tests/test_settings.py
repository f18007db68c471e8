"""Where the database is (SIAGA_DB_URL, else the Airflow connection siaga_db, else SQLite) and how
often the sources are polled (SIAGA_POLL_INTERVAL)."""
from __future__ import annotations

import json

import pytest

from siaga import settings


def test_explicit_url_wins(monkeypatch):
    monkeypatch.setenv("SIAGA_DB_URL", "sqlite:///x.db")
    monkeypatch.setenv("AIRFLOW_CONN_SIAGA_DB", "postgres://u:p@h:5432/siaga")
    assert settings.database_url() == "sqlite:///x.db"


def test_airflow_connection_uri_from_environment(monkeypatch):
    monkeypatch.delenv("SIAGA_DB_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_SIAGA_DB", "postgres://u:p@h:5432/siaga")
    assert settings.database_url() == "postgresql+psycopg2://u:p@h:5432/siaga"


def test_airflow_connection_json_from_environment(monkeypatch):
    monkeypatch.delenv("SIAGA_DB_URL", raising=False)
    conn = {"conn_type": "postgres", "host": "db", "login": "siaga", "password": "p@ss/word", "port": 5432, "schema": "siaga"}
    monkeypatch.setenv("AIRFLOW_CONN_SIAGA_DB", json.dumps(conn))
    assert settings.database_url() == "postgresql+psycopg2://siaga:p%40ss%2Fword@db:5432/siaga"


def test_default_is_a_sqlite_file_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAGA_DB_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SIAGA_DB", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.setenv("SIAGA_DATA_DIR", str(tmp_path))
    assert settings.database_url() == f"sqlite:///{tmp_path / 'siaga.db'}"


def test_poll_interval_defaults_to_a_minute_and_reads_seconds(monkeypatch):
    from datetime import timedelta

    monkeypatch.delenv(settings.POLL_INTERVAL_ENV, raising=False)
    assert settings.poll_interval() == timedelta(minutes=1)
    monkeypatch.setenv(settings.POLL_INTERVAL_ENV, "30")
    assert settings.poll_interval() == timedelta(seconds=30)
    monkeypatch.setenv(settings.POLL_INTERVAL_ENV, "12.5")
    assert settings.poll_interval() == timedelta(seconds=12.5)


@pytest.mark.parametrize("value", ["soon", "0", "-60", "5", "nan", "inf", "1e400", "1e20", "86401"])
def test_poll_interval_refuses_what_is_not_a_sane_number_of_seconds(monkeypatch, value):
    monkeypatch.setenv(settings.POLL_INTERVAL_ENV, value)
    with pytest.raises(ValueError, match=settings.POLL_INTERVAL_ENV):
        settings.poll_interval()
