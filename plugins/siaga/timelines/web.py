"""The managers' pages and downloads as a FastAPI app: the incident list, each incident's page,
its exports, and the CAP 1.2 feed of open incidents.

Mounted inside Airflow's UI by `plugins/siaga_plugin.py` (which asks for Airflow's login) and
served on its own in tests. Routes only: reading is in `report` and `filters`, drawing in
`svgmap` and `chart`, writing in `formats` and `cap`, rendering in `pages`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment

from siaga.hazard_config import Hazard
from siaga.store import session_scope
from siaga.timelines.cap import cap_feed, cap_xml
from siaga.timelines.chart import build_chart
from siaga.timelines.filters import Filters, filtered_incidents, placement_counts, weekly_counts
from siaga.timelines.formats import FORMATS, render
from siaga.timelines.labels import HazardsInForce, hazard_labels
from siaga.timelines.pages import environment, render_page
from siaga.timelines.places import Places, load_places
from siaga.timelines.report import IncidentReport, read_report, reports_for
from siaga.timelines.svgmap import build_map
from siaga.vocabulary import LIVE_STATES, STATES

router = APIRouter()
# Ids are 64-bit in the database: a larger one is refused here, not by the driver (OverflowError).
MAX_ID = 2**63 - 1
IncidentId = Path(ge=1, le=MAX_ID, description="an incident's number")


@dataclass
class _Site:
    """What every route needs, made once per app."""

    db_url: str | None  # None: settings.database_url(), resolved per request
    hazards: HazardsInForce
    env: Environment


def create_app(db_url: str | None = None, require_airflow_auth: bool = False, hazards: HazardsInForce | None = None) -> FastAPI:
    """The pages. `db_url=None` reads `settings.database_url()` per request, so importing the
    plugin never touches a database. `require_airflow_auth` adds Airflow's login check to every
    route (only possible inside an Airflow installation). `hazards` reads the hazard lists in
    force (default: a reader of this app's own; apps may share one, as tests do, since a read
    takes seconds)."""
    app = FastAPI(title="Siaga incidents", dependencies=_airflow_login() if require_airflow_auth else [],
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = _Site(db_url, hazards or HazardsInForce(), environment())
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.include_router(router)
    return app


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    """A parameter FastAPI could not read (an id that is not a number or beyond 64 bits) is the
    caller's mistake: 400 naming the parameter, not FastAPI's 422 with the input echoed back."""
    problems = []
    for error in getattr(exc, "errors", lambda: [])():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("path", "query"))
        problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": "bad parameter: " + "; ".join(problems or ["invalid request"])}, status_code=400)


def _airflow_login() -> list[Any]:
    """Airflow's own view-access check: a mounted plugin app gets no authentication by itself."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return [Depends(requires_access_view(AccessView.WEBSITE))]


@router.get("/", response_class=HTMLResponse)
def incident_list(
    request: Request,
    hazard: str = "", kecamatan: str = "", village: str = "", road: str = "", state: str = "",
    date_from: str = Query("", alias="from"), date_to: str = Query("", alias="to"),
) -> HTMLResponse:
    site = _site(request)
    filters = _checked(Filters(hazard, kecamatan, village, road, state, date_from, date_to))
    start, end = filters.period()
    with session_scope(site.db_url) as session:
        incidents = filtered_incidents(session, filters)
        placement = placement_counts(session, start, end)
        hazards = site.hazards(session)
        session.expunge_all()
    weeks, rows = weekly_counts(incidents)
    districts = sorted(d.name for d in load_places().districts.values())
    return _page(request, "list.html", hazards, incidents=incidents, filters=filters, weeks=weeks, week_rows=rows,
                 placement=placement, districts=districts, states=STATES)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int = IncidentId) -> HTMLResponse:
    site, places = _site(request), load_places()
    with session_scope(site.db_url) as session:
        report = read_report(session, incident_id, places)
        if report is None:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
        hazards = site.hazards(session)
        session.expunge_all()
    return _page(request, "incident.html", hazards, r=report, inc=report.incident,
                 map=build_map(report, places), chart=build_chart(report))


@router.get("/incidents/{incident_id}/export")
def incident_export(request: Request, incident_id: int = IncidentId, format: str = "csv") -> Response:
    site, places = _site(request), load_places()
    with session_scope(site.db_url) as session:
        reports = reports_for(session, places, incident_id)
        if not reports:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
        return _download(format, reports, site.hazards(session), places, f"siaga-incident-{incident_id}")


@router.get("/export")
def period_export(request: Request, format: str = "csv", date_from: str = Query("", alias="from"), date_to: str = Query("", alias="to"),
                  hazard: str = "", kecamatan: str = "", village: str = "", road: str = "", state: str = "") -> Response:
    """The listed incidents (same filters as the list), oldest first."""
    site, places = _site(request), load_places()
    filters = _checked(Filters(hazard, kecamatan, village, road, state, date_from, date_to))
    with session_scope(site.db_url) as session:
        reports = [r for inc in reversed(filtered_incidents(session, filters)) if (r := read_report(session, inc.id, places))]
        return _download(format, reports, site.hazards(session), places, "siaga-incidents")


@router.get("/cap.atom")
def cap_atom(request: Request) -> Response:
    """Open incidents as an Atom feed of CAP 1.2 alerts."""
    site, places = _site(request), load_places()
    root = str(request.base_url).rstrip("/")
    with session_scope(site.db_url) as session:
        reports = reports_for(session, places, states=LIVE_STATES)
        xml = cap_feed(reports, site.hazards(session), places, link_for=lambda i: f"{root}/incidents/{i}/cap.xml")
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


@router.get("/incidents/{incident_id}/cap.xml")
def cap_alert(request: Request, incident_id: int = IncidentId) -> Response:
    """One incident's CAP 1.2 alert, linking back to its page."""
    site, places = _site(request), load_places()
    root = str(request.base_url).rstrip("/")
    with session_scope(site.db_url) as session:
        reports = reports_for(session, places, incident_id)
        if not reports:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
        xml = cap_xml(reports[0], site.hazards(session), places, web=f"{root}/incidents/{incident_id}")
    return Response(xml, media_type="application/cap+xml; charset=utf-8")


def _site(request: Request) -> _Site:
    return request.app.state.site


def _checked(filters: Filters) -> Filters:
    """The filters, or a 400 that says which parameter is wrong and why."""
    try:
        return filters.check()
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def _page(request: Request, name: str, hazards: dict[str, Hazard], **context: Any) -> HTMLResponse:
    """A page whose links stay under the prefix Airflow mounted the app at."""
    base = request.scope.get("root_path", "").rstrip("/")
    return render_page(_site(request).env, name, base=base, labels=hazard_labels(hazards), **context)


def _download(fmt: str, reports: list[IncidentReport], hazards: dict[str, Hazard], places: Places, stem: str) -> Response:
    if fmt not in FORMATS:
        shown = fmt if len(fmt) <= 40 else fmt[:40] + "…"
        raise HTTPException(status_code=400, detail=f"bad query parameter: unknown format {shown!r}; use one of {', '.join(FORMATS)}")
    export = FORMATS[fmt]
    return Response(render(fmt, reports, hazards, places), media_type=f"{export.media_type}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{export.extension}"'})
