"""The production compose file keeps the shape of Airflow's official one (there is no Docker on
these machines to run it: this checks what a typo would break)."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer", "airflow-init"]


def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_of_the_official_shape():
    services = compose()["services"]
    assert set(services) >= {"postgres", "redis", *AIRFLOW_SERVICES}


def test_every_airflow_service_shares_executor_broker_and_one_jwt_secret():
    services = compose()["services"]
    secrets = set()
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:") or env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:@redis:"), name
        assert "postgres" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        secrets.add(env["AIRFLOW__API_AUTH__JWT_SECRET"])
    assert len(secrets) == 1 and "JWT_SECRET" in secrets.pop()


def test_project_folders_are_mounted_where_settings_look():
    services = compose()["services"]
    for name in AIRFLOW_SERVICES:
        mounts = {m.split(":")[0]: m.split(":")[1] for m in services[name]["volumes"]}
        env = services[name]["environment"]
        assert mounts["./dags"] == "/opt/airflow/dags" and mounts["./plugins"] == "/opt/airflow/plugins"
        assert mounts["./config"] == env["SIAGA_CONFIG_DIR"]
        assert mounts["./geodata"] == env["SIAGA_GEODATA_DIR"]
        # the inbox folder sources.yaml names (relative to the config folder's parent) is one
        # folder for every service: the workers read it, the triggerer watches it
        assert mounts["./var/inbox"] == str(PurePosixPath(env["SIAGA_CONFIG_DIR"]).parent / _inbox_path())


def test_init_migrates_both_databases_and_others_wait_for_it():
    services = compose()["services"]
    script = "\n".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in script and "siaga db migrate" in script
    for name in AIRFLOW_SERVICES[:-1]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    init_sql = services["postgres"]["volumes"][1].split(":")[0]
    assert "CREATE DATABASE siaga" in (REPO / init_sql).read_text()


def test_no_secret_is_written_in_the_file():
    text = (REPO / "docker-compose.yml").read_text()
    assert "xoxb-" not in text and "xoxp-" not in text


def test_slack_listener_runs_the_socket_mode_command_after_init():
    listener = compose()["services"]["siaga-slack-listener"]
    assert listener["entrypoint"] == "siaga" and listener["command"] == ["slack-listen"]
    assert "SIAGA_SLACK_APP_TOKEN" in listener["environment"]
    assert listener["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def _inbox_path() -> str:
    (entry,) = [s for s in yaml.safe_load((REPO / "config" / "sources.yaml").read_text(encoding="utf-8"))["sources"] if s["kind"] == "inbox"]
    return entry["path"]
