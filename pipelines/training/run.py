"""The training DAG's steps: prepare (data checks + parent MLflow run), train one algorithm or
ensemble (a nested MLflow run each), and the leaderboard (gold table + MLflow artifacts); the later
steps (tune, select, explain, register) live in ``finish`` and are re-exported here, so the DAG and
``run`` (the whole DAG in one process: ``python -m pipelines train``) call every step from this module.

Every step takes and returns small JSON-able dicts, so Airflow passes them through XCom.
"""

from __future__ import annotations

import hashlib
import json
import os

from pipelines.config import Settings, load_settings
from pipelines.constants import GOLD
from pipelines.steps import content_hash, fill
from pipelines.steps import log_figure as _log_figure
from pipelines.tracking import log_frame
from pipelines.training import effort
from pipelines.training.context import DEFAULTS, EXPERIMENT, _config, _ctx, _data, resolve_ds  # noqa: F401
from pipelines.training.data import TrainingDataError
from pipelines.training.evaluate import Evaluation, evaluate, fold_ids
from pipelines.training.finish import (  # noqa: F401  (the DAG and the CLI call every step from this module)
    SHAP_BACKGROUND,
    explain,
    register,
    select,
    tune,
    tune_candidates,
)
from pipelines.training.logged import OOF_ARTIFACT, _judged_bases, _log, _log_model  # noqa: F401


def prepare(
    dataset: str,
    params: dict,
    dag_id: str,
    airflow_run_id: str,
    events: list[dict] = (),
    logical_ds: str | None = None,
    settings: Settings | None = None,
) -> dict:
    """Check the gold data and open the DAG run's parent MLflow run."""
    import mlflow

    from pipelines.tracking import find_or_create_run

    settings, lake = _ctx(settings)
    ds = resolve_ds(lake, dataset, params.get("ds") or "", list(events), logical_ds)
    params = run_params(params, settings)
    context = {"dataset": dataset, "ds": ds, "params": params, "seed": settings.seed}
    data = _data(context, lake)
    params.update(effort.plan(params, len(data.y_train)))  # work in proportion to the table (Param effort)
    gold_hash = content_hash(data.content_hashes)
    # A retry (same Airflow run, same params) finds its parent again; a new run of the same date with
    # other params (`airflow dags test` reuses the run id, the CLI's own id is new) gets its own parent,
    # so MLflow never sees a param change on a run.
    params_key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    tags = {"dag_id": dag_id, "airflow_run_id": airflow_run_id, "dataset": dataset, "ds": ds, "params_key": params_key}
    parent = find_or_create_run(settings, EXPERIMENT, f"{dataset} {ds}", tags)
    with mlflow.start_run(run_id=parent):
        mlflow.set_tags({"gold_content_hash": gold_hash, "role": "parent"})
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_dict(data.summary(), "data_summary.json")
    return {
        **context,
        "parent_run_id": parent,
        "gold_content_hash": gold_hash,
        "airflow_run_id": airflow_run_id,
        "dag_id": dag_id,
    }


def run_params(params: dict, settings: Settings) -> dict:
    """The run's choices: the form's values over ``DEFAULTS`` (an empty Param takes the default; the
    gate: settings ``training.gate``), checked, naming what is wrong."""
    from pipelines.training import algorithms

    params = fill(params, **DEFAULTS)
    params["gate"] = dict(params["gate"] or settings.training.gate)
    if params["near_best_se"] is None:
        params["near_best_se"] = settings.training.near_best_se
    names = list(params["algorithms"]) or list(algorithms.BASE_ALGORITHMS)
    for name in names:
        if algorithms.get(name).ensemble:
            raise TrainingDataError(
                f"{name!r} is an ensemble: it is built from the best base algorithms, list base ones only"
            )
    params["ensembles"] = list(params["ensembles"]) or list(algorithms.ENSEMBLES)
    if unknown := [e for e in params["ensembles"] if e not in algorithms.ENSEMBLES]:
        raise TrainingDataError(f"unknown ensemble(s) {unknown}; ensembles: {', '.join(algorithms.ENSEMBLES)}")
    if int(params["cv_folds"]) < 2:
        raise TrainingDataError(f"cv_folds must be at least 2, got {params['cv_folds']}")
    _check_selection_params(params)
    params["algorithms"] = algorithms.start_order(names)  # the order the DAG maps and starts them in
    return params


