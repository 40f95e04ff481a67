"""The recommendation DAG's steps: prepare (data checks + parent MLflow run), evaluate one model (a
nested MLflow run each), the leaderboard, register the best ranking model (MLflow registry, alias
``champion`` when it passes the gate) and publish every user's top-n to gold.

Every step takes and returns small JSON-able dicts, so Airflow passes them through XCom.
"""

from __future__ import annotations

import math

from pipelines.config import Settings, load_settings
from pipelines.constants import GOLD, ITEM_ID, USER_ID
from pipelines.lake import Lake
from pipelines.recommendation import data as rdata
from pipelines.recommendation.data import RecommendationDataError
from pipelines.recommendation.evaluate import Protocol
from pipelines.registry import Policy, log_decision, register_and_promote
from pipelines.tracking import log_frame

EXPERIMENT = "recommendation"
DEFAULTS = {"ds": "", "models": [], "cv_folds": 5, "max_epochs": 0, "top_n": 10}


def _ctx(settings: Settings | None) -> tuple[Settings, Lake]:
    settings = settings or load_settings()
    return settings, Lake(settings.lake_root)


def leaderboard_dataset(ratings: str) -> str:
    return f"{ratings}_reco_leaderboard"


def recommendations_dataset(ratings: str) -> str:
    return f"{ratings}_recommendations"


def protocol(context: dict) -> Protocol:
    p = context["protocol"]
    return Protocol(
        folds=int(context["params"]["cv_folds"]),
        test_fraction=float(p["test_fraction"]),
        k=int(p["k"]),
        liked_min_rating=float(p["liked_min_rating"]),
        seed=int(context["seed"]),
    )


def _data(context: dict, settings: Settings, lake: Lake) -> rdata.RecommendationData:
    return rdata.load(lake, settings.recommendation, context["ds"])


def skip_reason(settings: Settings, events: list[dict]) -> str | None:
    """Why an Asset-triggered run has nothing to do: its gold events are all for other datasets."""
    cfg = settings.recommendation
    ours = {cfg.ratings, cfg.items, cfg.users} - {""}
    if events and not any(e.get("dataset") in ours for e in events):
        others = sorted({str(e.get("dataset")) for e in events})
        return f"gold event(s) for {others} only; this DAG recommends from {cfg.ratings!r} (recommendation.ratings)"
    return None


def resolve_ds(settings: Settings, lake: Lake, wanted: str, events: list[dict], logical_ds: str | None) -> str:
    """The form's date, else the latest triggering gold event of our datasets, else the logical date, else the latest gold."""
    from pipelines.lake import run_date

    cfg = settings.recommendation
    ours = [cfg.ratings, *sorted({cfg.items, cfg.users} - {""})]
    ds = run_date(lake, ours, wanted, events, logical_ds)
    if ds is None:
        raise RecommendationDataError(
            f"no gold partitions for ratings dataset {cfg.ratings!r}; run the features DAG with dataset={cfg.ratings} first"
        )
    return ds


def check_params(params: dict) -> dict:
    """The DAG form's values with defaults filled in; a bad value fails at once, naming it."""
    from pipelines.recommendation import models

    params = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
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
    import mlflow

    from pipelines.tracking import find_or_create_run

    settings, lake = _ctx(settings)
    events = list(events)
    reason = skip_reason(settings, events)
    if reason:
        return {"skip": reason}
    params = check_params(params)
    cfg = settings.recommendation
    ds = resolve_ds(settings, lake, params.get("ds") or "", events, logical_ds)
    data = rdata.load(lake, cfg, ds)
    context = {
        "dataset": cfg.ratings,
        "ds": ds,
        "params": params,
        "seed": settings.seed,
        "protocol": {"test_fraction": cfg.test_fraction, "k": cfg.k, "liked_min_rating": cfg.liked_min_rating},
    }
    if len(data.ratings) < int(params["cv_folds"]):
        raise RecommendationDataError(f"{len(data.ratings)} ratings cannot be cut into {params['cv_folds']} folds")
    tags = {"dag_id": dag_id, "airflow_run_id": airflow_run_id, "dataset": cfg.ratings, "ds": ds}
    parent = find_or_create_run(settings, EXPERIMENT, f"{cfg.ratings} {ds}", tags)
    with mlflow.start_run(run_id=parent):
        mlflow.set_tags({"gold_content_hash": data.content_hash, "role": "parent"})
        mlflow.log_params({k: str(v) for k, v in {**params, **protocol(context).as_params()}.items()})
        mlflow.log_dict(data.summary(), "data_summary.json")
    return {
        **context,
        "parent_run_id": parent,
        "gold_content_hash": data.content_hash,
        "airflow_run_id": airflow_run_id,
        "dag_id": dag_id,
    }


