"""The recommendation DAG's steps: prepare (data checks + parent MLflow run), evaluate one model (a
nested MLflow run each), the leaderboard, register the best ranking model (MLflow registry, alias
``champion`` when it passes the gate) and publish every user's top-n to gold.

Every step takes and returns small JSON-able dicts (a ``pipelines.steps.RunContext`` as XCom), so
Airflow passes them between tasks; the scaffolding (runs, figures, leaderboard) is ``pipelines.steps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipelines import steps
from pipelines.config import Settings
from pipelines.constants import GOLD, ITEM_ID, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation import data as rdata
from pipelines.recommendation.data import RecommendationDataError
from pipelines.recommendation.evaluate import Protocol
from pipelines.registry import Policy, log_decision, register_and_promote
from pipelines.steps import RunContext, fail, log_figure, nested_run, parent_run
from pipelines.tracking import log_frame

Context = Mapping[str, Any] | RunContext  # what a task receives: the XCom dict, or a context in-process

EXPERIMENT = "recommendation"
DEFAULTS = {"ds": "", "dataset": "", "models": [], "cv_folds": 5, "max_epochs": 0, "top_n": 10}


def leaderboard_dataset(ratings: str) -> str:
    return f"{ratings}_reco_leaderboard"


def recommendations_dataset(ratings: str) -> str:
    return f"{ratings}_recommendations"


def protocol(ctx: RunContext) -> Protocol:
    p = ctx.extra["protocol"]
    return Protocol(
        folds=int(ctx.params["cv_folds"]),
        test_fraction=float(p["test_fraction"]),
        k=int(p["k"]),
        liked_min_rating=float(p["liked_min_rating"]),
        seed=int(ctx.seed),
    )


def _data(ctx: RunContext) -> rdata.RecommendationData:
    return rdata.load(ctx.lake, rdata.for_dataset(ctx.settings, ctx.dataset), ctx.ds)


def choose_dataset(settings: Settings, events: list[dict], wanted: str = "") -> str | None:
    """The ratings dataset of a run: the form's, else ``recommendation.ratings`` (by hand, or on a gold
    event of it or of its item/user table), else a dataset added with ``--kind ratings`` whose gold
    triggered the run; None when the events are all for other datasets."""
    cfg = settings.recommendation
    if wanted or not events:
        return wanted or cfg.ratings
    names = {str(e.get("dataset")) for e in events}
    if names & ({cfg.ratings, cfg.items, cfg.users} - {""}):
        return cfg.ratings
    own = sorted(n for n in names if n in settings.datasets and settings.datasets[n].kind == "ratings")
    return own[0] if own else None


def skip_reason(settings: Settings, events: list[dict], wanted: str = "") -> str | None:
    """Why an Asset-triggered run has nothing to do: its gold events are all for other datasets."""
    if choose_dataset(settings, events, wanted) is None:
        others = sorted({str(e.get("dataset")) for e in events})
        return (
            f"gold event(s) for {others} only; this DAG recommends from {settings.recommendation.ratings!r} "
            "(recommendation.ratings) or a dataset added with --kind ratings"
        )
    return None


def resolve_ds(
    settings: Settings, lake: Lake, wanted: str, events: list[dict], logical_ds: str | None, dataset: str = ""
) -> str:
    """The form's date, else the latest triggering gold event of our datasets, else the logical date, else the latest gold."""
    cfg = rdata.for_dataset(settings, dataset)
    ours = [cfg.ratings, *sorted({cfg.items, cfg.users} - {""})]
    hint = f"run the features DAG with dataset={cfg.ratings} first"
    return steps.resolve_ds(lake, ours, wanted, events, logical_ds, error=RecommendationDataError, hint=hint)


def check_params(params: dict) -> dict:
    """The DAG form's values with defaults filled in; a bad value fails at once, naming it."""
    from pipelines.recommendation import models

    params = steps.fill(params, **DEFAULTS)  # an empty Param takes the default (dataset: see choose_dataset)
    names = list(params["models"]) or list(models.MODELS)
    for name in names:
        try:
            models.get(name)
        except ValueError as exc:
            raise RecommendationDataError(str(exc)) from None
    params["models"] = names
    for key, low in (("cv_folds", 2), ("top_n", 1), ("max_epochs", 0)):
        if int(params[key]) < low:
            raise RecommendationDataError(f"{key} must be at least {low}, got {params[key]}")
    return params


