"""The FastAPI application: thin routes over `InterestService`, scoped API keys, rate and size limits, metrics, the page."""

# No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
import math
import threading
import time
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest)
from starlette.routing import Match

from arborec import __version__
from arborec.diagnostics import ArborecError, DuplicateItemError, UnknownItemError, logger
from arborec.serve import schemas
from arborec.serve.applier import EventProcessStopped
from arborec.serve.security import KeyRing, Scope
from arborec.serve.reads_first import ReadsFirst
from arborec.serve.service import InterestService
from arborec.serve.slates import PolicyRecommendations, add_slate_routes
from arborec.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
DOCS_STATIC = "/static-docs"  # Swagger UI and ReDoc assets, served from the fastapi-offline package (no CDN)
UserId = Annotated[str, PathParam(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@~+=-]+$")]


def _errors(*codes: int) -> dict:
    what = {401: "no API key", 403: "wrong API key, or a key without the scope", 404: "not found",
            409: "item already present", 413: "request too large", 422: "invalid request (the message says where)",
            429: "too many requests (Retry-After says when to retry)",
            503: "the event process stopped with this batch in flight: send it again (Retry-After)"}
    return {code: {"model": schemas.ErrorOut, "description": what[code]} for code in codes}


_EVENT_FORMS = ("EventBatch", "EventIn")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token (for Prometheus)")


# -- who is calling, and what they may do ---------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    """The client of a request: the scopes of its key (none without one), the key's id, its address."""

    scopes: frozenset
    key_id: str | None
    address: str


class _Access:
    """The keys and rate limits of one application."""

    def __init__(self, settings: ServeSettings):
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.keys = KeyRing(settings.key_hashes())
        self.public_reads = settings.public_reads
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_key = parse_many(settings.rate_limit)
        self.per_address = parse_many(settings.anonymous_rate_limit)

    def limit(self, caller: Caller) -> None:
        """Count one request of ``caller`` (by key, or by address without one); 429 past the limit."""
        who, limits = (f"key:{caller.key_id}", self.per_key) if caller.key_id else \
            (f"address:{caller.address}", self.per_address)
        for item in limits:
            if not self.limiter.hit(item, who):
                reset = self.limiter.get_window_stats(item, who).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise HTTPException(429, f"rate limit {item} exceeded: retry in {wait} s",
                                    headers={"Retry-After": str(wait)})


def _caller(request: Request, key: Annotated[str | None, Security(_api_key_header)] = None,
            bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> Caller:
    presented = key or (bearer.credentials if bearer is not None else None)
    address = request.client.host if request.client is not None else "unknown"
    if not presented:
        return Caller(frozenset(), None, address)
    access: _Access = request.app.state.access
    if not len(access.keys):
        raise HTTPException(403, "no API key is configured on this server")
    scopes, key_id = access.keys.scopes_of(presented)
    if key_id is None:
        access.limit(Caller(frozenset(), None, address))  # guessing keys counts toward the address's limit
        raise HTTPException(403, "invalid API key")
    return Caller(scopes, key_id, address)


class _Needs:
    """Dependency: the caller's key holds ``scope`` (401 without a key, 403 without the scope; ``None``: any
    caller, and ``read`` too when public reads are on); then the request counts toward its rate limit."""

    def __init__(self, scope: Scope | None):
        self.scope = scope

    def __call__(self, request: Request, caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        access: _Access = request.app.state.access
        open_route = self.scope is None or (self.scope is Scope.read and access.public_reads)
        if not open_route:
            if caller.key_id is None:
                raise HTTPException(401, f"this endpoint needs an API key with the {self.scope.value} scope "
                                         "(header X-API-Key)", headers={"WWW-Authenticate": "Bearer"})
            if self.scope not in caller.scopes:
                raise HTTPException(403, f"this API key lacks the {self.scope.value} scope")
        access.limit(caller)
        return caller


Reader = Annotated[Caller, Depends(_Needs(Scope.read))]  # per-user reads
Writer = Annotated[Caller, Depends(_Needs(Scope.write))]  # events and items
Admin = Annotated[Caller, Depends(_Needs(Scope.admin))]  # forget, export, segments' representatives
MetricsReader = Annotated[Caller, Depends(_Needs(Scope.metrics))]
Anyone = Annotated[Caller, Depends(_Needs(None))]  # no key needed (rate-limited by address)


def create_app(service: InterestService, settings: ServeSettings | None = None) -> FastAPI:
    """The application serving ``service``; ``settings`` gives the key hashes, the limits and retention."""
    settings = settings or service.settings
    metrics = _Metrics(service)
    app = FastAPI(title="arborec", version=__version__, docs_url=None, redoc_url=None,  # /docs, /redoc below: offline
                  lifespan=_retention_lifespan(service, settings),
                  description="Real-time hierarchical user interests: ingest events, get explained "
                              "recommendations, inspect interest profiles and user segments. Every route but "
                              "/health and /segments needs an API key with its scope (read, write, admin, "
                              "metrics).")
    app.state.service = service
    app.state.access = _Access(settings)
    if settings.public_reads:
        logger.warning("public_reads is on: anyone can read any user's interests and recommendations without a "
                       "key (for demos only)")
    if not settings.has_keys:
        logger.warning("no API key is configured: only /health and /segments can be used")

    # -- errors: 4xx with a message, never a stack trace -------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        found = exc.errors()
        # a body that is one event or a batch: report against the form that was sent only
        if any(len(e.get("loc", ())) > 1 and e["loc"][1] in _EVENT_FORMS for e in found):
            body = getattr(exc, "body", None)
            sent = "EventBatch" if isinstance(body, dict) and "events" in body else "EventIn"
            found = [{**e, "loc": (e["loc"][0], *e["loc"][2:])} for e in found
                     if len(e.get("loc", ())) < 2 or e["loc"][1] == sent]
        errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                  for e in found][:20]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(UnknownItemError)
    async def _unknown_item(request: Request, exc: UnknownItemError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DuplicateItemError)
    async def _duplicate(request: Request, exc: DuplicateItemError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(EventProcessStopped)
    async def _event_process_stopped(request: Request, exc: EventProcessStopped):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(ArborecError)
    async def _arborec(request: Request, exc: ArborecError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)

    # -- routes ---------------------------------------------------------------------------------
    @app.post("/events", response_model=schemas.EventsAccepted, responses=_errors(401, 403, 413, 422, 429, 503),
              summary="ingest one event or a batch; durable and applied when acknowledged (write scope)")
    def post_events(caller: Writer, body: schemas.EventBatch | schemas.EventIn) -> schemas.EventsAccepted:
        received = time.perf_counter()
        events = body.events if isinstance(body, schemas.EventBatch) else [body]
        if len(events) > settings.max_batch:
            raise HTTPException(413, f"at most {settings.max_batch} events per request, got {len(events)}")
        users = service.ingest(events)
        metrics.events.inc(len(events))
        metrics.event_lag.observe(time.perf_counter() - received)
        return schemas.EventsAccepted(accepted=len(events), users=users)

    @app.get("/users/{user_id}/recommendations", response_model=PolicyRecommendations,
             responses=_errors(401, 403, 422, 429),
             summary="top-k items with the interest each serves; cold-start answer for unknown users (read scope)")
    def get_recommendations(
        caller: Reader,
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="number of items")] = 10,
        explain: Annotated[bool, Query(description="add the interest path and a reason to each item")] = True,
        diverse: Annotated[bool, Query(description="spread the list across top-level interests")] = False,
        interest: Annotated[str | None, Query(min_length=1, max_length=500,
                                              description="cold start: a stated interest in words")] = None,
        segment: Annotated[int | None, Query(ge=0, description="cold start: popular items of this segment")] = None,
        policy: Annotated[str, Query(pattern="^(model|slate)$", description="model: greedy by score; slate: the "
                                     "interest-aware policy (logged, with propensities and a request_id for "
                                     "POST /feedback)")] = "model",
    ):
        if segment is not None and segment >= service.n_segments:
            raise HTTPException(422, f"segment={segment} does not exist: there are {service.n_segments} "
                                     "segments (see GET /segments)")
        if policy == "slate" and interest is None and segment is None:
            return app.state.slates.recommend(user_id, k=k, explain=explain)
        # a plain dict: validated once, by response_model
        return service.recommend(user_id, k=k, explain=explain, diverse=diverse, interest=interest, segment=segment)

    add_slate_routes(app, service, Depends(_Needs(Scope.write)))  # POST /feedback (write scope); app.state.slates

    @app.get("/users/{user_id}/interests", response_model=schemas.Interests, responses=_errors(401, 403, 422, 429),
             summary="the user's hierarchical interest profile, long and short term (read scope)")
    def get_interests(caller: Reader, user_id: UserId):
        return service.interests(user_id)

    @app.delete("/users/{user_id}", response_model=schemas.Forgotten, responses=_errors(401, 403, 422, 429),
                summary="forget a user: events, state, profile, segment membership; a tombstone keeps them "
                        "out of restarts and later fits (admin scope)")
    def delete_user(caller: Admin, user_id: UserId):
        forgotten = service.forget(user_id)
        forgotten["slates_deleted"] = app.state.slates.forget(user_id)
        metrics.forgotten.inc()
        return forgotten

    @app.get("/users/{user_id}/export", response_model=schemas.UserExport, responses=_errors(401, 403, 422, 429),
             summary="everything held about a user, as JSON (admin scope)")
    def export_user(caller: Admin, user_id: UserId):
        return {**service.export(user_id), "slates": app.state.slates.logged(user_id)}

    @app.get("/users/{user_id}/recent", response_model=schemas.RecentEvents, responses=_errors(401, 403, 422, 429),
             summary="the user's most recent items, newest first (read scope)")
    def get_recent(caller: Reader, user_id: UserId,
                   limit: Annotated[int, Query(ge=1, le=50, description="number of items")] = 10):
        return service.recent_items(user_id, limit)

    @app.get("/items/search", response_model=schemas.ItemSearch, responses=_errors(401, 403, 422, 429),
             summary="find items by title or id (case-insensitive substring), most used first (read scope)")
    def get_item_search(caller: Reader,
                        q: Annotated[str, Query(min_length=1, max_length=200, description="text to find")],
                        limit: Annotated[int, Query(ge=1, le=50, description="number of items")] = 10):
        return service.search_items(q, limit)

    @app.post("/items", response_model=schemas.ItemsAdded, responses=_errors(401, 403, 409, 413, 422, 429),
              summary="add items: encoded, placed in the tree, recommendable at once (write scope)")
    def post_items(caller: Writer, body: schemas.ItemBatch) -> schemas.ItemsAdded:
        added = service.add_items(body.items)
        return schemas.ItemsAdded(added=len(added), items=added)

    @app.get("/segments", response_model=schemas.Segments, responses=_errors(403, 429),
             summary="user segments: label, size, top interests, popular items; representative users only "
                     "with the admin scope")
    def get_segments(caller: Anyone):
        return service.segments(representatives=Scope.admin in caller.scopes)

    @app.get("/health", response_model=schemas.Health, summary="liveness and store status")
    def get_health() -> schemas.Health:
        return schemas.Health(**service.health())

    @app.get("/metrics", response_class=Response, responses=_errors(401, 403, 429),
             summary="Prometheus metrics (metrics scope; the key may come as a bearer token)")
    def get_metrics(caller: MetricsReader) -> Response:
        metrics.refresh()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- documentation pages, their scripts and styles served from here (they work offline) ----------
    def _root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no swagger.io badge

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png", with_google_fonts=False)
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"  # ReDoc's own logo is fetched from its CDN
        return page

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(_plotly_js(), media_type="application/javascript")

    app.mount(DOCS_STATIC, StaticFiles(directory=_docs_assets()), name="static-docs")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    service.store.on_commit = metrics.observe_commit
    app.add_middleware(_Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics, routes=app.router.routes,
                       reads=service.reads)
    return app


def _retention_lifespan(service: InterestService, settings: ServeSettings):
    """A lifespan running the retention pass at start and every ``retention_every_s`` (when retention is set)."""
    @asynccontextmanager
    async def lifespan(app):
        if settings.retention_days is None:
            yield
            return
        stop = threading.Event()

        def loop():
            while True:
                try:
                    service.apply_retention()
                except Exception:  # noqa: BLE001 - logged; the next pass retries
                    logger.exception("retention pass failed")
                if stop.wait(settings.retention_every_s):
                    return
        thread = threading.Thread(target=loop, name="arborec-retention", daemon=True)
        thread.start()
        yield
        stop.set()
    return lifespan


class _Metrics:
    """The Prometheus metrics of one application (its own registry, so several apps can coexist)."""

    def __init__(self, service: InterestService):
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter("arborec_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("arborec_http_request_seconds", "time to answer a request", ["method", "route"],
                                 buckets=(.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5), registry=self.registry)
        self.events = Counter("arborec_events", "events ingested", registry=self.registry)
        self.items = Gauge("arborec_items", "items in the catalogue", registry=self.registry)
        self.users = Gauge("arborec_users_in_memory", "users whose state is held in memory", registry=self.registry)
        self.evicted = Gauge("arborec_users_evicted", "users evicted from memory since start (reloaded on demand)",
                             registry=self.registry)
        self.in_flight = Gauge("arborec_http_requests_in_flight", "requests being answered", registry=self.registry)
        self.event_lag = Histogram("arborec_event_apply_seconds", "events: from the request's arrival to stored "
                                   "and applied", buckets=(.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5),
                                   registry=self.registry)
        self.commit = Histogram("arborec_store_commit_seconds", "store: time to commit a batch of events",
                                buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1), registry=self.registry)
        self.commit_errors = Counter("arborec_store_commit_errors", "store: failed event commits",
                                     registry=self.registry)
        self.forgotten = Counter("arborec_users_forgotten", "users deleted through the API", registry=self.registry)
        self.event_process = None if service.applier is None else Gauge(
            "arborec_event_process_up", "1 while events are stored and applied by the event process, 0 once it has "
            "stopped (events then applied in the serving process)", registry=self.registry)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, cpu seconds, open fds...
        PlatformCollector(registry=self.registry)

    def observe_commit(self, seconds: float, ok: bool) -> None:
        self.commit.observe(seconds)
        if not ok:
            self.commit_errors.inc()

    def refresh(self) -> None:
        self.items.set(self.service.catalog.n_items)
        self.users.set(self.service.n_users_live)
        self.evicted.set(self.service.n_users_evicted)
        if self.event_process is not None:
            self.event_process.set(0 if self.service.applier.failed else 1)


