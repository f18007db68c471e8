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
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from siaga import settings
from siaga.hazard_config import Hazard
from siaga.links import safe_url
from siaga.settings import PublicCap
from siaga.sources.schema import check_string
from siaga.store import Incident, session_scope, utcnow
from siaga.timelines.cap import cap_feed, cap_xml, feed_reports, publishes
from siaga.timelines.chart import build_chart
from siaga.timelines.filters import Filters, filtered_incidents, placement_counts, weekly_counts
from siaga.timelines.formats import FORMATS, render
from siaga.timelines.labels import HazardsInForce, hazard_labels
from siaga.timelines.overview import build_daily, build_overview
from siaga.timelines.pages import environment, render_page
from siaga.timelines.places import Places, load_places
from siaga.timelines.report import IncidentReport, read_report, reports_for
from siaga.timelines.svgmap import build_map
from siaga.vocabulary import CLOSED_STATES, LIVE_STATES, LOCAL_TZ, STATES, TRANSITIONS


def single_valued(request: Request) -> None:
    """A 400 for a query parameter given more than once: the pages read one value (the last),
    so "?hazard=flood&hazard=fire" listed only fires, silently, where the person asked for both."""
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    repeated = [key for key, n in seen.items() if n > 1]
    if repeated:
        shown = repeated[0] if len(repeated[0]) <= 40 else repeated[0][:40] + "…"
        raise HTTPException(status_code=400, detail=f"bad query parameter: {shown!r} given {seen[repeated[0]]} times; give it once")


router = APIRouter(dependencies=[Depends(single_valued)])
public_router = APIRouter(prefix="/public", dependencies=[Depends(single_valued)])
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
    actions: Any = None  # slackactions.ActionContext for the page's buttons; None: built on first use


# The incident page's buttons: the URL's name -> the state it asks for. The same three decisions
# as the Slack buttons (`slackactions.ACTION_STATES`), made by the same function.
PAGE_ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved", "false-alarm": "false_alarm"}
ACTION_RESULTS = ("ok", "unchanged", "refused")
MAX_NOTE = 1000  # characters of a note, as the timeline keeps them (`incidents.transition`)
# Evidence rows on an incident's page: a long flood cites tens of thousands of posts, and a page
# of 50,000 rows was 15 MB of HTML that took seconds to draw; the latest are shown, all of them
# are in the GeoJSON download (the map and the counts still cover every post).
MAX_PAGE_POSTS = 500
# Rows of the incident list: years of incidents were megabytes of HTML; the newest are listed,
# the counts, maps and charts above still cover every incident, the CSV download lists them all.
MAX_LIST_ROWS = 500


def current_actor() -> str:
    """Who is acting: replaced per app by `create_app` (Airflow's signed-in user, or the fixed
    name a development app was given). Without either, nobody may act."""
    raise HTTPException(status_code=403, detail="bad request: actions need a signed-in user")