def prepare(
    params: dict,
    dag_id: str,
    airflow_run_id: str,
    events: list[dict] = (),
    logical_ds: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Check the data and open the DAG run's parent MLflow run; ``{"skip": reason}`` when there is nothing to do."""
    ctx = RunContext.create(settings=settings, dag_id=dag_id, airflow_run_id=airflow_run_id)
    settings = ctx.settings
    events = list(events)
    reason = skip_reason(settings, events, params.get("dataset") or "")
    if reason:
        return {"skip": reason}
    params = check_params(params)
    cfg = rdata.for_dataset(settings, choose_dataset(settings, events, params["dataset"]))
    ds = resolve_ds(settings, ctx.lake, params.get("ds") or "", events, logical_ds, cfg.ratings)
    data = rdata.load(ctx.lake, cfg, ds)
    ctx = ctx.with_(
        dataset=cfg.ratings,
        ds=ds,
        params=params,
        protocol={"test_fraction": cfg.test_fraction, "k": cfg.k, "liked_min_rating": cfg.liked_min_rating},
    )
    if len(data.ratings) < int(params["cv_folds"]):
        raise RecommendationDataError(f"{len(data.ratings)} ratings cannot be cut into {params['cv_folds']} folds")
    logged = {**params, **protocol(ctx).as_params()}
    ctx = steps.open_parent(ctx, EXPERIMENT, gold_content_hash=data.content_hash, params=logged, summary=data.summary())
    return ctx.to_xcom()


def evaluate_model(context: Context, name: str, settings: Settings | None = None) -> dict:
    """Both protocols for one model, logged as a nested MLflow run; a failure becomes a leaderboard row."""
    from pipelines.recommendation import models
    from pipelines.recommendation.evaluate import evaluate

    ctx = RunContext.from_xcom(context, settings)
    data = _data(ctx)
    spec = models.get(name)
    result = evaluate(
        name,
        spec.family,
        spec.tasks,
        lambda: models.build(name, ctx.seed, int(ctx.params["max_epochs"])),
        data.ratings,
        protocol(ctx),
    )
    record = {**result.record(), "ndcg_curve": result.curve.get("ndcg", [])}
    record["mlflow_run_id"] = _log_evaluation(ctx, result)
    return record


def _log_evaluation(ctx: RunContext, result) -> str:
    import mlflow
    import pandas as pd

    from pipelines.recommendation import plots

    with nested_run(ctx, EXPERIMENT, result.name, {"model": result.name}) as run_id:
        mlflow.set_tags({"family": result.family, "status": result.status})
        mlflow.log_params({"model": result.name, **steps.param_strings(protocol(ctx).as_params())})
        if result.status != "ok":
            fail(result.reason)
            return run_id
        model = result.model
        mlflow.log_params({f"model.{k}": str(v)[:250] for k, v in sorted(model.get_params().items())})
        mlflow.log_metrics(
            {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        )
        if result.curve:
            mlflow.log_dict(result.curve, "ndcg_at_k.json")
        history = getattr(model, "history_", None)
        if history:
            log_frame(pd.DataFrame(history), "history.json")
            log_figure(plots.learning_curve(history, result.name), "plots/learning_curve.png")
    return run_id


def leaderboard(context: Context, records: list[dict], settings: Settings | None = None) -> dict:
    """Rank the models by NDCG@k (failures last, with their reason); gold table and parent-run artifacts."""
    import mlflow

    from pipelines.recommendation import plots

    ctx = RunContext.from_xcom(context, settings)
    k = int(ctx.extra["protocol"]["k"])
    ndcg = f"ndcg_at_{k}"
    rows = [dict(r) for r in records if r]
    curves = {r["model"]: r["ndcg_curve"] for r in rows if r.get("ndcg_curve")}
    for r in rows:
        r.pop("ndcg_curve", None)
    board = steps.rank(rows, [ndcg], key="model")
    if "rmse" not in board.table:
        board.table["rmse"] = float("nan")
    manifest = steps.leaderboard.write(ctx, board, leaderboard_dataset(ctx.dataset), ranked_by=ndcg)
    ok, best = board.ok, board.best
    rated = ok.dropna(subset=["rmse"]).sort_values("rmse")
    best_rating = rated.iloc[0] if len(rated) else None
    with parent_run(ctx):
        steps.leaderboard.log(board)
        if best is not None:
            log_figure(plots.leaderboard(board.table, k), "plots/leaderboard.png")
            log_figure(plots.ndcg_curves(curves), "plots/ndcg_at_k.png")
            mlflow.log_metrics({f"best_{ndcg}": float(best[ndcg])})
            mlflow.set_tag("best_ranking_model", best["model"])
        if best_rating is not None:
            mlflow.log_metrics({"best_rmse": float(best_rating["rmse"])})
            mlflow.set_tag("best_rating_model", best_rating["model"])
    return {
        "uri": manifest["uri"],
        "models": len(board.table),
        "failed": board.failed,
        "best_model": board.best_value("model"),
        f"best_{ndcg}": None if best is None else float(best[ndcg]),
        "best_rating_model": None if best_rating is None else best_rating["model"],
        "best_rmse": None if best_rating is None else float(best_rating["rmse"]),
    }


def policy(settings: Settings, k: int) -> Policy:
    """NDCG@k of at least ``recommendation.promotion_min_ndcg`` and above the champion's for the
    champion alias; a model below the gate is still registered, as challenger (``publish`` reads it)."""
    return Policy(
        f"ndcg_at_{k}", higher_is_better=True, gate=settings.recommendation.promotion_min_ndcg, register_failing=True
    )


def register(context: Context, board: dict, settings: Settings | None = None) -> dict:
    """Refit the best ranking model on all ratings, log it as a pyfunc on the parent run, register it and set its alias.

    Safe to retry: the parent run keeps one version and its decision (``pipelines.registry``); a
    retry neither refits nor logs the model again.
    """
    from pipelines.recommendation import models, pyfunc

    ctx = RunContext.from_xcom(context, settings)
    name = board.get("best_model")
    if not name:
        raise RecommendationDataError(f"no model finished, nothing to register; failures: {board.get('failed')}")
    cfg = rdata.for_dataset(ctx.settings, ctx.dataset)
    k = int(ctx.extra["protocol"]["k"])
    uri = ctx.settings.mlflow.tracking_uri

    def fit_and_log() -> str:
        data = _data(ctx)
        model = models.build(name, ctx.seed, int(ctx.params["max_epochs"]))
        model.fit(data.ratings[[USER_ID, ITEM_ID]], data.ratings["rating"].to_numpy())
        with parent_run(ctx):
            return pyfunc.log(model, int(ctx.params["top_n"]), data.all_users[:5]).model_uri

    decision = register_and_promote(
        uri,
        cfg.registered_model,
        policy(ctx.settings, k),
        str(ctx.parent_run_id),
        fit_and_log,
        score=float(board[f"best_ndcg_at_{k}"]),
        tags=ctx.lineage_tags(model=name),
    )
    log_decision(uri, str(ctx.parent_run_id), decision)
    return {**decision.record(), "model": name, "model_uri": f"models:/{cfg.registered_model}/{decision.version}"}


def publish(context: Context, registered: dict, settings: Settings | None = None) -> dict:
    """Every user's top-n from the registered pyfunc (as people will call it), written to gold."""
    import mlflow
    import pandas as pd
    import pyarrow as pa

    ctx = RunContext.from_xcom(context, settings)
    data = _data(ctx)
    mlflow.set_tracking_uri(ctx.settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(registered["model_uri"])
    n = int(ctx.params["top_n"])
    top = model.predict(pd.DataFrame({USER_ID: data.all_users}), params={"n": n})
    if data.items is not None and rdata.TITLE in data.items:
        top = top.merge(data.items[[ITEM_ID, rdata.TITLE]], on=ITEM_ID, how="left")
    top = top.sort_values([USER_ID, "rank"], kind="stable").reset_index(drop=True)
    manifest = ctx.lake.write_partition(
        GOLD,
        recommendations_dataset(ctx.dataset),
        ctx.ds,
        pa.Table.from_pandas(top, preserve_index=False),
        {
            "model_uri": registered["model_uri"],
            "model": registered["model"],
            "top_n": n,
            "users": int(len(data.all_users)),
            "users_given_popular_items": int(top.loc[top["source"] == "popular", USER_ID].nunique()),
            "ratings_content_hash": ctx.gold_content_hash,
        },
    )
    return {
        "dataset": recommendations_dataset(ctx.dataset),
        "ds": ctx.ds,
        "uri": manifest["uri"],
        "rows": manifest["rows"],
        "users": manifest["users"],
        "users_given_popular_items": manifest["users_given_popular_items"],
        "content_hash": manifest["content_hash"],
    }


def run(ds: str, params: dict | None = None, settings: Settings | None = None) -> dict:
    """The whole DAG in this process (CLI, tests, benchmarks): same steps, one after another."""
    import uuid

    context = prepare({**(params or {}), "ds": ds}, "cli", f"cli-{uuid.uuid4().hex[:12]}", settings=settings)
    ctx = RunContext.from_xcom(context, settings)
    records = [evaluate_model(ctx, name) for name in ctx.params["models"]]
    board = leaderboard(ctx, records)
    registered = register(ctx, board)
    return {"leaderboard": board, "registered": registered, "published": publish(ctx, registered)}
