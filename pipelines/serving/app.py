"""The prediction API: FastAPI over the registry's champion (and challenger during an A/B test).

Endpoints: POST /predict (one row object or a list of rows), POST /explain (one row), GET /health,
GET /model, and FastAPI's /docs and /openapi.json (the request schema there is the served model's
signature at start-up).

Bodies are read by the endpoints themselves, so that a body over ``serving.max_body_bytes`` gets
a 413 before it is parsed, malformed JSON a 400, and rows are validated against the schema of the
version being served right now (it may change under a running service): a 422 whose ``detail``
lists each problem with its ``loc`` (row index and field name), like FastAPI's own validation.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from pipelines.config import Settings
from pipelines.constants import CHALLENGER, CHAMPION
from pipelines.lake import Lake
from pipelines.serving import ab, predlog
from pipelines.serving.model import FAST_MAX_ROWS, UNIT_ID, ModelStore

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
            Lake(settings.lake_root), cfg.model, cfg.log_batch_rows, cfg.log_flush_interval_s
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


async def _read_json(request: Request, limit: int):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body is over the limit of {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"request body is not valid JSON: {exc}") from None


def _validate(served, payload, many_ok: bool = True) -> tuple[list[dict], bool]:
    """Rows validated against the served model's schema (alias keys), and whether a list was sent."""
    from pydantic import ValidationError

    is_list = isinstance(payload, list)
    if is_list and not many_ok:
        raise HTTPException(422, [{"loc": ["body"], "msg": "send one row object, not a list", "type": "type_error"}])
    items = payload if is_list else [payload]
    if is_list and not items:
        raise HTTPException(422, [{"loc": ["body"], "msg": "the list of rows is empty", "type": "value_error"}])
    rows, errors = [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            loc = ["body", i] if is_list else ["body"]
            errors.append({"loc": loc, "msg": "a row must be a JSON object of feature: value", "type": "type_error"})
            continue
        try:
            rows.append(served.request_model.model_validate(item).model_dump(by_alias=True))
        except ValidationError as exc:
            for e in exc.errors(include_url=False, include_context=False):
                loc = ["body", i, *e["loc"]] if is_list else ["body", *e["loc"]]
                errors.append({"loc": loc, "msg": e["msg"], "type": e["type"], "input": _jsonable(e.get("input"))})
    if errors:
        raise HTTPException(422, errors)
    return rows, is_list


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


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

    @app.get("/health")
    def health():
        models = service.store.models
        return {
            "status": "ok" if CHAMPION in models else "no model",
            "models": {alias: m.version for alias, m in models.items()},
            "reloads": service.store.reloads,
            "log_backlog": service.log.backlog,
            "log_rows_written": service.log.rows_written,
            "started_at": service.started_at.isoformat(),
        }

    @app.get("/model")
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
        return out

    @app.post(
        "/predict",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
        summary="P(class 1) for one row or a list of rows",
    )
    async def predict(request: Request):
        payload = await _read_json(request, cfg.max_body_bytes)
        models = service.store.models  # one snapshot for the whole request
        rows, is_list = _validate(models[CHAMPION], payload)
        request_id = uuid.uuid4().hex
        now = service.clock()
        arms = []
        for i, row in enumerate(rows):
            unit = row.get(UNIT_ID)
            unit = str(unit) if unit is not None else f"{request_id}:{i}"
            arm = service.route(unit)
            arms.append((unit, arm if arm in models else CHAMPION))
        if any(arm != CHAMPION for _, arm in arms):  # the challenger validates its own schema
            _validate(models[CHALLENGER], [r for r, (_, a) in zip(rows, arms, strict=True) if a == CHALLENGER])

        def score() -> list[float]:
            proba = [0.0] * len(rows)
            for alias in {a for _, a in arms}:
                idx = [i for i, (_, a) in enumerate(arms) if a == alias]
                for i, p in zip(idx, models[alias].predict([rows[i] for i in idx]), strict=True):
                    proba[i] = float(p)
            return proba

        if len(rows) <= FAST_MAX_ROWS and all(models[a].fast is not None for _, a in arms):
            proba = score()  # microseconds on the fast path: a thread hop would cost more than the work
        else:
            proba = await run_in_threadpool(score)
        out, logged = [], []
        for row, (unit, alias), p in zip(rows, arms, proba, strict=True):
            m = models[alias]
            out.append({"probability": p, "model": m.name, "version": m.version, "alias": alias, "arm": alias})
            out[-1]["unit_id"] = unit
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
                    **features,
                }
            )
        service.log.log(logged)
        return _json({"request_id": request_id, "predictions": out if is_list else out[:1]})

    @app.post(
        "/explain",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
        summary="SHAP contributions per raw feature for one row (the champion's explainer)",
    )
    async def explain_row(request: Request):
        from pipelines.serving.model import ModelNotFound
        from pipelines.training import explain

        payload = await _read_json(request, cfg.max_body_bytes)
        served = service.store.models[CHAMPION]
        rows, _ = _validate(served, payload, many_ok=False)

        def run() -> dict:
            explainer = served.explainer(
                settings.mlflow.tracking_uri, permutations=cfg.explain_permutations, seed=settings.seed
            )
            return explain.explain_one(explainer, served.frame(rows))

        try:
            result = await run_in_threadpool(run)
        except ModelNotFound as exc:
            raise HTTPException(409, str(exc)) from None
        return {"model": served.name, "version": served.version, "alias": CHAMPION, **result}

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
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """Run the API on uvicorn until interrupted (the prediction log is flushed on shutdown)."""
    import uvicorn

    service = Service(settings)
    service.store.load(required=(CHAMPION,))  # raises ModelNotFound (naming model and alias) before binding
    uvicorn.run(
        create_app(settings, service),
        host=host or settings.serving.host,
        port=port or settings.serving.port,
        log_level="info",
    )
    return 0
