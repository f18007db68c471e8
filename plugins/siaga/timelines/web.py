"""The managers' pages and downloads as a FastAPI app: the incident list, each incident's page,
its exports, and the CAP 1.2 feed of open incidents; when the agency opts in
(`settings.public_cap`), a public, read-only CAP feed under `/public/` that needs no login and
carries only what the agency chose to publish.

Links in feeds come from the configured base URL (`settings.timeline_base_url`), never from the
request's Host header, which any client sets; without one they are relative to the feed, which
readers resolve against the address they fetched it from.

Mounted inside Airflow's UI by `plugins/siaga_plugin.py` (which asks for Airflow's login) and
served on its own in tests. Routes only: reading is in `report` and `filters`, drawing in
`svgmap` and `chart`, writing in `formats` and `cap`, rendering in `pages`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment
from sqlalchemy.orm import Session

from siaga import settings
from siaga.hazard_config import Hazard
from siaga.settings import PublicCap
from siaga.store import session_scope
from siaga.timelines.cap import cap_feed, cap_xml, feed_reports, publishes
from siaga.timelines.display import safe_url
from siaga.timelines.chart import build_chart
from siaga.timelines.filters import Filters, filtered_incidents, placement_counts, weekly_counts
from siaga.timelines.formats import FORMATS, render
from siaga.timelines.labels import HazardsInForce, hazard_labels
from siaga.timelines.pages import environment, render_page
from siaga.timelines.places import Places, load_places
from siaga.timelines.report import IncidentReport, read_report, reports_for
from siaga.timelines.svgmap import build_map
from siaga.store import utcnow
from siaga.vocabulary import CLOSED_STATES, LIVE_STATES, STATES

router = APIRouter()
public_router = APIRouter(prefix="/public")
# Ids are 64-bit in the database: a larger one is refused here, not by the driver (OverflowError).
MAX_ID = 2**63 - 1
IncidentId = Path(ge=1, le=MAX_ID, description="an incident's number")


@dataclass
class _Site:
    """What every route needs, made once per app."""

    db_url: str | None  # None: settings.database_url(), resolved per request
    hazards: HazardsInForce
    env: Environment
    public_cap: PublicCap | None = None  # None: no public feed


def create_app(db_url: str | None = None, require_airflow_auth: bool = False, hazards: HazardsInForce | None = None,
               public_cap: PublicCap | None = None) -> FastAPI:
    """The pages. `db_url=None` reads `settings.database_url()` per request, so importing the
    plugin never touches a database. `require_airflow_auth` adds Airflow's login check to every
    route but the public feed's (only possible inside an Airflow installation). `hazards` reads
    the hazard lists in force (default: a reader of this app's own; apps may share one, as tests
    do, since a read takes seconds). `public_cap` (from `settings.public_cap()`) opens the public
    CAP feed; None leaves it out of the app altogether."""
    app = FastAPI(title="Siaga incidents", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = _Site(db_url, hazards or HazardsInForce(), environment(), public_cap)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.include_router(router, dependencies=_airflow_login() if require_airflow_auth else [])
    if public_cap is not None:
        app.include_router(public_router)
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


CAP_MEDIA = "application/cap+xml; charset=utf-8"
CLOSED_IN_FEED = timedelta(hours=24)  # how long a closed incident's all-clear or Cancel stays in a feed
ATOM_MEDIA = "application/atom+xml; charset=utf-8"


@router.get("/cap.atom")
def cap_atom(request: Request) -> Response:
    """Live incidents (and those closed in the last day, with their all-clear or Cancel) as an
    Atom feed of CAP 1.2 messages, each entry linking to its CAP document under this app."""
    site, places, base = _site(request), load_places(), _base_url()
    now = utcnow()
    with session_scope(site.db_url) as session:
        reports = _feed_reports(session, places, now)
        xml = cap_feed(reports, site.hazards(session), places, now=now, link_for=lambda i: _under(base, f"incidents/{i}/cap.xml"),
                       web_for=lambda i: f"{base}/incidents/{i}" if base else None)
    return Response(xml, media_type=ATOM_MEDIA)


@router.get("/incidents/{incident_id}/cap.xml")
def cap_alert(request: Request, incident_id: int = IncidentId) -> Response:
    """One incident's latest CAP 1.2 message (Alert, Update or Cancel), linking back to its
    page when the base URL is configured."""
    site, places, base = _site(request), load_places(), _base_url()
    with session_scope(site.db_url) as session:
        reports = reports_for(session, places, incident_id)
        if not reports:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
        xml = cap_xml(reports[0], site.hazards(session), places, web=f"{base}/incidents/{incident_id}" if base else None)
    return Response(xml, media_type=CAP_MEDIA)


@public_router.get("/cap.atom")
def public_cap_atom(request: Request) -> Response:
    """The public feed for CAP aggregators: no login, read-only, only the incidents the agency
    publishes (`settings.public_cap`), no author data and no link into the managers' pages."""
    site, places, base = _site(request), load_places(), _base_url()
    now = utcnow()
    with session_scope(site.db_url) as session:
        reports = _feed_reports(session, places, now)
        reports = [r for r in reports if publishes(site.public_cap, r)]
        xml = cap_feed(reports, site.hazards(session), places, now=now, title="Siaga Buleleng: BPBD alerts (CAP 1.2)",
                       link_for=lambda i: _under(base, f"public/incidents/{i}/cap.xml"))
    return Response(xml, media_type=ATOM_MEDIA, headers={"Cache-Control": "public, max-age=60"})


@public_router.get("/incidents/{incident_id}/cap.xml")
def public_cap_alert(request: Request, incident_id: int = IncidentId) -> Response:
    """A published incident's latest CAP message; 404 for any incident the feed does not carry,
    so the public address reveals nothing else."""
    site, places = _site(request), load_places()
    with session_scope(site.db_url) as session:
        reports = reports_for(session, places, incident_id)
        if not reports or not publishes(site.public_cap, reports[0]):
            raise HTTPException(status_code=404, detail=f"no published incident {incident_id}")
        xml = cap_xml(reports[0], site.hazards(session), places)
    return Response(xml, media_type=CAP_MEDIA, headers={"Cache-Control": "public, max-age=60"})


def _feed_reports(session: Session, places: Places, now: datetime) -> list[IncidentReport]:
    """Every live incident, and those closed in the last day (`cap.feed_reports`), oldest first."""
    live = reports_for(session, places, states=LIVE_STATES)
    recent = reports_for(session, places, start=now - CLOSED_IN_FEED, states=CLOSED_STATES)
    return feed_reports(sorted(live + recent, key=lambda r: (r.incident.opened_at, r.incident.id)), now, CLOSED_IN_FEED)


def _base_url() -> str | None:
    """The configured address of these pages (no trailing slash), when it is an http(s) URL."""
    base = safe_url(settings.timeline_base_url())
    return base.rstrip("/") if base else None


def _under(base: str | None, path: str) -> str:
    """`path` under the configured base URL, else relative: a feed reader resolves it against
    the feed's own address, which is under this app whatever prefix Airflow mounted it at."""
    return f"{base}/{path}" if base else path


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