def evaluate_model(context: dict, name: str, settings: Settings | None = None) -> dict:
    """Both protocols for one model, logged as a nested MLflow run; a failure becomes a leaderboard row."""
    from pipelines.recommendation import models
    from pipelines.recommendation.evaluate import evaluate

    settings, lake = _ctx(settings)
    data = _data(context, settings, lake)
    spec = models.get(name)
    p = context["params"]
    result = evaluate(
        name,
        spec.family,
        spec.tasks,
        lambda: models.build(name, context["seed"], int(p["max_epochs"])),
        data.ratings,
        protocol(context),
    )
    record = {**result.record(), "ndcg_curve": result.curve.get("ndcg", [])}
    record["mlflow_run_id"] = _log_evaluation(settings, context, result)
    return record


def _log_evaluation(settings: Settings, context: dict, result) -> str:
    import mlflow
    import pandas as pd

    from pipelines.recommendation import plots
    from pipelines.tracking import find_or_create_run

    tags = {
        "airflow_run_id": context["airflow_run_id"],
        "model": result.name,
        "dataset": context["dataset"],
        "ds": context["ds"],
    }
    run_id = find_or_create_run(settings, EXPERIMENT, result.name, tags, parent_run_id=context["parent_run_id"])
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"family": result.family, "status": result.status})
        mlflow.log_params({"model": result.name, **{k: str(v) for k, v in protocol(context).as_params().items()}})
        if result.status != "ok":
            mlflow.set_tag("failure_reason", result.reason)
            mlflow.end_run(status="FAILED")
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
            mlflow.log_figure(plots.learning_curve(history, result.name), "plots/learning_curve.png")
    return run_id