def _check_selection_params(params: dict) -> None:
    """Refuse a bad gate, weights or tuning mode before any model is trained, not after."""
    from pipelines.training import pareto, tuning

    if params["tune_mode"] not in tuning.MODES:
        raise TrainingDataError(f"tune_mode must be one of {', '.join(tuning.MODES)}, got {params['tune_mode']!r}")
    pareto.Gate.from_config(dict(params["gate"]))
    pareto.check_weights(dict(params["pareto_weights"]))
    se = params["near_best_se"]
    if se is not None and (isinstance(se, bool) or not isinstance(se, int | float) or not se >= 0):
        raise TrainingDataError(f"near_best_se must be a number >= 0 (standard errors), got {se!r}")


def train(context: dict, algorithm: str, settings: Settings | None = None) -> dict:
    """Judge one base algorithm and log it as a nested MLflow run."""
    from pipelines.training import algorithms

    settings, lake = _ctx(settings)
    data = _data(context, lake)
    spec = algorithms.get(algorithm)
    result = evaluate(
        algorithm,
        spec.family,
        lambda: algorithms.build(algorithm, data.features, context["seed"]),
        data,
        _config(context),
    )
    return {**result.record(), **_log(settings, context, result, data)}


def train_ensemble(context: dict, name: str, base_records: list[dict], settings: Settings | None = None) -> dict:
    """Judge an ensemble over the top-k base algorithms of this run (by CV ROC-AUC).

    Voting and stacking reuse the bases' fitted models and out-of-fold predictions from their
    MLflow runs (``pipelines.training.ensembles``); bagging refits bootstrap copies of the best.
    """
    from pipelines.training import algorithms, ensembles

    settings, lake = _ctx(settings)
    data = _data(context, lake)
    config = _config(context)
    usable = (r for r in base_records if r and r.get("status") == "ok" and r.get("family") != "ensemble")
    ranked = sorted(usable, key=lambda r: -r["cv_roc_auc"])[: int(context["params"]["ensemble_top_k"])]
    top = [r["algorithm"] for r in ranked]
    if len(top) < 2:
        result = Evaluation(
            name, "ensemble", "failed", {}, reason=f"needs at least 2 successful base algorithms, got {top}"
        )
    elif name in ensembles.REUSABLE:
        fold = fold_ids(data.y_train, config)
        k = len(data.classes) if data.multiclass else 2
        try:
            bases, oof = _judged_bases(settings, ranked, data)
        except Exception as exc:  # noqa: BLE001 - becomes the ensemble's leaderboard row
            result = Evaluation(name, "ensemble", "failed", {}, reason=f"cannot reuse the base models: {exc}"[:500])
        else:
            result = evaluate(
                name,
                "ensemble",
                lambda: ensembles.assemble(name, bases, oof, data.y_train, fold, config.seed, k),
                data,
                config,
                cv=lambda: ensembles.cross_validation(name, oof, data.y_train, fold, config.seed, k),
            )
    else:  # bagging: new bootstrap fits; they have the cores to themselves once the base stage is over
        result = evaluate(
            name,
            "ensemble",
            lambda: algorithms.build_ensemble(
                name, [(b, algorithms.build(b, data.features, config.seed)) for b in top], data.features, config.seed
            ),
            data,
            config,
            jobs=os.cpu_count() or 1,
        )
    if result.status == "ok":
        result.metrics["bases"] = ",".join(top)
    return {**result.record(), **_log(settings, context, result, data)}


