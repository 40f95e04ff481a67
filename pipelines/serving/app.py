"""The prediction API: FastAPI over the registry's champion (and challenger during an A/B test).

Endpoints: POST /predict (one row object or a list of rows), POST /explain (one row; a multi-class
model's predicted class, or the one ``?class=NAME`` names), GET /health
(liveness: 200 while the process runs, with the served and registry versions and the last poll's
error), GET /ready (readiness: 200 only while the champion served is the version the registry's
alias names, else 503 and why), GET /model, and FastAPI's /docs and /openapi.json (the request
schema there is the served model's signature at start-up). Every GET answers HEAD too.

Bodies are read by the endpoints themselves, so that a body that is not ``application/json`` gets
a 415, one over ``serving.max_body_bytes`` a 413 before it is parsed, one still arriving after
``serving.body_timeout_s`` a 408, malformed or over-nested JSON a 400, a list longer than
``serving.max_rows_per_request`` a 413, and rows are validated against the schema of the version
being served right now (it may change under a running service): a 422 whose ``detail`` lists each
problem with its ``loc`` (row index and field name), like FastAPI's own validation. Values are
strict (``model.request_model``): NaN, Infinity, numbers beyond int64 or float64, ``true`` for a
number, ``"40"`` for a number and lone surrogates are all 422s naming their field; an integer
``unit_id`` is answered and logged as text. Then the data contract of the model's dataset, per
``serving.contract_policy``: ``reject`` (a 422 naming field and rule), ``flag`` (the default: scored,
and the prediction and its logged row carry the violations) or ``off``. A row the model itself
cannot score (its pipeline raises, or the probability is not finite) is a 422 naming the row, the
same alone or in any batch. Nothing a request holds yields a 5xx; an unexpected error is a 500 JSON
with a request id logged with the traceback, and ``Connection: close``.

Small requests on the fast path are answered on the event loop; bigger ones are parsed, validated
and scored in a worker thread, one batch at a time, so single rows keep flowing next to them.
Browsers are kept out unless asked for: no CORS origin is allowed by default (``serving.cors_origins``),
and a Host header other than a loopback name, ``serving.host`` or ``serving.allowed_hosts`` gets a
400 (DNS rebinding).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pipelines.config import Settings
from pipelines.constants import CHALLENGER, CHAMPION
from pipelines.lake import Lake
from pipelines.serving import ab, predlog
from pipelines.serving.bodies import check_contract, echo, parse_body, read_body, row_loc, validate_rows
from pipelines.serving.model import (
    FAST_MAX_ROWS,
    ROW_ERRORS,
    UNIT_ID,
    UnscorableRows,
)
from pipelines.serving.store import ModelStore

log = logging.getLogger(__name__)


class Service:
    """What the app holds while it runs: the model store, the prediction log and the settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        cfg = settings.serving
        self.ab_on = bool(cfg.ab.experiment)
        aliases = (CHAMPION, CHALLENGER) if self.ab_on else (CHAMPION,)
        self.store = ModelStore(settings.mlflow.tracking_uri, cfg.model, aliases, cfg.reload_interval_s)
        self.log = predlog.PredictionLogger(
            Lake(settings.lake_root),
            cfg.model,
            cfg.log_batch_rows,
            cfg.log_flush_interval_s,
            durability=cfg.log_durability,  # rows are journaled before the answer: see predlog
            journal_dir=settings.state_dir / predlog.JOURNAL_DIR,
        )
        self.started_at = datetime.now(UTC)
        # Timestamps of logged predictions. The demo's replay sets it to the simulated day, so the
        # daily monitoring DAG sees each replayed day's traffic on that day.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def start(self) -> None:
        if CHAMPION not in self.store.models:  # serve() loads before uvicorn starts, to fail with a clear message
            self.store.load(required=(CHAMPION,))
        self.store.start()
        self.log.start()

    def stop(self) -> None:
        self.store.stop()
        self.log.close()

    def route(self, unit_id: str) -> str:
        """The alias serving this unit: the champion, or the A/B test's arm when one runs."""
        if not self.ab_on or CHALLENGER not in self.store.models:
            return CHAMPION
        return ab.assign(self.settings.serving.ab.experiment, unit_id, self.settings.serving.ab.challenger_fraction)