def leaderboard(context: dict, records: list[dict], settings: Settings | None = None) -> dict:
    """Rank the models by NDCG@k (failures last, with their reason); gold table and parent-run artifacts."""
    import mlflow
    import pandas as pd
    import pyarrow as pa

    from pipelines.recommendation import plots

    settings, lake = _ctx(settings)
    k = int(context["protocol"]["k"])
    ndcg = f"ndcg_at_{k}"
    rows = [r for r in records if r]
    curves = {r["model"]: r.pop("ndcg_curve") for r in rows if r.get("ndcg_curve")}
    for r in rows:
        r.pop("ndcg_curve", None)
    board = pd.DataFrame(rows)
    for col in (ndcg, "rmse"):
        if col not in board:
            board[col] = float("nan")
    board["_ok"] = board["status"].eq("ok")
    board = board.sort_values(["_ok", ndcg], ascending=[False, False]).drop(columns="_ok").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    manifest = lake.write_partition(
        GOLD,
        leaderboard_dataset(context["dataset"]),
        context["ds"],
        pa.Table.from_pandas(board, preserve_index=False),
        {"parent_run_id": context["parent_run_id"], "ranked_by": ndcg},
    )
    ok = board[board["status"] == "ok"]
    best = ok.iloc[0] if len(ok) else None
    rated = ok.dropna(subset=["rmse"]).sort_values("rmse")
    best_rating = rated.iloc[0] if len(rated) else None
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(board, "leaderboard.json")
        mlflow.log_text(board.to_csv(index=False), "leaderboard.csv")
        if len(ok):
            mlflow.log_figure(plots.leaderboard(board, k), "plots/leaderboard.png")
            mlflow.log_figure(plots.ndcg_curves(curves), "plots/ndcg_at_k.png")
            mlflow.log_metrics({f"best_{ndcg}": float(best[ndcg])})
            mlflow.set_tag("best_ranking_model", best["model"])
        if best_rating is not None:
            mlflow.log_metrics({"best_rmse": float(best_rating["rmse"])})
            mlflow.set_tag("best_rating_model", best_rating["model"])
        mlflow.set_tag("failed_models", ",".join(board.loc[board["status"] != "ok", "model"]) or "none")
    return {
        "uri": manifest["uri"],
        "models": len(board),
        "failed": board.loc[board["status"] != "ok", ["model", "reason"]].to_dict("records"),
        "best_model": None if best is None else best["model"],
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


def register(context: dict, board: dict, settings: Settings | None = None) -> dict:
    """Refit the best ranking model on all ratings, log it as a pyfunc on the parent run, register it and set its alias.

    Safe to retry: the parent run keeps one version and its decision (``pipelines.registry``); a
    retry neither refits nor logs the model again.
    """
    import mlflow

    from pipelines.recommendation import models, pyfunc

    settings, lake = _ctx(settings)
    name = board.get("best_model")
    if not name:
        raise RecommendationDataError(f"no model finished, nothing to register; failures: {board.get('failed')}")
    cfg = settings.recommendation
    k = int(context["protocol"]["k"])
    uri = settings.mlflow.tracking_uri

    def fit_and_log() -> str:
        data = _data(context, settings, lake)
        model = models.build(name, context["seed"], int(context["params"]["max_epochs"]))
        model.fit(data.ratings[[USER_ID, ITEM_ID]], data.ratings["rating"].to_numpy())
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=context["parent_run_id"]):
            return pyfunc.log(model, int(context["params"]["top_n"]), data.all_users[:5]).model_uri

    decision = register_and_promote(
        uri,
        cfg.registered_model,
        policy(settings, k),
        context["parent_run_id"],
        fit_and_log,
        score=float(board[f"best_ndcg_at_{k}"]),
        tags={
            "model": name,
            "dataset": context["dataset"],
            "ds": context["ds"],
            "airflow_run_id": context["airflow_run_id"],
            "gold_content_hash": context["gold_content_hash"],
        },
    )
    log_decision(uri, context["parent_run_id"], decision)
    return {**decision.record(), "model": name, "model_uri": f"models:/{cfg.registered_model}/{decision.version}"}


def publish(context: dict, registered: dict, settings: Settings | None = None) -> dict:
    """Every user's top-n from the registered pyfunc (as people will call it), written to gold."""
    import mlflow
    import pandas as pd
    import pyarrow as pa

    settings, lake = _ctx(settings)
    data = _data(context, settings, lake)
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(registered["model_uri"])
    n = int(context["params"]["top_n"])
    top = model.predict(pd.DataFrame({USER_ID: data.all_users}), params={"n": n})
    if data.items is not None and rdata.TITLE in data.items:
        top = top.merge(data.items[[ITEM_ID, rdata.TITLE]], on=ITEM_ID, how="left")
    top = top.sort_values([USER_ID, "rank"], kind="stable").reset_index(drop=True)
    manifest = lake.write_partition(
        GOLD,
        recommendations_dataset(context["dataset"]),
        context["ds"],
        pa.Table.from_pandas(top, preserve_index=False),
        {
            "model_uri": registered["model_uri"],
            "model": registered["model"],
            "top_n": n,
            "users": int(len(data.all_users)),
            "users_given_popular_items": int(top.loc[top["source"] == "popular", USER_ID].nunique()),
            "ratings_content_hash": context["gold_content_hash"],
        },
    )
    return {
        "dataset": recommendations_dataset(context["dataset"]),
        "ds": context["ds"],
        "uri": manifest["uri"],
        "rows": manifest["rows"],
        "users": manifest["users"],
        "users_given_popular_items": manifest["users_given_popular_items"],
        "content_hash": manifest["content_hash"],
    }


def run(ds: str, params: dict | None = None, settings: Settings | None = None) -> dict:
    """The whole DAG in this process (CLI, tests, benchmarks): same steps, one after another."""
    import uuid

    settings = settings or load_settings()
    context = prepare({**(params or {}), "ds": ds}, "cli", f"cli-{uuid.uuid4().hex[:12]}", settings=settings)
    records = [evaluate_model(context, name, settings) for name in context["params"]["models"]]
    board = leaderboard(context, records, settings)
    registered = register(context, board, settings)
    return {"leaderboard": board, "registered": registered, "published": publish(context, registered, settings)}