def create_app(db_url: str | None = None, require_airflow_auth: bool = False, hazards: HazardsInForce | None = None,
               public_cap: PublicCap | None = None, actor: str | None = None, actions: Any = None) -> FastAPI:
    """The pages. `db_url=None` reads `settings.database_url()` per request, so importing the
    plugin never touches a database. `require_airflow_auth` adds Airflow's login check to every
    route but the public feed's (only possible inside an Airflow installation). `hazards` reads
    the hazard lists in force (default: a reader of this app's own; apps may share one, as tests
    do, since a read takes seconds). `public_cap` (from `settings.public_cap()`) opens the public
    CAP feed; None leaves it out of the app altogether. Who acts from the incident page is
    Airflow's signed-in user with `require_airflow_auth`, else `actor` (a development or test
    app; without one, nobody can act). `actions` is the `slackactions.ActionContext` the page's
    buttons use (default: this store, config/routing.yaml, and Slack when credentials exist)."""
    app = FastAPI(title="Siaga incidents", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = _Site(db_url, hazards or HazardsInForce(), environment(), public_cap, actions)
    if require_airflow_auth:
        app.dependency_overrides[current_actor] = _airflow_actor()
    elif actor:
        app.dependency_overrides[current_actor] = lambda: actor
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.middleware("http")(_no_sniffing)
    app.include_router(router, dependencies=_airflow_login() if require_airflow_auth else [])
    if public_cap is not None:
        app.include_router(public_router)
    return app


async def _no_sniffing(request: Request, call_next: Any) -> Response:
    """Every answer, errors and downloads included, says `X-Content-Type-Options: nosniff`: a
    CSV or feed holds post text, and a browser that guessed it to be HTML would run it. What is
    not a page (a download, a feed opened in a tab, an error) gets the strictest policy: it
    never needs to run or fetch anything."""
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", NOTHING_ALLOWED)
    return response


NOTHING_ALLOWED = "default-src 'none'; frame-ancestors 'none'; sandbox"


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    """A parameter FastAPI could not read (an id that is not a number or beyond 64 bits) is the
    caller's mistake: 400 naming the parameter, not FastAPI's 422 with the input echoed back."""
    problems = []
    for error in getattr(exc, "errors", lambda: [])():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("path", "query"))
        problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": "bad parameter: " + "; ".join(problems or ["invalid request"])}, status_code=400)


def _airflow_actor() -> Any:
    """A dependency giving the signed-in Airflow user's name."""
    from airflow.api_fastapi.core_api.security import get_user

    def actor(user: Any = Depends(get_user)) -> str:
        return str(user.get_name())

    return actor


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
    places = load_places()
    with session_scope(site.db_url) as session:
        hazards = site.hazards(session)
        _known(filters, session, hazards, places)
        incidents = filtered_incidents(session, filters)
        placement = placement_counts(session, start, end)
        session.expunge_all()
    weeks, rows = weekly_counts(incidents)
    districts = sorted(d.name for d in places.districts.values())
    first = start.astimezone(LOCAL_TZ).date() if start else None
    last = (end - timedelta(seconds=1)).astimezone(LOCAL_TZ).date() if end else None
    if first and not last:
        last = max([first] + [i.opened_at.astimezone(LOCAL_TZ).date() for i in incidents])
    if last and not first and incidents:
        first = min(i.opened_at.astimezone(LOCAL_TZ).date() for i in incidents)
    daily = build_daily(incidents, first, last, labels={h: l[0] for h, l in hazard_labels(hazards).items()})
    return _page(request, "list.html", hazards, incidents=incidents, listed=incidents[:MAX_LIST_ROWS], filters=filters, weeks=weeks, week_rows=rows,
                 placement=placement, districts=districts, states=STATES, overview=build_overview(incidents, places), daily=daily,
                 filtered=any(getattr(filters, f) for f in ("hazard", "kecamatan", "village", "road", "state", "date_from", "date_to")))


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int = IncidentId, done: str = "", result: str = "") -> HTMLResponse:
    """One incident: facts, map, chart, timeline, Slack messages, evidence, and the buttons a
    person may press now. `done`/`result` come from an action's redirect; anything else in them
    is ignored."""
    site, places = _site(request), load_places()
    with session_scope(site.db_url) as session:
        report = read_report(session, incident_id, places)
        if report is None:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
        hazards = site.hazards(session)
        session.expunge_all()
    inc = report.incident
    allowed = [(name, state) for name, state in PAGE_ACTIONS.items() if state in TRANSITIONS.get(inc.state, ())]
    banner = None
    if done in PAGE_ACTIONS and result in ACTION_RESULTS:
        state = PAGE_ACTIONS[done]
        who = next((e.actor for e in reversed(report.events) if e.kind == state), "")
        banner = (result, state, who)
    return _page(request, "incident.html", hazards, r=report, inc=inc, map=build_map(report, places), chart=build_chart(report),
                 allowed_actions=allowed, banner=banner, shown_posts=report.posts[-MAX_PAGE_POSTS:])


