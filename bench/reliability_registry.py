"""Reliability of the register steps: does a retried registration duplicate anything?

For each DAG (training, forecasting, recommendation, sentiment, image) the upstream steps run once
on tiny real data and models, in a temp lake and a temp MLflow store (sqlite + local artifacts);
then the step that registers runs ``TRIES`` times with the same inputs, as Airflow's retries would
run it (training ``register``, forecasting ``leaderboard``, recommendation ``leaderboard`` and
``register``, sentiment ``train``, image ``train_cnn``). After the first try, and after each
retry, it counts the registered model's versions, its aliases, the rows of the tables the step
logs to MLflow, the models logged in the registering run and the decision record.

- ``retried_registrations_duplicated``: retries that added a version, a table row or a logged
  model, moved an alias or changed the decision (target 0);
- ``duplicate_versions``, ``duplicate_table_rows``, ``duplicate_logged_models``, ``alias_moves``,
  ``changed_decisions``: the same, counted one by one.

``measure()`` returns the figures (``bench/reliability.py --parts registry`` writes them to
bench/results/reliability.json); run alone it prints a table:

    .venv/bin/python bench/reliability_registry.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRIES = 3  # the first try and Airflow's two retries (retries: 2)
DS = "2026-01-01"


def _gold(lake, dataset: str, frame: pd.DataFrame, meta: dict | None = None) -> None:
    import pyarrow as pa

    from pipelines.constants import GOLD

    lake.write_partition(GOLD, dataset, DS, pa.Table.from_pandas(frame, preserve_index=False), meta or {})


def _splits(rng, n: int) -> np.ndarray:
    return rng.choice(["train", "valid", "test"], n, p=[0.6, 0.15, 0.25])


# ---- each DAG: its upstream steps once; returns the registered model's name, the registering step,
# ---- the tables it logs ({artifact: run id}) and how to find the run it logs the model in (if it does)


def _training(settings, lake):
    from pipelines.training import run

    rng = np.random.default_rng(0)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "_row_id": np.arange(n, dtype=np.uint64),
            "x1": x1,
            "x2": x2,
            "label": (x1 + x2 + rng.logistic(size=n) > 0).astype("int8"),
            "split": _splits(rng, n),
        }
    )
    _gold(lake, "toy", frame, {"numeric": ["x1", "x2"], "categorical": []})
    params = {"algorithms": ["logreg"], "cv_folds": 2, "model_name": "toy_classifier", "gate": {"cv_roc_auc": "> 0.6"}}
    context = run.prepare("toy", params, "training", "scheduled__1", logical_ds=DS, settings=settings)
    selection = run.select(context, [run.train(context, "logreg", settings=settings)], settings=settings)
    step = partial(run.register, context, selection, settings=settings)
    return "toy_classifier", step, {"registry/versions.json": context["parent_run_id"]}, None


def _forecasting(settings, lake):
    from pipelines.forecasting import run

    rng = np.random.default_rng(0)
    days = 200
    dates = pd.date_range("2025-06-15", periods=days, freq="D")
    spend = 100 + 10 * rng.random(days)
    weekly = np.array([1.0, 0.95, 0.9, 0.95, 1.05, 1.25, 1.2])[dates.day_of_week]
    sales = (500 + 2 * np.arange(days) + 3 * spend) * weekly * np.exp(rng.normal(0, 0.03, days))
    frame = pd.DataFrame(
        {
            "_row_id": np.arange(days, dtype=np.uint64),
            "date": dates.date,
            "spend": spend,
            "label": sales,
            "split": "train",
        }
    )
    meta = {"time": "date", "label_kind": "numeric", "label_source": {"column": "sales", "positive": None}}
    _gold(lake, "shop", frame, {**meta, "numeric": ["spend"], "categorical": []})
    params = {"models": ["seasonal_naive", "lightgbm"], "horizon": 7, "seq_len": 14, "backtest_folds": 2}
    context = run.prepare("shop", {**params, "ds": DS}, "forecasting", "scheduled__1", settings=settings)
    records = [run.backtest_model(context, m, settings) for m in params["models"]]

    def step() -> dict:  # the leaderboard task registers the best model
        return run.leaderboard(context, records, settings)["registered"]

    return "shop_forecaster", step, {"leaderboard.json": context["parent_run_id"]}, None


def _recommendation(settings, lake):
    from pipelines.recommendation import run
    from pipelines.recommendation.data import synthetic_ratings

    _gold(lake, "movielens_ratings", synthetic_ratings(40, 30, 500, seed=0).rename(columns={"item_id": "movie_id"}))
    params = {"models": ["popularity", "user_knn"], "cv_folds": 2, "top_n": 3}
    context = run.prepare(params, "recommendation", "scheduled__1", logical_ds=DS, settings=settings)
    records = [run.evaluate_model(context, name, settings=settings) for name in params["models"]]

    def step() -> dict:  # the leaderboard task, then the register task
        return run.register(context, run.leaderboard(context, records, settings=settings), settings=settings)

    parent = context["parent_run_id"]
    return "recommender", step, {"leaderboard.json": parent}, lambda out: parent


def _sentiment(settings, lake):
    from pipelines.deep import text

    rng = np.random.default_rng(0)
    good, bad = ["love", "perfect", "좋아요", "comfortable"], ["small", "cheap", "달라요", "returned"]
    n = 300
    rating = rng.integers(1, 6, n)
    body = [" ".join(rng.choice(good if r >= 4 else bad, 4)) + f" {i}" for i, r in enumerate(rating)]
    frame = pd.DataFrame({"title": "", "review_text": body, "label": rating, "split": _splits(rng, n)})
    _gold(lake, "reviews", frame)
    tags = {"dag_id": "sentiment", "airflow_run_id": "scheduled__1"}
    step = partial(text.run_sentiment, DS, {"models": ["tfidf_logreg"]}, settings, tags=tags)
    return "sentiment_classifier", step, {}, lambda out: out["run_id"]


def _image(settings, lake):
    from pipelines.deep import vision

    params = {"source": "digits", "epochs": 1, "max_rows": 200}
    step = partial(vision.train_image, params, settings, tags={"dag_id": "image", "airflow_run_id": "manual__1"})
    return "image_classifier", step, {}, lambda out: out["run_id"]


DAGS: dict[str, Callable] = {
    "training": _training,
    "forecasting": _forecasting,
    "recommendation": _recommendation,
    "sentiment": _sentiment,
    "image": _image,
}


# ---- counting -----------------------------------------------------------------------------------


def _snapshot(client, name: str, tables: dict[str, str], model_run: str | None) -> dict:
    """What a retry must leave as it is: versions, aliases, table rows, models logged by the registering run."""
    import mlflow

    from pipelines.tracking import read_frame

    versions = client.search_model_versions(f"name = '{name}'")
    logged = 0
    if model_run:
        experiment = client.get_run(model_run).info.experiment_id
        logged = len(mlflow.search_logged_models([experiment], f"source_run_id = '{model_run}'", output_format="list"))
    return {
        "versions": len(versions),
        "aliases": dict(client.get_registered_model(name).aliases) if versions else {},
        "table_rows": sum(len(read_frame(run_id, path)) for path, run_id in tables.items()),
        "logged_models": logged,
    }


def _one(dag: str, settings, lake) -> dict:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    client = MlflowClient(settings.mlflow.tracking_uri)
    name, step, tables, model_run = DAGS[dag](settings, lake)
    t0 = time.perf_counter()
    decisions = [step()]
    model_run_id = model_run(decisions[0]) if model_run else None
    first = _snapshot(client, name, tables, model_run_id)
    out = {
        "versions": first["versions"],
        "aliases": first["aliases"],
        "duplicate_versions": 0,
        "duplicate_table_rows": 0,
        "duplicate_logged_models": 0,
        "alias_moves": 0,
        "changed_decisions": 0,
        "retries_duplicated": 0,
    }
    before = first
    for _ in range(TRIES - 1):
        decisions.append(step())
        after = _snapshot(client, name, tables, model_run_id)
        changes = {
            "duplicate_versions": after["versions"] - before["versions"],
            "duplicate_table_rows": after["table_rows"] - before["table_rows"],
            "duplicate_logged_models": after["logged_models"] - before["logged_models"],
            "alias_moves": sum(
                after["aliases"].get(a) != before["aliases"].get(a) for a in {*after["aliases"], *before["aliases"]}
            ),
            "changed_decisions": int(_decision(decisions[-1]) != _decision(decisions[0])),
        }
        for key, value in changes.items():
            out[key] += value
        out["retries_duplicated"] += int(any(changes.values()))
        before = after
    out["seconds_per_try"] = round((time.perf_counter() - t0) / TRIES, 1)
    return out


def _decision(out: dict) -> tuple:
    return tuple(out.get(k) for k in ("version", "alias", "promoted", "reason"))


def measure() -> dict:
    """Every DAG's registering step run ``TRIES`` times on tiny real models in a temp store; the counts."""
    from pipelines.config import load_settings
    from pipelines.lake import Lake

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {
                "MLP_LAKE_ROOT": str(Path(tmp) / "lake"),
                "MLP_STATE_DIR": str(Path(tmp) / "state"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                "MLP_FORECASTING__KNOWN_COVARIATES__SHOP": "[spend]",
                "MLP_RECOMMENDATION__ITEMS": "",
                "MLP_RECOMMENDATION__USERS": "",
            }
        )
        lake = Lake(settings.lake_root)
        dags = {dag: _one(dag, settings, lake) for dag in DAGS}
    keys = ("duplicate_versions", "duplicate_table_rows", "duplicate_logged_models", "alias_moves", "changed_decisions")
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tries": TRIES,
        "retried_registrations": (TRIES - 1) * len(dags),
        "retried_registrations_duplicated": sum(d["retries_duplicated"] for d in dags.values()),
        **{k: sum(d[k] for d in dags.values()) for k in keys},
        "seconds": round(time.monotonic() - t0),
        "dags": dags,
    }


def main() -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    result = measure()
    print(
        f"\n{'DAG':<15} {'versions':>8} {'+versions':>9} {'+rows':>6} {'+models':>7} {'alias moves':>11} {'decision changed':>16}"
    )
    for dag, d in result["dags"].items():
        print(
            f"{dag:<15} {d['versions']:>8} {d['duplicate_versions']:>9} {d['duplicate_table_rows']:>6} "
            f"{d['duplicate_logged_models']:>7} {d['alias_moves']:>11} {d['changed_decisions']:>16}"
        )
    print(
        f"\nretried registrations that duplicated something: {result['retried_registrations_duplicated']} of "
        f"{result['retried_registrations']} (target 0; {TRIES} tries per DAG, {result['seconds']} s)"
    )
    return 0 if result["retried_registrations_duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
