"""The plugin's pages through Airflow's real API server: login required, then they answer.

Airflow reads its configuration when first imported, so the check runs in a fresh interpreter
with AIRFLOW_HOME and the settings in its environment, against a freshly migrated metadata DB.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


from siaga import store

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, warnings
    warnings.simplefilter("ignore")
    from airflow.utils import db
    db.resetdb()
    from fastapi.testclient import TestClient
    from airflow.api_fastapi.app import create_app
    client = TestClient(create_app())
    out = {}
    out["anonymous"] = client.get("/siaga/").status_code
    out["anonymous_incident"] = client.get("/siaga/incidents/1").status_code
    out["anonymous_export"] = client.get("/siaga/export?format=csv").status_code
    out["anonymous_action"] = client.post("/siaga/incidents/1/actions/acknowledge", headers={"Origin": "http://testserver"}).status_code
    out["anonymous_private_feed"] = client.get("/siaga/cap.atom").status_code
    out["anonymous_public_feed"] = client.get("/siaga/public/cap.atom").status_code
    out["anonymous_public_doc"] = client.get("/siaga/public/incidents/1/cap.xml").status_code
    r = client.post("/auth/token", json={"username": "admin", "password": "admin"})
    out["token_status"] = r.status_code
    token = r.json().get("access_token", "")
    auth = {"Authorization": "Bearer " + token}
    page = client.get("/siaga/", headers=auth)
    out["with_token"] = page.status_code
    out["links_under_prefix"] = 'href="/siaga/incidents/' in page.text
    out["bad_token"] = client.get("/siaga/", headers={"Authorization": "Bearer nonsense"}).status_code
    client.cookies.set("_token", token)
    out["with_cookie"] = client.get("/siaga/").status_code
    acted = client.post("/siaga/incidents/1/actions/acknowledge", headers={"Origin": "http://testserver"}, follow_redirects=False)
    out["action_status"], out["action_location"] = acted.status_code, acted.headers.get("location")
    out["cross_site_action"] = client.post("/siaga/incidents/1/actions/resolve", headers={"Origin": "https://evil.example"}).status_code
    plugins = client.get("/api/v2/plugins", headers=auth).json()
    out["external_views"] = [v for p in plugins.get("plugins", []) for v in p.get("external_views", [])]
    print("RESULT " + json.dumps(out))
    """
)


def test_plugin_routes_need_airflow_login(tmp_path):
    siaga_db = f"sqlite:///{tmp_path / 'siaga.db'}"
    store.migrate(siaga_db)
    with store.session_scope(siaga_db) as session:  # one incident so the list has a link to check
        from datetime import datetime, timezone
        from siaga.store import Incident

        now = datetime(2025, 1, 14, tzinfo=timezone.utc)
        session.add(Incident(hazard="flood", level="village", area_code="51.08.06.2001", area_name="Kalibukbuk",
                             state="open", severity="low", opened_at=now, last_activity_at=now))
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "no_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret-for-siaga-plugin-auth",
        "SIAGA_DB_URL": siaga_db,
        "SIAGA_PUBLIC_CAP": "1",  # the opt-in public feed: the one route without a login
        "SIAGA_SLACK_TOKEN": "",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", None)
    (home / "passwords.json").write_text(json.dumps({"admin": "admin"}))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["anonymous"] == 401
    assert out["anonymous_incident"] == 401
    assert out["anonymous_export"] == 401
    assert out["token_status"] == 201
    assert out["with_token"] == 200
    assert out["links_under_prefix"]
    assert out["bad_token"] in (401, 403)  # Airflow answers 403 "invalid JWT" for a forged token
    assert out["with_cookie"] == 200
    assert out["anonymous_action"] == 401 and out["anonymous_private_feed"] == 401
    assert out["anonymous_public_feed"] == 200  # SIAGA_PUBLIC_CAP=1: readable by CAP aggregators without a login
    assert out["anonymous_public_doc"] == 404  # the incident was never acknowledged: not published
    # the signed-in Airflow user acknowledges from the page; the timeline names them
    assert out["action_status"] == 303 and out["action_location"] == "/siaga/incidents/1?done=acknowledge&result=ok#actions"
    assert out["cross_site_action"] == 403
    with store.session_scope(siaga_db) as session:
        from siaga.store import IncidentEvent

        (ack,) = session.query(IncidentEvent).filter_by(kind="acknowledged").all()
        assert ack.actor == "admin"
    assert any(v.get("href") == "/siaga/" and v.get("name") == "Siaga incidents" for v in out["external_views"]), out["external_views"]
