"""The forecasting DAG's steps: prepare (series checks + parent MLflow run), backtest one model
(a nested MLflow run with its plots and pyfunc model), and the leaderboard (gold tables, MLflow
artifacts, the best model registered with an alias).

Every step takes and returns small JSON-able dicts, so Airflow passes them through XCom; the
forecasts themselves go through the lake (a staging folder per DAG run, published as gold by
the leaderboard).
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from pipelines.config import Settings, load_settings
from pipelines.constants import GOLD, STAGING
from pipelines.forecasting import combine, models
from pipelines.forecasting.data import ForecastDataError, Series, folds_for, future_covariates, load_series
from pipelines.forecasting.evaluate import Evaluation, RunConfig, evaluate
from pipelines.forecasting.registration import BACKTEST_KEY, backtest_key, policy, register  # noqa: F401
from pipelines.lake import Lake
from pipelines.steps import RunContext, content_hash, open_parent
from pipelines.steps.params import fill
from pipelines.steps.runs import log_figure
from pipelines.tracking import log_frame

EXPERIMENT = "forecasting"
RANK_METRIC = "mase_daily"  # of a daily series; a series at another frequency ranks by mase_<its frequency>


def _ctx(settings: Settings | None) -> tuple[Settings, Lake]:
    settings = settings or load_settings()
    return settings, Lake(settings.lake_root)


def run_params(params: dict, settings: Settings) -> dict:
    """The run's choices: the form's values over ``forecasting`` settings (an empty Param takes the
    setting), checked, naming what is wrong."""
    f = settings.forecasting
    least = {"max_epochs": 1, "patience": 1}  # the other whole numbers: at least 0 (backtest_folds 0: auto)
    whole = {
        "horizon": f.horizon,
        "seq_len": f.seq_len,
        "backtest_folds": f.backtest_folds,
        "backtest_step": f.backtest_step,
        "tuning_calls": f.tuning_calls,
        "max_epochs": f.max_epochs,
        "patience": f.patience,
        "history_days": 0,
    }
    out = fill(params, models=list(f.models), **whole, register=True)
    for key in whole:
        try:
            out[key] = int(out[key])
        except (TypeError, ValueError):
            raise ForecastDataError(f"{key} must be an integer, got {out[key]!r}") from None
        if out[key] < least.get(key, 0):
            raise ForecastDataError(f"{key} must be at least {least.get(key, 0)}, got {out[key]}")
    unknown = [m for m in out["models"] if m not in models.REGISTRY]
    if unknown:
        raise ForecastDataError(f"unknown model(s) {unknown}; known: {sorted(models.REGISTRY)}")
    out["models"] = list(dict.fromkeys(out["models"]))
    out["register"] = bool(out["register"])
    return out


def run_config(context: dict, settings: Settings) -> RunConfig:
    p, f = context["params"], settings.forecasting
    return RunConfig(
        horizon=p["horizon"],
        seq_len=p["seq_len"],
        backtest_folds=p["backtest_folds"],
        backtest_step=p["backtest_step"],
        tuning_calls=p["tuning_calls"],
        max_epochs=p["max_epochs"],
        patience=p["patience"],
        sarimax_max_train_days=f.sarimax_max_train_days,
        seasons=dict(f.seasons),
        seed=context["seed"],
    )


def series_for(context: dict, settings: Settings, lake: Lake) -> Series:
    f = settings.forecasting
    return load_series(
        lake,
        context["dataset"],
        context["ds"],
        f.known_covariates.get(context["dataset"], []),
        missing=f.missing_dates,
        max_gap=f.max_fill_gap_days,
        history_days=context["params"]["history_days"],
    )


def dataset_of(dataset: str | None, settings: Settings) -> str:
    """The Param ``dataset``, empty: ``forecasting.dataset``."""
    return dataset or settings.forecasting.dataset


def wanted(dataset: str | None, events: list[dict] = (), settings: Settings | None = None) -> bool:
    """False when the run was triggered only by gold events of other datasets (the DAG then skips)."""
    from pipelines.lake import triggered_for

    return triggered_for(dataset_of(dataset, settings or load_settings()), events)


def resolve_ds(lake: Lake, dataset: str, wanted_ds: str, events: list[dict], logical_ds: str | None) -> str:
    """The form's date, else the triggering gold event's, else the logical date, else the latest gold."""
    from pipelines.lake import run_date

    ds = run_date(lake, [dataset], wanted_ds, events, logical_ds)
    if ds is None:
        raise ForecastDataError(f"no gold partitions for dataset {dataset!r}; run the features DAG for it first")
    return ds


def prepare(
    dataset: str | None,
    params: dict,
    dag_id: str,
    airflow_run_id: str,
    events: list[dict] = (),
    logical_ds: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Check the series and the run's choices, and open the DAG run's parent MLflow run."""
    settings, lake = _ctx(settings)
    dataset = dataset_of(dataset, settings)
    ds = resolve_ds(lake, dataset, (params or {}).get("ds") or "", list(events), logical_ds)
    context = {"dataset": dataset, "ds": ds, "params": run_params(params, settings), "seed": settings.seed}
    series = series_for(context, settings, lake)
    p = context["params"]
    f = series.spec.f
    if f.name != "daily":  # the settings' horizon and window are days: other frequencies take their own
        given = {k for k, v in (params or {}).items() if v not in (None, "", [], 0)}
        p["horizon"] = p["horizon"] if "horizon" in given else f.horizon
        p["seq_len"] = p["seq_len"] if "seq_len" in given else max(2 * series.spec.m, 8)
    p["horizon"] = p["horizon"] or settings.forecasting.horizon  # 0 (the form's "auto"): the frequency's default
    p["seq_len"] = p["seq_len"] or settings.forecasting.seq_len
    folds_for(
        len(series.history),
        p["horizon"],
        p["backtest_folds"],
        p["backtest_step"] or p["horizon"],
        series.spec.m,
        dataset,
    )
    ctx = RunContext.create(dataset, ds, settings, params=p, dag_id=dag_id, airflow_run_id=airflow_run_id)
    gold_hash = content_hash(series.content_hashes)
    ctx = open_parent(ctx, EXPERIMENT, gold_content_hash=gold_hash, summary=series.summary())
    return {
        **ctx.to_xcom(),
        "run_key": hashlib.sha256(airflow_run_id.encode()).hexdigest()[:12],
        "spec": series.spec.as_dict(),
        "rank_metric": rank_metric(series.spec.freq),
    }