_INLINE_BYTES = 32 * 1024  # smaller bodies on the fast path are answered on the event loop (a thread hop costs more)
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
VIOLATIONS = "_contract_violations"  # logged column: the contract rules a flagged row broke ("; "-joined), else null
# The request body in the OpenAPI schema: JSON read by the endpoint itself (``bodies.read_body``).
_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}}
_CLASS_PARAM = {
    "name": "class",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "a multi-class model: the class whose probability to explain (default: the predicted one)",
}


class _ServerErrors:
    """The last line: an unexpected error becomes a 500 JSON with a request id (the traceback is logged under
    it) and ``Connection: close``, so a keep-alive client reconnects instead of meeting a reset connection."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            request_id = uuid.uuid4().hex
            log.exception("serving: unexpected error on %s %s (request %s)", scope["method"], scope["path"], request_id)
            if started:  # half a response is out: only closing the connection is left (uvicorn does)
                raise
            detail = f"internal error: quote request id {request_id} to the operator (the server log has it)"
            body = json.dumps({"detail": detail, "request_id": request_id}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 500, "headers": [*headers, (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})


def _json(content: dict) -> Response:
    """A JSON response of plain JSON types, without FastAPI's per-field encoding pass."""
    return Response(json.dumps(content, allow_nan=False, separators=(",", ":")), media_type="application/json")


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    service = service or Service(settings)
    cfg = settings.serving

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title=f"{cfg.model} prediction API",
        description=(
            f"Serves `models:/{cfg.model}@champion`"
            + (f" and `@challenger` (A/B test `{cfg.ab.experiment}`)" if cfg.ab.experiment else "")
            + ". Send one row object or a list of rows with every feature of GET /model; "
            "`unit_id` (optional) routes A/B tests and joins labels later."
        ),
        lifespan=lifespan,
    )
    app.state.service = service

    def _body_schema(many: bool) -> dict:
        """OpenAPI request body: one row (or a list of rows), from the champion's signature (when loaded)."""
        served = service.store.models.get(CHAMPION)
        if served is None:
            return {"type": "object"}
        row = served.request_model.model_json_schema(by_alias=True)
        return {"anyOf": [row, {"type": "array", "items": row}]} if many else row

    def get(path: str, **kwargs):
        """A GET route that answers HEAD too (uptime checks and load balancers probe with HEAD), HEAD kept out of
        the OpenAPI schema."""

        def register(endpoint):
            app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)
            return app.get(path, **kwargs)(endpoint)

        return register

    @get("/health")
    def health():
        """Liveness: 200 while the process runs, with the served and registry versions and the last poll's error."""
        models = service.store.models
        return {
            "status": "ok" if CHAMPION in models else "no model",
            "models": {alias: m.version for alias, m in models.items()},
            **service.store.status(),  # registry, polled_at, poll_error, registry_unreachable_since, load_failures
            "reloads": service.store.reloads,
            **service.log.stats(),  # log_backlog, log_rows_written, log_rows_dead_lettered, log_last_error, ...
            "started_at": service.started_at.isoformat(),
        }

    @get("/ready")
    def ready():
        """Readiness: 200 when the champion is loaded and is the version the registry names now, else 503 and why."""
        reason = service.store.readiness(CHAMPION)
        body = {
            "ready": reason is None,
            "reason": reason,
            "models": {alias: m.version for alias, m in service.store.models.items()},
            **service.store.status(),
        }
        return JSONResponse(body, status_code=200 if reason is None else 503)

    @get("/model")
    def model_info():
        models = service.store.models
        out = models[CHAMPION].describe()
        out["ab_test"] = (
            {
                "experiment": cfg.ab.experiment,
                "challenger_fraction": cfg.ab.challenger_fraction,
                "challenger_version": models[CHALLENGER].version if CHALLENGER in models else None,
            }
            if service.ab_on
            else None
        )
        out["contract_policy"] = cfg.contract_policy
        return out

    batches = anyio.CapacityLimiter(1)  # big batches score one at a time, off the event loop: single rows keep flowing

    def answer(payload, models: dict) -> Response:
        """Validate, route, check the contract, score, log: one request's work (on the loop or in a thread)."""
        rows, is_list = validate_rows(models[CHAMPION], payload, cfg.max_rows_per_request)
        request_id = uuid.uuid4().hex
        now = service.clock()
        units, aliases = [], []
        for i, row in enumerate(rows):
            unit = row.get(UNIT_ID)
            units.append(str(unit) if unit is not None else f"{request_id}:{i}")
            arm = service.route(units[-1])
            aliases.append(arm if arm in models else CHAMPION)
        if CHALLENGER in aliases:  # the challenger validates its own schema
            validate_rows(
                models[CHALLENGER], [r for r, a in zip(rows, aliases, strict=True) if a == CHALLENGER], len(rows)
            )
        violations = check_contract(models, rows, aliases, cfg.contract_policy, is_list)
        proba = [0.0] * len(rows)
        for alias in dict.fromkeys(aliases):
            idx = [i for i, a in enumerate(aliases) if a == alias]
            try:
                scored = models[alias].predict([rows[i] for i in idx])
            except UnscorableRows as exc:
                problems = [
                    {"loc": row_loc(idx[j], is_list), "msg": m, "type": "unscorable"} for j, m in exc.problems.items()
                ]
                raise HTTPException(422, problems) from None
            for i, p in zip(idx, scored, strict=True):
                proba[i] = p
        out, logged = [], []
        for row, unit, alias, scores, broken in zip(rows, units, aliases, proba, violations, strict=True):
            m = models[alias]
            # binary: P(positive); multi-class: every class's probability, "probability" the top class's
            p = float(scores) if m.classes is None else float(max(scores))
            out.append({"probability": p, "model": m.name, "version": m.version, "alias": alias, "arm": alias})
            if m.classes is not None:
                out[-1]["probabilities"] = {c: float(v) for c, v in zip(m.classes, scores, strict=True)}
            out[-1]["unit_id"] = unit
            out[-1]["violations"] = broken
            features = {c: row.get(c) for c in m.features}
            logged.append(
                {
                    predlog.REQUEST_ID: request_id,
                    predlog.TS: now,
                    predlog.MODEL: m.name,
                    predlog.VERSION: m.version,
                    predlog.ALIAS: alias,
                    predlog.ARM: alias,
                    predlog.UNIT_ID: unit,
                    predlog.PROBABILITY: p,
                    VIOLATIONS: "; ".join(f"{v['field']}: {v['msg']}" for v in broken) or None,
                    **features,
                }
            )
        service.log.log(logged)
        return _json({"request_id": request_id, "predictions": out if is_list else out[:1]})

    @app.post(
        "/predict",
        openapi_extra=_JSON_BODY,
        summary="P(class 1) for one row or a list of rows",
    )
    async def predict(request: Request):
        body = await read_body(request, cfg)
        models = service.store.models  # one snapshot for the whole request
        if len(body) <= _INLINE_BYTES and all(m.fast is not None for m in models.values()):
            payload = parse_body(body)
            if not isinstance(payload, list) or len(payload) <= FAST_MAX_ROWS:
                return answer(payload, models)  # microseconds on the fast path: a thread hop would cost more
            return await anyio.to_thread.run_sync(answer, payload, models, limiter=batches)
        return await anyio.to_thread.run_sync(lambda: answer(parse_body(body), models), limiter=batches)

    @app.post(
        "/explain",
        openapi_extra={**_JSON_BODY, "parameters": [_CLASS_PARAM]},
        summary="SHAP contributions per raw feature for one row (the champion's explainer)",
    )
    async def explain_row(request: Request):
        from pipelines.serving.model import ModelNotFound
        from pipelines.training import explain

        body = await read_body(request, cfg)
        payload = parse_body(body) if len(body) <= _INLINE_BYTES else await run_in_threadpool(parse_body, body)
        served = service.store.models[CHAMPION]
        rows, _ = validate_rows(served, payload, 1, many_ok=False)
        [violations] = check_contract({CHAMPION: served}, rows, [CHAMPION], cfg.contract_policy, False)

        wanted = request.query_params.get("class")
        if wanted is not None and wanted not in (served.classes or []):
            msg = (
                f"{served.name} v{served.version} is a binary model: it explains P(positive), no class to name"
                if served.classes is None
                else f"unknown class {echo(wanted)!r}; the model's classes: {', '.join(served.classes)}"
            )
            raise HTTPException(422, [{"loc": ["query", "class"], "msg": msg, "type": "value_error"}])

        def run() -> dict:
            k = None
            if served.classes is not None:  # one class's probability against the rest: named, else the predicted one
                k = served.classes.index(wanted) if wanted else int(served.predict_pipeline(rows)[0].argmax())
            explainer = served.explainer(
                settings.mlflow.tracking_uri, permutations=cfg.explain_permutations, seed=settings.seed, k=k
            )
            result = explain.explain_one(explainer, served.frame(rows))
            return result if k is None else {"class": served.classes[k], **result}

        try:
            result = await run_in_threadpool(run)
        except ModelNotFound as exc:
            raise HTTPException(409, str(exc)) from None
        except ROW_ERRORS as exc:
            msg = f"the explainer cannot explain this row: {type(exc).__name__}: {echo(str(exc))}"
            raise HTTPException(422, [{"loc": ["body"], "msg": msg, "type": "unscorable"}]) from None
        numbers = [result["base_value"], result["output"], result["probability"], *result["contributions"].values()]
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in numbers):
            msg = "the explainer gave no finite contributions for this row (values too extreme for the model)"
            raise HTTPException(422, [{"loc": ["body"], "msg": msg, "type": "unscorable"}])
        out = {"model": served.name, "version": served.version, "alias": CHAMPION, **result}
        return _json({**out, "violations": violations})

    original_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = original_openapi()
            for path, many in (("/predict", True), ("/explain", False)):
                body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
                body["schema"] = _body_schema(many)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        body = json.dumps({"detail": exc.detail})  # ASCII escapes: any text a detail quotes renders
        return Response(body, status_code=exc.status_code, headers=exc.headers, media_type="application/json")

    # Outermost first: Host check, then CORS, then the last-line 500 (inside them, so its answer passes both).
    app.add_middleware(_ServerErrors)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cfg.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
    )
    hosts = [*_LOOPBACK, cfg.host, *cfg.allowed_hosts]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(dict.fromkeys(hosts)), www_redirect=False)

    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Run the API on uvicorn until interrupted (the prediction log is flushed on shutdown)."""
    import os
    from dataclasses import replace

    import uvicorn

    from pipelines.serving.model import SERVICE_MLFLOW_ENV

    if host:  # the address bound is a name clients may send as Host: the Host check allows it
        settings = replace(settings, serving=replace(settings.serving, host=host))
    service = Service(settings)
    added = {key: value for key, value in SERVICE_MLFLOW_ENV.items() if key not in os.environ}
    os.environ.update(added)  # for the service only: put back as found when it ends
    try:
        # Raises a DataError naming the model, version, URI and cause (ModelNotFound, ModelUnavailable,
        # RegistryUnreachable) before the port is bound.
        service.store.load(required=(CHAMPION,))
        uvicorn.run(
            create_app(settings, service),
            host=host or settings.serving.host,
            port=port or settings.serving.port,
            log_level="info",
            timeout_keep_alive=settings.serving.keep_alive_timeout_s,
        )
    finally:
        for key in added:
            os.environ.pop(key, None)
    return 0
