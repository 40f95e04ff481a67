"""Registering the best forecaster: the gate, the comparison with the champion on the same backtest."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from pipelines.config import Settings
from pipelines.registry import Policy, log_decision, register_and_promote

RANK_METRIC = "mase_daily"
BACKTEST_KEY = "backtest_key"  # version tag: MASEs compare only between versions with the same one


def _float(v):
    return None if pd.isna(v) else float(v)


def policy(settings: Settings, metric: str = RANK_METRIC) -> Policy:
    """MASE (per period) below ``forecasting.gate_max_mase`` to be registered at all; champion unless the
    champion did as well or better on the same backtest (same gold data and backtest settings)."""
    return Policy(metric, higher_is_better=False, gate=settings.forecasting.gate_max_mase, comparable_by=BACKTEST_KEY)


def backtest_key(context: dict, settings: Settings) -> str:
    """What makes two MASEs comparable: the gold data, the horizon, the backtest origins and the seasons."""
    p = context["params"]
    key = [
        context["gold_content_hash"],
        p["horizon"],
        p["backtest_folds"],
        p["backtest_step"],
        p["history_days"],
        dict(settings.forecasting.seasons),
        *(
            [context["spec"].get("freq"), context["spec"].get("season")]
            if context.get("spec", {}).get("freq", "daily") != "daily"
            else []
        ),
    ]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def register(settings: Settings, context: dict, board: pd.DataFrame, best: pd.Series) -> dict:
    """Register the best model when it passes the gate and beats seasonal naive; alias it champion
    unless the champion did better on the same backtest, in which case it becomes the challenger.

    Safe to retry: the best model's run keeps one version and its decision (``pipelines.registry``).
    """
    metric = context.get("rank_metric", RANK_METRIC)
    naive = board[(board["model"] == "seasonal_naive") & (board["status"] == "ok")]
    baselines = {}
    if len(naive) and best["model"] != "seasonal_naive":
        baselines["seasonal naive"] = _float(naive[metric].iloc[0])
    decision = register_and_promote(
        settings.mlflow.tracking_uri,
        settings.forecasting.registered_model.format(dataset=context["dataset"]),
        policy(settings, metric),
        best["mlflow_run_id"],
        best["model_uri"],
        score=_float(best[metric]),
        baselines=baselines,
        tags={
            "model": best["model"],
            "dataset": context["dataset"],
            "ds": context["ds"],
            BACKTEST_KEY: backtest_key(context, settings),
            "gold_content_hash": context["gold_content_hash"],
            "airflow_run_id": context["airflow_run_id"],
        },
    )
    log_decision(settings.mlflow.tracking_uri, context["parent_run_id"], decision)
    return decision.record()