def rank_metric(freq: str) -> str:
    """The per-period MASE a series is ranked by: mase_daily, mase_monthly, ..."""
    return f"mase_{freq}"


def _staging(context: dict) -> str:
    return f"{STAGING}/forecasting/{context['dataset']}/ds={context['ds']}/{context['run_key']}"


def backtest_model(context: dict, model: str, settings: Settings | None = None) -> dict:
    """Evaluate one model, stage its forecasts in the lake, log it as a nested MLflow run."""
    import pyarrow as pa

    settings, lake = _ctx(settings)
    series = series_for(context, settings, lake)
    result = evaluate(series, model, run_config(context, settings))
    record = result.record()
    if result.status == "ok":
        frames = [
            result.backtest.predictions.assign(kind="backtest"),
            result.forecast.assign(kind="forecast", origin=series.history.index[-1], actual=float("nan")),
        ]
        staged = pd.concat(frames, ignore_index=True).assign(model=model)
        lake.write_parquet(f"{_staging(context)}/{model}.parquet", pa.Table.from_pandas(staged, preserve_index=False))
    record.update(_log(settings, context, result, series))
    return record


def _log(settings: Settings, context: dict, result: Evaluation, series: Series) -> dict:
    """A nested run under the parent: params, metrics, plots and (when it worked) the pyfunc model."""
    import mlflow

    from pipelines.forecasting import plots, pyfunc
    from pipelines.tracking import find_or_create_run

    tags = {
        "airflow_run_id": context["airflow_run_id"],
        "model": result.model,
        "dataset": context["dataset"],
        "ds": context["ds"],
    }
    run_id = find_or_create_run(settings, EXPERIMENT, result.model, tags, parent_run_id=context["parent_run_id"])
    out = {"mlflow_run_id": run_id, "model_uri": None}
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"family": result.family, "status": result.status})
        run_params_ = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in context["params"].items()}
        mlflow.log_params({**run_params_, **{f"model.{k}": str(v) for k, v in result.params.items()}})
        if result.status != "ok":
            mlflow.set_tag("failure_reason", result.reason)
            if result.traceback:
                mlflow.log_text(result.traceback, "traceback.txt")
            mlflow.end_run(status="FAILED")
            return out
        mlflow.log_metrics(
            {
                **{k: float(v) for k, v in result.metrics.items() if pd.notna(v)},
                "tune_s": result.tune_s,
                "backtest_s": result.backtest_s,
                "train_s": result.train_s,
            }
        )
        target = series.history[series.spec.target]
        log_figure(
            plots.forecast_vs_actual(result.backtest.predictions, target, result.model), "plots/forecast_vs_actual.png"
        )
        mlflow.log_text(result.backtest.predictions.to_csv(index=False), "backtest.csv")
        if result.tuning and result.tuning.trials:
            log_frame(pd.DataFrame(result.tuning.trials), "tuning_trials.json")
            log_figure(plots.tuning(result.tuning.trials, result.model), "plots/tuning.png")
        if getattr(result.fitted, "history_", None):
            log_figure(plots.learning_curve(result.fitted.history_, result.model), "plots/learning_curve.png")
        known = future_covariates(series, context["params"]["horizon"])[0]
        info = pyfunc.log_model(
            result.fitted, series.spec, context["params"]["horizon"], result.model, result.family, series.history, known
        )
        out["model_uri"] = info.model_uri
    return out


