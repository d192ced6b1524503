"""The FastAPI application: thin routes over `InterestService`, API-key checks, size limits, metrics, the page."""

# No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
import time
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from arborec.diagnostics import ArborecError, DuplicateItemError, UnknownItemError, logger
from arborec.serve import schemas
from arborec.serve.security import key_matches
from arborec.serve.service import InterestService
from arborec.serve.slates import PolicyRecommendations, add_slate_routes
from arborec.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
DOCS_STATIC = "/static-docs"  # Swagger UI and ReDoc assets, served from the fastapi-offline package (no CDN)
UserId = Annotated[str, PathParam(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@~+=-]+$")]


def _errors(*codes: int) -> dict:
    what = {401: "no API key", 403: "wrong API key", 404: "not found", 409: "item already present",
            413: "request too large", 422: "invalid request (the message says where)"}
    return {code: {"model": schemas.ErrorOut, "description": what[code]} for code in codes}


_EVENT_FORMS = ("EventBatch", "EventIn")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the service's API key")
_bearer = HTTPBearer(auto_error=False, description="the API key as a bearer token (for Prometheus)")


def create_app(service: InterestService, settings: ServeSettings | None = None) -> FastAPI:
    """The application serving ``service``; ``settings`` gives the key hash and the limits."""
    settings = settings or service.settings
    app = FastAPI(title="arborec", version="0.1.0", docs_url=None, redoc_url=None,  # /docs, /redoc below: offline
                  description="Real-time hierarchical user interests: ingest events, get explained "
                              "recommendations, inspect interest profiles and user segments. Writes need an API key.")
    app.state.service = service
    metrics = _Metrics(service)

    # -- dependencies ---------------------------------------------------------------------------
    def require_key(key: Annotated[str | None, Security(_api_key_header)] = None,
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> None:
        presented = key or (bearer.credentials if bearer is not None else None)
        if not presented:
            raise HTTPException(401, "this endpoint needs an API key (header X-API-Key)",
                                headers={"WWW-Authenticate": "Bearer"})
        if settings.api_key_hash is None:
            raise HTTPException(403, "no API key is configured on this server: writes are disabled")
        if not key_matches(presented, settings.api_key_hash):
            raise HTTPException(403, "invalid API key")

    Authorised = Depends(require_key)

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

    @app.exception_handler(ArborecError)
    async def _arborec(request: Request, exc: ArborecError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)

    # -- routes ---------------------------------------------------------------------------------
    @app.post("/events", response_model=schemas.EventsAccepted, dependencies=[Authorised],
              responses=_errors(401, 403, 413, 422),
              summary="ingest one event or a batch; durable and applied when acknowledged")
    def post_events(body: schemas.EventBatch | schemas.EventIn) -> schemas.EventsAccepted:
        events = body.events if isinstance(body, schemas.EventBatch) else [body]
        if len(events) > settings.max_batch:
            raise HTTPException(413, f"at most {settings.max_batch} events per request, got {len(events)}")
        users = service.ingest(events)
        metrics.events.inc(len(events))
        return schemas.EventsAccepted(accepted=len(events), users=users)

    @app.get("/users/{user_id}/recommendations", response_model=PolicyRecommendations, responses=_errors(422),
             summary="top-k items with the interest each serves; cold-start answer for unknown users")
    def get_recommendations(
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

    add_slate_routes(app, service, Authorised)  # POST /feedback with the write key; app.state.slates

    @app.get("/users/{user_id}/interests", response_model=schemas.Interests, responses=_errors(422),
             summary="the user's hierarchical interest profile, long and short term")
    def get_interests(user_id: UserId):
        return service.interests(user_id)

    @app.post("/items", response_model=schemas.ItemsAdded, dependencies=[Authorised],
              responses=_errors(401, 403, 409, 413, 422),
              summary="add items: encoded, placed in the tree, recommendable at once")
    def post_items(body: schemas.ItemBatch) -> schemas.ItemsAdded:
        added = service.add_items(body.items)
        return schemas.ItemsAdded(added=len(added), items=added)

    @app.get("/segments", response_model=schemas.Segments,
             summary="user segments: label, size, top interests, representative users, popular items")
    def get_segments():
        return service.segments()

    @app.get("/health", response_model=schemas.Health, summary="liveness and store status")
    def get_health() -> schemas.Health:
        return schemas.Health(**service.health())

    @app.get("/metrics", dependencies=[Authorised], response_class=Response, responses=_errors(401, 403),
             summary="Prometheus metrics (needs the API key, e.g. as a bearer token)")
    def get_metrics() -> Response:
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
    app.add_middleware(_Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    return app


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

    def refresh(self) -> None:
        self.items.set(self.service.catalog.n_items)
        self.users.set(self.service.n_users_live)


class _Guard:
    """ASGI wrapper: refuses bodies over ``max_body_bytes`` (413) and records request metrics."""

    def __init__(self, app, max_body_bytes: int, metrics: _Metrics):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
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

    def _record(self, scope, status: int, start: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
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