def leaderboard(context: dict, records: list[dict], settings: Settings | None = None) -> dict:
    """Rank every algorithm (failures included, with their reason), store the table, close the parent run."""
    import mlflow
    import pandas as pd
    import pyarrow as pa

    from pipelines.training import plots

    settings, lake = _ctx(settings)
    rows = [r for r in records if r]
    board = pd.DataFrame(rows)
    if "cv_roc_auc" not in board:
        board["cv_roc_auc"] = float("nan")
    board = board.sort_values(
        ["status", "cv_roc_auc"], ascending=[False, False], key=lambda c: c.eq("ok") if c.name == "status" else c
    ).reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    table = pa.Table.from_pandas(board, preserve_index=False)
    manifest = lake.write_partition(
        GOLD, f"{context['dataset']}_leaderboard", context["ds"], table, {"parent_run_id": context["parent_run_id"]}
    )
    ok = board[board["status"] == "ok"]
    best = ok.iloc[0] if len(ok) else None
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(board, "leaderboard.json")
        mlflow.log_text(board.to_csv(index=False), "leaderboard.csv")
        if len(ok):
            _log_figure(plots.leaderboard(board), "plots/leaderboard.png")
            mlflow.log_metrics(
                {"best_cv_roc_auc": float(best["cv_roc_auc"]), "best_test_roc_auc": float(best["test_roc_auc"])}
            )
            mlflow.set_tag("best_algorithm", best["algorithm"])
        mlflow.set_tag("failed_algorithms", ",".join(board.loc[board["status"] != "ok", "algorithm"]) or "none")
    return {
        "uri": manifest["uri"],
        "algorithms": len(board),
        "failed": board.loc[board["status"] != "ok", ["algorithm", "reason"]].to_dict("records"),
        "best_algorithm": None if best is None else best["algorithm"],
        "best_cv_roc_auc": None if best is None else float(best["cv_roc_auc"]),
        "best_test_roc_auc": None if best is None else float(best["test_roc_auc"]),
        "ranked_base": ok.loc[ok["family"] != "ensemble", "algorithm"].tolist(),
        "parent_run_id": context["parent_run_id"],
    }


def cli_run_id() -> str:
    """A new id per in-process run: its MLflow parent and nested runs are new, so the same date can be trained
    again with other params (a fixed id would find the first run's parent and clash with its params)."""
    import uuid
    from datetime import UTC, datetime

    return f"cli__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}_{uuid.uuid4().hex[:8]}"


def run(
    dataset: str, ds: str = "", params: dict | None = None, settings: Settings | None = None, run_id: str = ""
) -> dict:
    """The whole training DAG in this process (``python -m pipelines train``, tests), one step after another.

    Returns a summary: the date, the parent MLflow run, the leaderboard's best, the selection and the
    registry decision (``outcome`` says whether a model was registered, ``reason`` why or why not).
    """
    import time

    settings = settings or load_settings()
    run_id = run_id or cli_run_id()
    seconds: dict[str, float] = {}

    def timed(step: str, call, *args):
        started = time.perf_counter()
        try:
            return call(*args, settings=settings)
        finally:
            seconds[step] = round(time.perf_counter() - started, 1)

    context = timed("prepare", prepare, dataset, {**(params or {}), "ds": ds or ""}, "cli", run_id)
    base = [timed(f"train {name}", train, context, name) for name in context["params"]["algorithms"]]
    stacked = [timed(f"train {name}", train_ensemble, context, name, base) for name in context["params"]["ensembles"]]
    board = timed("leaderboard", leaderboard, context, [*base, *stacked])
    tuned = [timed(f"tune {name}", tune, context, name) for name in tune_candidates(context, board)]
    selection = timed("select", select, context, [*base, *stacked, *tuned])
    explained = timed("explain", explain, context, selection)
    decision = timed("register", register, context, selection)
    return {
        "dataset": dataset,
        "ds": context["ds"],
        "run_id": run_id,
        "parent_run_id": context["parent_run_id"],
        "leaderboard": {k: board[k] for k in ("uri", "algorithms", "best_algorithm", "best_cv_roc_auc", "failed")},
        "baselines": selection["baselines"],
        "selected": selection["selected"],
        "explained": explained["explained"],
        "effort": context["params"]["effort_plan"],
        "outcome": "registered" if decision["registered"] else "nothing registered",
        "registered_model": decision["name"],
        "version": decision["version"],
        "alias": decision["alias"],
        "reason": decision["reason"],
        "refit_train_rows": (selection["record"] or {}).get("refit_train_rows"),
        "seconds": seconds,  # wall seconds of each step (select includes the refit on every train row)
    }