def _table(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def leaderboard(context: dict, records: list[dict], settings: Settings | None = None) -> dict:
    """Rank the models, publish forecasts/backtests/leaderboard as gold, log them, register the best."""
    import mlflow

    from pipelines.forecasting import plots

    settings, lake = _ctx(settings)
    dataset, ds = context["dataset"], context["ds"]
    rows = [r for r in records if r]
    ensemble = combine.candidate(
        context, rows, series_for(context, settings, lake), settings, lake, _staging(context), EXPERIMENT
    )
    rows += [ensemble] if ensemble else []
    board = pd.DataFrame(rows)
    metric = context.get("rank_metric", RANK_METRIC)
    mae_col = metric.replace("mase_", "mae_")
    for col in (metric, mae_col):
        if col not in board:
            board[col] = float("nan")
    board["_ok"] = board["status"].eq("ok")
    board = board.sort_values(["_ok", metric, mae_col], ascending=[False, True, True], na_position="last")
    board = board.drop(columns="_ok").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    ok = board[board["status"] == "ok"]
    best = ok.iloc[0] if len(ok) else None

    staged = [
        lake.read_parquet(f"{_staging(context)}/{m}.parquet").to_pandas()
        for m in ok["model"]
        if lake.exists(f"{_staging(context)}/{m}.parquet")
    ]
    predictions = pd.concat(staged, ignore_index=True) if staged else pd.DataFrame()
    flat = board.assign(params=board["params"].map(lambda v: json.dumps(v, default=str, sort_keys=True)))
    lake.write_partition(
        GOLD, f"{dataset}_forecast_leaderboard", ds, _table(flat), {"parent_run_id": context["parent_run_id"]}
    )
    manifest = {}
    if len(predictions):
        predictions["is_best"] = predictions["model"] == best["model"]
        backtest = predictions[predictions["kind"] == "backtest"].drop(columns="kind")
        levels = LEVELS if metric == RANK_METRIC else {metric.removeprefix("mase_"): 1}
        forecast = _levels(
            predictions[predictions["kind"] == "forecast"], board.set_index("model")["covariates"], levels
        )
        lake.write_partition(
            GOLD, f"{dataset}_backtest", ds, _table(_dates(backtest)), {"parent_run_id": context["parent_run_id"]}
        )
        manifest = lake.write_partition(
            GOLD,
            f"{dataset}_forecast",
            ds,
            _table(_dates(forecast)),
            {
                "parent_run_id": context["parent_run_id"],
                "best_model": best["model"],
                "horizon": context["params"]["horizon"],
                "levels": levels,
                "assumption": "known covariates over the horizon come from the plan (else as last year)",
            },
        )

    registered = None
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(flat, "leaderboard.json")
        mlflow.log_text(flat.to_csv(index=False), "leaderboard.csv")
        mlflow.set_tag("failed_models", ",".join(board.loc[board["status"] != "ok", "model"]) or "none")
        if best is not None:
            log_figure(plots.leaderboard(board, metric), "plots/leaderboard.png")
            if len(predictions):  # a retry after the staging was cleared keeps the first try's plots
                history = load_target(context, settings, lake)
                back = predictions[predictions["kind"] == "backtest"]
                log_figure(
                    plots.forecast_vs_actual(back, history, dataset, list(ok["model"])), "plots/forecast_vs_actual.png"
                )
                fut = predictions[predictions["kind"] == "forecast"]
                log_figure(plots.future(history, fut, dataset), "plots/forecast.png")
            mlflow.log_metrics(
                {
                    f"best_{k}": float(best[k])
                    for k in board.columns
                    if k.startswith(("mase_", "mae_", "mape_", "smape_", "rmse_")) and pd.notna(best[k])
                }
            )
            mlflow.set_tag("best_model", best["model"])
            if context["params"]["register"]:
                registered = register(settings, context, board, best)
    lake.delete_dir(_staging(context))
    return {
        "dataset": dataset,
        "ds": ds,
        "models": len(board),
        "failed": board.loc[board["status"] != "ok", ["model", "reason"]].to_dict("records"),
        "best_model": None if best is None else best["model"],
        "best_mase_daily": None if best is None else _float(best[metric]),
        "rank_metric": metric,
        "forecast_uri": manifest.get("uri"),
        "registered": registered,
        "parent_run_id": context["parent_run_id"],
    }


def _float(v):
    return None if pd.isna(v) else float(v)


def load_target(context: dict, settings: Settings, lake: Lake) -> pd.Series:
    series = series_for(context, settings, lake)
    return series.history[series.spec.target]


LEVELS = {"daily": 1, "weekly": 7, "monthly": 28}


def _levels(forecast: pd.DataFrame, covariates: pd.Series, levels: dict | None = None) -> pd.DataFrame:
    """Daily forecasts plus their sums over 7-day (weekly) and 28-day (monthly) blocks of the horizon
    (another frequency: its own periods only)."""
    out = []
    for model, part in forecast.groupby("model", sort=False):
        part = part.sort_values("date").reset_index(drop=True)
        for level, size in (levels or LEVELS).items():
            n = len(part) // size
            if n == 0:
                continue
            block = part.iloc[: n * size].assign(block=lambda f, s=size: f.index // s)
            agg = block.groupby("block").agg(
                period_start=("date", "min"), period_end=("date", "max"), forecast=("forecast", "sum")
            )
            out.append(
                agg.assign(
                    level=level,
                    model=model,
                    is_best=bool(part["is_best"].iloc[0]),
                    covariates=covariates.get(model, ""),
                )
            )
    columns = ["model", "is_best", "level", "period_start", "period_end", "forecast", "covariates"]
    return pd.concat(out, ignore_index=True)[columns] if out else pd.DataFrame(columns=columns)


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in ("origin", "date", "period_start", "period_end"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


def run(
    dataset: str, ds: str, params: dict | None = None, settings: Settings | None = None, run_id: str = "cli"
) -> dict:
    """The whole DAG in this process (CLI, tests): prepare, every model one after another, leaderboard.

    The run id carries a hash of the Params: a re-run with other Params on the same date is a run of
    its own (MLflow refuses to change a logged param), the same Params again resume the same run.
    """
    settings = settings or load_settings()
    params = {**(params or {}), "ds": ds}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    context = prepare(dataset, params, "forecasting", f"{run_id}-{digest}", settings=settings)
    records = [backtest_model(context, m, settings) for m in context["params"]["models"]]
    return leaderboard(context, records, settings)
