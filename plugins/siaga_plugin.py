"""Airflow plugin: Siaga's incident pages inside Airflow's UI, behind Airflow's login.

A FastAPI app mounted by a plugin gets no authentication from Airflow by itself, so the app is
built with Airflow's own view-access dependency on every route: without a session cookie or a
Bearer token each page answers 401. The one exception is the public CAP feed under
`/siaga/public/`, which exists only when the agency turns it on (`SIAGA_PUBLIC_CAP=1`, see
`siaga.settings.public_cap`) and carries only what it chose to publish.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from siaga import settings
from siaga.timelines.web import create_app
from siaga.vocabulary import PAGES_PREFIX

URL_PREFIX = PAGES_PREFIX

app = create_app(require_airflow_auth=True, public_cap=settings.public_cap())


class SiagaPlugin(AirflowPlugin):
    name = "siaga"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Siaga"}]
    external_views = [
        {
            "name": "Siaga incidents",
            "href": URL_PREFIX + "/",
            "url_route": "siaga",
            "destination": "nav",
            "category": "browse",
        }
    ]