class _Guard:
    """ASGI wrapper: refuses bodies over ``max_body_bytes`` (413), records request metrics, and announces each
    per-user GET to ``reads`` from its arrival (event application gives way to it, see `ReadsFirst`)."""

    def __init__(self, app, max_body_bytes: int, metrics: _Metrics, routes: list, reads: ReadsFirst):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.routes = routes
        self.reads = reads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.metrics.in_flight.inc()
        try:
            per_user_read = scope["method"] == "GET" and scope["path"].startswith("/users/")  # not pages, assets
            with self.reads.reading() if per_user_read else nullcontext():
                await self._guarded(scope, receive, send)
        finally:
            self.metrics.in_flight.dec()

    async def _guarded(self, scope, receive, send):
        start = time.perf_counter()
        status = {"code": 500}
        limit = self.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._refuse(scope, send, start, limit)
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # no declared length (chunked): read the body here, up to the limit, then replay it
            chunks, seen, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                if seen > limit:
                    return await self._refuse(scope, send, start, limit)
                more = message.get("more_body", False)
            body, original, replayed = b"".join(chunks), receive, False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await original()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            receive = replay

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                # the time spent in the service until the answer starts (W3C Server-Timing): what a client's
                # own figure has on top of it is the network, queues and the client itself
                elapsed_ms = (time.perf_counter() - start) * 1000.0
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={elapsed_ms:.3f}".encode())]}
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._record(scope, status["code"], start)

    async def _refuse(self, scope, send, start, limit):
        body = f'{{"detail": "request body larger than {limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self._record(scope, 413, start)

    def _route(self, scope) -> str:
        """The route template of a request refused before routing (so 413s are labelled by route)."""
        for route in self.routes:
            if route.matches(scope)[0] == Match.FULL:
                return getattr(route, "path", "unmatched")
        return "unmatched"

    def _record(self, scope, status: int, start: float) -> None:
        route = getattr(scope.get("route"), "path", None) or self._route(scope)
        self.metrics.requests.labels(scope["method"], route, str(status)).inc()
        self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - start)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _docs_assets() -> Path:
    """The folder of Swagger UI's and ReDoc's scripts and styles (shipped by the fastapi-offline package)."""
    try:
        import fastapi_offline
    except ImportError:
        raise ImportError("the service's /docs page needs the fastapi-offline package (in the serve extra): "
                          "pip install fastapi-offline") from None
    return Path(fastapi_offline.__file__).parent / "static"