@router.post("/incidents/{incident_id}/actions/{action}")
async def incident_action(request: Request, incident_id: int = IncidentId, action: str = Path(max_length=20),
                          actor: str = Depends(current_actor)) -> Response:
    """Acknowledge, resolve or mark a false alarm from the incident page: refused unless the
    form came from this site (`_same_origin`), then made exactly as a Slack button makes it
    (`slackactions.decide`: the timeline event, the "resolved" reply queued, the Slack messages
    edited when Slack is configured), and answered with a redirect back to the page (303)."""
    if action not in PAGE_ACTIONS:
        raise HTTPException(status_code=400, detail=f"bad parameter: action: use one of {', '.join(PAGE_ACTIONS)}")
    _same_origin(request)
    form = await request.form(max_files=0, max_fields=4)
    note = str(form.get("note") or "").strip()[:MAX_NOTE] or None
    if note is not None:
        try:
            check_string(note, "note", MAX_NOTE)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"bad form field: {exc}") from None
    with session_scope(_site(request).db_url) as session:
        if session.get(Incident, incident_id) is None:
            raise HTTPException(status_code=404, detail=f"no incident {incident_id}")
    from siaga import slackactions

    outcome = await run_in_threadpool(slackactions.decide, _action_context(request), f"page:{action}", incident_id,
                                      PAGE_ACTIONS[action], actor, utcnow(), note)
    result = "refused" if outcome.error else "ok" if outcome.changed else "unchanged"
    base = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(f"{base}/incidents/{incident_id}?done={action}&result={result}#actions", status_code=303)


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
        hazards = site.hazards(session)
        _known(filters, session, hazards, places)
        reports = [r for inc in reversed(filtered_incidents(session, filters)) if (r := read_report(session, inc.id, places))]
        return _download(format, reports, hazards, places, "siaga-incidents")


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


def _action_context(request: Request) -> Any:
    """The app's ActionContext, made on first use: the same store, the routing in force (so a
    closing queues the thread's "resolved" reply, as from Slack) and Slack when credentials are
    configured (to edit the alert); without Slack credentials the messages are not edited."""
    site = _site(request)
    if site.actions is None:
        from siaga.routing import Router
        from siaga.slackactions import ActionContext
        from siaga.slackclient import SlackConfigError, make_client

        from siaga.config_errors import ConfigError

        try:
            client = make_client()
        except SlackConfigError:
            client = None
        try:
            with session_scope(site.db_url) as session:  # a refused edit leaves the last good file in force
                router = Router.in_force(session, settings.config_dir() / "routing.yaml")
        except ConfigError as exc:
            # no good version was ever kept: the deployment's file, not the person's request; a
            # 503 saying what to fix (not kept, so the next action reads the file again once it
            # is fixed)
            raise HTTPException(status_code=503, detail=f"the routing config cannot be used, nothing was recorded: "
                                                        f"{str(exc).splitlines()[0][:300]} (run `siaga check`)") from None
        site.actions = ActionContext(client=client, db_url=site.db_url, router=router)
    return site.actions


def _same_origin(request: Request) -> None:
    """Refuse (403) a form posted from another site: the browser's Sec-Fetch-Site must not say
    cross-site, and its Origin (else Referer) must be this host (as the browser addressed it) or
    the configured base URL. A browser always sends one of them with a form; a request with
    neither is refused, not guessed about."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise HTTPException(status_code=403, detail=f"bad request: cross-site form (Sec-Fetch-Site: {fetch_site[:20]})")
    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    try:
        origin = urlsplit(claimed)
    except ValueError:
        origin = urlsplit("")
    host = request.headers.get("host", "")
    base = _base_url()
    allowed = {host} | ({urlsplit(base).netloc} if base else set())
    if not origin.netloc or origin.scheme not in ("http", "https") or origin.netloc not in allowed:
        raise HTTPException(status_code=403, detail="bad request: the form did not come from this site (Origin/Referer)")


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


def _known(filters: Filters, session: Session, hazards: dict[str, Hazard], places: Places) -> None:
    """A 400 naming the hazard or kecamatan no list and no incident knows (`Filters.check_names`)."""
    try:
        filters.check_names(session, hazards, places)
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
