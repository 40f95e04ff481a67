"""What every training step shares: the experiment, the run's Params and their defaults, the settings
and lake, the evaluation config and the gold data of a run context."""

from __future__ import annotations

from pipelines.config import Settings, load_settings
from pipelines.lake import Lake
from pipelines.training.data import TrainingDataError, load_training_data
from pipelines.training.evaluate import EvalConfig

EXPERIMENT = "training"
DEFAULTS = {
    "ds": "",
    "algorithms": [],
    "cv_folds": 5,
    "time_budget_s": 900,
    "fp_cost": 1.0,
    "fn_cost": 5.0,
    "ensemble_top_k": 3,
    "ensembles": [],  # empty: every one of algorithms.ENSEMBLES
    "sample_rows": 0,
    "tune_top_k": 2,
    "tune_mode": "bayes",
    "tune_calls": 20,
    "tune_time_budget_s": 600,
    "tune_patience": 8,
    "gate": {},  # empty: settings training.gate (default: beat the baseline, pipelines/training/baseline.py)
    "near_best_se": None,  # None: settings training.near_best_se (the one-standard-error rule)
    "pareto_weights": {"roc_auc": 0.4, "latency_p99_ms": 0.3, "complexity": 0.2, "interpretability": 0.1},
    "model_name": "",
    "promotion_margin": 0.001,
    "explain_time_budget_s": 120,
    "effort": "auto",  # auto: less fixed work per model on small tables (pipelines/training/effort.py); full: as given
}


def _ctx(settings: Settings | None) -> tuple[Settings, Lake]:
    settings = settings or load_settings()
    return settings, Lake(settings.lake_root)


def _config(context: dict) -> EvalConfig:
    p = context["params"]
    return EvalConfig(
        folds=int(p["cv_folds"]),
        fp_cost=float(p["fp_cost"]),
        fn_cost=float(p["fn_cost"]),
        time_budget_s=float(p["time_budget_s"]),
        seed=context["seed"],
        latency_rows=int(p.get("latency_rows") or EvalConfig.latency_rows),  # set by prepare (effort.plan)
    )


def _data(context: dict, lake: Lake):
    return load_training_data(
        lake, context["dataset"], context["ds"], context["params"]["sample_rows"] or None, context["seed"]
    )


def resolve_ds(lake: Lake, dataset: str, wanted: str, events: list[dict], logical_ds: str | None) -> str:
    """The date to train up to: the form's, else the triggering gold event's, else the logical date, else the latest gold."""
    from pipelines import steps

    return steps.resolve_ds(
        lake, dataset, wanted, events, logical_ds, error=TrainingDataError, hint="run the features DAG first"
    )
