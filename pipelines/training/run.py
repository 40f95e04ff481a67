"""The training DAG's steps: prepare (data checks + parent MLflow run), train one algorithm or
ensemble (a nested MLflow run each), and the leaderboard (gold table + MLflow artifacts).

Every step takes and returns small JSON-able dicts, so Airflow passes them through XCom.
"""

from __future__ import annotations

import hashlib
import os

from pipelines.config import Settings, load_settings
from pipelines.constants import GOLD
from pipelines.lake import Lake
from pipelines.tracking import log_frame
from pipelines.training.data import TrainingDataError, load_training_data
from pipelines.training.evaluate import EvalConfig, Evaluation, evaluate, fold_ids

EXPERIMENT = "training"
DEFAULTS = {
    "ds": "",
    "algorithms": [],
    "cv_folds": 5,
    "time_budget_s": 900,
    "fp_cost": 1.0,
    "fn_cost": 5.0,
    "ensemble_top_k": 3,
    "sample_rows": 0,
    "tune_top_k": 2,
    "tune_mode": "bayes",
    "tune_calls": 20,
    "tune_time_budget_s": 600,
    "tune_patience": 8,
    "gate": {"cv_roc_auc": "> 0.85", "latency_p99_ms": "< 100"},
    "pareto_weights": {"roc_auc": 0.4, "latency_p99_ms": 0.3, "complexity": 0.2, "interpretability": 0.1},
    "model_name": "",
    "promotion_margin": 0.001,
    "explain_time_budget_s": 120,
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
    )


def _data(context: dict, lake: Lake):
    return load_training_data(
        lake, context["dataset"], context["ds"], context["params"]["sample_rows"] or None, context["seed"]
    )


def resolve_ds(lake: Lake, dataset: str, wanted: str, events: list[dict], logical_ds: str | None) -> str:
    """The date to train up to: the form's, else the triggering gold event's, else the logical date, else the latest gold."""
    from pipelines.lake import run_date

    ds = run_date(lake, [dataset], wanted, events, logical_ds)
    if ds is None:
        raise TrainingDataError(f"no gold partitions for dataset {dataset!r}; run the features DAG first")
    return ds


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
    from pipelines.training import algorithms

    settings, lake = _ctx(settings)
    ds = resolve_ds(lake, dataset, params.get("ds") or "", list(events), logical_ds)
    params = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    names = list(params["algorithms"]) or list(algorithms.BASE_ALGORITHMS)
    for name in names:
        if algorithms.get(name).ensemble:
            raise TrainingDataError(
                f"{name!r} is an ensemble: it is built from the best base algorithms, list base ones only"
            )
    if int(params["cv_folds"]) < 2:
        raise TrainingDataError(f"cv_folds must be at least 2, got {params['cv_folds']}")
    _check_selection_params(params)
    params["algorithms"] = algorithms.start_order(names)  # the order the DAG maps and starts them in
    context = {"dataset": dataset, "ds": ds, "params": params, "seed": settings.seed}
    data = _data(context, lake)
    gold_hash = hashlib.sha256(
        "".join(data.content_hashes[d] for d in sorted(data.content_hashes)).encode()
    ).hexdigest()
    tags = {"dag_id": dag_id, "airflow_run_id": airflow_run_id, "dataset": dataset, "ds": ds}
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


def _check_selection_params(params: dict) -> None:
    """Refuse a bad gate, weights or tuning mode before any model is trained, not after."""
    from pipelines.training import pareto, tuning

    if params["tune_mode"] not in tuning.MODES:
        raise TrainingDataError(f"tune_mode must be one of {', '.join(tuning.MODES)}, got {params['tune_mode']!r}")
    pareto.Gate.from_config(dict(params["gate"]))
    pareto.check_weights(dict(params["pareto_weights"]))


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
        try:
            bases, oof = _judged_bases(settings, ranked, data)
        except Exception as exc:  # noqa: BLE001 - becomes the ensemble's leaderboard row
            result = Evaluation(name, "ensemble", "failed", {}, reason=f"cannot reuse the base models: {exc}"[:500])
        else:
            result = evaluate(
                name,
                "ensemble",
                lambda: ensembles.assemble(name, bases, oof, data.y_train, fold, config.seed),
                data,
                config,
                cv=lambda: ensembles.cross_validation(name, oof, data.y_train, fold, config.seed),
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


OOF_ARTIFACT = "cv_predictions.parquet"


def _judged_bases(settings: Settings, records: list[dict], data) -> tuple[list[tuple[str, object]], object]:
    """The fitted final models and out-of-fold probabilities (one column each) of judged base runs."""
    import mlflow
    import numpy as np
    import pandas as pd

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    bases, columns = [], []
    for r in records:
        path = mlflow.artifacts.download_artifacts(run_id=r["mlflow_run_id"], artifact_path=OOF_ARTIFACT)
        frame = pd.read_parquet(path)
        if len(frame) != len(data.y_train) or not np.array_equal(frame["label"].to_numpy(), data.y_train.to_numpy()):
            raise ValueError(f"{r['algorithm']}: its out-of-fold predictions are for other train rows")
        columns.append(frame["proba"].to_numpy())
        bases.append((r["algorithm"], mlflow.sklearn.load_model(r["model_uri"])))
    return bases, np.column_stack(columns)


def _log(settings: Settings, context: dict, result: Evaluation, data) -> dict:
    """A nested run under the DAG run's parent: params, metrics, plots and (when it worked) the model."""
    import mlflow

    from pipelines.tracking import find_or_create_run
    from pipelines.training import plots

    run_id = find_or_create_run(
        settings, EXPERIMENT, result.name, _run_tags(context, result.name), parent_run_id=context["parent_run_id"]
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"family": result.family, "status": result.status})
        mlflow.log_params(
            {
                "algorithm": result.name,
                "family": result.family,
                **{k: str(v) for k, v in _config(context).as_params().items()},
            }
        )
        if result.status != "ok":
            mlflow.set_tag("failure_reason", result.reason)
            mlflow.end_run(status="FAILED")
            return {"mlflow_run_id": run_id, "model_uri": None}
        mlflow.log_params(_hyperparams(result.model))
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)})
        y = data.y_test.to_numpy()
        for fig, path in (
            (plots.roc_pr(y, result.test_proba, result.name), "plots/roc_pr.png"),
            (plots.confusion(y, result.test_proba, result.name), "plots/confusion_matrix.png"),
            (plots.calibration(y, result.test_proba, result.name), "plots/calibration.png"),
        ):
            _log_figure(fig, path)
        if result.oof is not None:
            _log_oof(result.oof, data.y_train)
        table = _importances(result.model, data, context["seed"])
        log_frame(table, "feature_importance.json")
        _log_figure(plots.importances(table, result.name), "plots/feature_importance.png")
        model_uri = _log_model(result.model, data)
        mlflow.set_tag("model_uri", model_uri)
    return {"mlflow_run_id": run_id, "model_uri": model_uri}


def _log_figure(fig, path: str) -> None:
    """Log a figure to the active run and free it (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.log_figure(fig, path)
    plt.close(fig)


def _run_tags(context: dict, name: str) -> dict:
    """The tags that identify one algorithm's run in one DAG run (a retry finds it again)."""
    return {
        "airflow_run_id": context["airflow_run_id"],
        "algorithm": name,
        "dataset": context["dataset"],
        "ds": context["ds"],
    }


def _hyperparams(model) -> dict:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    params = {
        k: v for k, v in final.get_params(deep=False).items() if isinstance(v, str | int | float | bool | type(None))
    }
    return {f"model.{k}": str(v)[:250] for k, v in sorted(params.items())[:80]}


def _importances(model, data, seed: int):
    """Permutation importance (drop in ROC-AUC) on up to 1,000 test rows: the same yardstick for every model.

    1,000 rows x 2 repeats keep the ranking of Adult's features (the SHAP step explains the selected
    model in depth) at a third of the predictions 2,000 x 3 took: for 500-tree boosting or a bagged
    ensemble those predictions were a large part of the task.
    """
    import pandas as pd
    from sklearn.inspection import permutation_importance

    X, y = data.X_test, data.y_test
    if len(X) > 1000:
        rows = X.sample(1000, random_state=seed).index
        X, y = X.loc[rows], y.loc[rows]
    imp = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=2, random_state=seed, n_jobs=1)
    return pd.DataFrame({"feature": X.columns, "importance": imp.importances_mean, "std": imp.importances_std})


def _log_oof(oof, y) -> None:
    """The out-of-fold probabilities, in train-row order, for the ensembles to reuse."""
    import tempfile
    from pathlib import Path

    import mlflow
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / OOF_ARTIFACT
        pd.DataFrame({"label": y.to_numpy(), "proba": oof}).to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def _log_model(model, data) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from pipelines.training.metrics import requirements

    example = data.X_train.head(5)
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format="cloudpickle",
        pyfunc_predict_fn="predict_proba",
        pip_requirements=requirements(model),  # MLflow's own inference runs a subprocess: ~3 s per model
    )
    return info.model_uri  # models:/m-<id>: MLflow 3 keeps logged models outside the run's artifacts


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


# -- tuning, selection, explanation, registration ----------------------------------------------


def tune_candidates(context: dict, board: dict) -> list[str]:
    """The top ``tune_top_k`` base algorithms of the leaderboard that have a search space."""
    from pipelines.training.tuning import search_space

    def tunable(name: str) -> bool:
        try:
            return bool(search_space(name))
        except ValueError:
            return False

    return [a for a in board["ranked_base"] if tunable(a)][: int(context["params"]["tune_top_k"])]


def tune(context: dict, algorithm: str, settings: Settings | None = None) -> dict:
    """Search one algorithm's hyperparameters (each trial a nested run), then judge the best like the others.

    The result is a leaderboard-style record named ``<algorithm>_tuned``; its MLflow run holds the
    model, the trials table and the convergence plot, with one nested run per trial.
    """
    import mlflow
    import pandas as pd
    from mlflow.entities import Metric

    from pipelines.tracking import find_or_create_run
    from pipelines.training import algorithms, tuning

    settings, lake = _ctx(settings)
    data, config, p = _data(context, lake), _config(context), context["params"]
    name = f"{algorithm}_tuned"
    run_id = find_or_create_run(settings, EXPERIMENT, name, _run_tags(context, name), context["parent_run_id"])

    def log_trial(trial) -> None:
        tags = {  # no "algorithm" tag: a trial must never be mistaken for an algorithm's run
            "airflow_run_id": context["airflow_run_id"],
            "tuning_of": algorithm,
            "trial": str(trial.number),
            "ds": context["ds"],
        }
        trial_run = find_or_create_run(settings, EXPERIMENT, f"{name} trial {trial.number}", tags, run_id)
        with mlflow.start_run(run_id=trial_run) as active:
            mlflow.log_params({k: str(v) for k, v in trial.params.items()})
            mlflow.log_metrics({"cv_roc_auc": trial.cv_roc_auc, "seconds": trial.seconds})
            if trial.prefixes:  # a boosting trial: CV ROC-AUC against the number of trees, from one fit
                # stamped with the run's start, which a retry finds again: the store keeps a point logged twice once
                at = active.info.start_time
                curve = [Metric("cv_roc_auc_by_trees", auc, at, n) for n, auc in trial.prefixes.items()]
                fitted = Metric("trees_fitted", trial.trees_fitted, at, 0)
                mlflow.MlflowClient().log_batch(trial_run, metrics=[*curve, fitted])

    search = tuning.tune(
        algorithm,
        data,
        config,
        mode=p["tune_mode"],
        n_calls=int(p["tune_calls"]),
        time_budget_s=float(p["tune_time_budget_s"]),
        patience=int(p["tune_patience"]),
        on_trial=log_trial,
    )
    best = search.best
    spec = algorithms.get(algorithm)
    result = evaluate(
        name,
        spec.family,
        lambda: algorithms.build(algorithm, data.features, config.seed).set_params(**best.params),
        data,
        config,
        cv=lambda: best.cv,
    )
    result.metrics.update({"tuned_from": algorithm, "tuning_trials": len(search.trials)})
    logged = _log(settings, context, result, data)
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"tuning_mode": search.mode, "stopped_because": search.stopped_because})
        mlflow.log_params({f"best.{k}": str(v) for k, v in best.params.items()})
        log_frame(
            pd.DataFrame(
                [
                    {
                        "trial": t.number,
                        "cv_roc_auc": t.cv_roc_auc,
                        "seconds": t.seconds,
                        "trees_fitted": t.trees_fitted,
                        **t.params,
                    }
                    for t in search.trials
                ]
            ),
            "tuning_trials.json",
        )
        _log_figure(tuning.convergence_figure([search], f"{algorithm}: {search.mode} search"), "plots/convergence.png")
    return {**result.record(), **logged, "best_params": {k: str(v) for k, v in best.params.items()}}


def select(context: dict, records: list[dict], settings: Settings | None = None) -> dict:
    """Pick one model: the rule-based gate, the Pareto front, then the weighted score (pipelines.training.pareto)."""
    import mlflow
    import pandas as pd

    from pipelines.training import pareto

    settings, _ = _ctx(settings)
    p = context["params"]
    board = pd.DataFrame([r for r in records if r])
    selection = pareto.select(board, weights=dict(p["pareto_weights"]), gate=dict(p["gate"]))
    table = selection.table
    chosen = table[table["selected"]].iloc[0].to_dict() if selection.selected else None
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(table, "selection/pareto_table.json")
        mlflow.log_text(selection.reason, "selection/reason.txt")
        mlflow.set_tag("selected_algorithm", selection.selected or "none")
        if (table["considered"]).any():
            for fig, path in (
                (pareto.plot_front_2d(table, gate=selection.gate, log_x=True), "selection/pareto_2d.png"),
                (pareto.plot_front_3d(table), "selection/pareto_3d.png"),
            ):
                _log_figure(fig, path)
    return {
        "selected": selection.selected,
        "reason": selection.reason,
        "record": None if chosen is None else {k: _plain(v) for k, v in chosen.items()},
    }


SHAP_BACKGROUND = "shap/background.parquet"


def explain(context: dict, selection: dict, settings: Settings | None = None) -> dict:
    """SHAP for the selected model, on its own MLflow run: summary plots, mean |SHAP| table, background rows.

    The background rows are what the serving API rebuilds the same explainer from.
    """
    import tempfile
    from pathlib import Path

    import mlflow

    from pipelines.training import explain as shap_explain

    if not selection["selected"]:
        return {"explained": False, "reason": "no model was selected"}
    settings, lake = _ctx(settings)
    data, chosen = _data(context, lake), selection["record"]
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = mlflow.sklearn.load_model(chosen["model_uri"])
    explainer = shap_explain.build_explainer(
        model, data.X_train, family=chosen["family"], features=data.columns, seed=context["seed"]
    )
    table, figures = shap_explain.global_summary(
        explainer, data.X_test, seed=context["seed"], time_budget_s=float(context["params"]["explain_time_budget_s"])
    )
    with mlflow.start_run(run_id=chosen["mlflow_run_id"]), tempfile.TemporaryDirectory() as tmp:
        log_frame(table, "shap/mean_abs_shap.json")
        for kind, fig in figures.items():
            _log_figure(fig, f"shap/{kind}.png")
        mlflow.log_dict(explainer.describe(), "shap/explainer.json")
        background = Path(tmp) / Path(SHAP_BACKGROUND).name
        explainer.background.to_parquet(background, index=False)
        mlflow.log_artifact(str(background), artifact_path=str(Path(SHAP_BACKGROUND).parent))
    return {
        "explained": True,
        "algorithm": chosen["algorithm"],
        "explainer": explainer.kind,
        "output_space": explainer.output_space,
        "top_features": table.head(5).to_dict("records"),
    }


def register(context: dict, selection: dict, settings: Settings | None = None) -> dict:
    """Register the selected model as ``challenger``; move ``champion`` only if it beats the current one.

    Safe to retry: the selected model's run keeps one version and its decision (``pipelines.registry``).
    """
    import mlflow

    from pipelines.registry import Decision, log_decision
    from pipelines.training import registry

    settings, lake = _ctx(settings)
    p = context["params"]
    name = p["model_name"] or f"{context['dataset']}_classifier"
    uri = settings.mlflow.tracking_uri
    if not selection["selected"]:
        decision = Decision(name, None, None, False, selection["reason"], registry.METRIC, None)
        log_decision(uri, context["parent_run_id"], decision)
        return decision.record()
    chosen = selection["record"]
    data = _data(context, lake)
    objectives = {k: chosen.get(k) for k in ("cv_roc_auc", "latency_p99_ms", "complexity", "interpretability")}
    tags = {
        "algorithm": chosen["algorithm"],
        "gold_content_hash": context["gold_content_hash"],
        "features": ",".join(data.columns),
        "dag_id": context["dag_id"],
        "airflow_run_id": context["airflow_run_id"],
        "dataset": context["dataset"],
        "ds": context["ds"],
        **{k: f"{v:.6g}" for k, v in objectives.items() if v is not None},
    }
    description = (
        f"{chosen['algorithm']} trained by {context['dag_id']} run {context['airflow_run_id']} on {context['dataset']} "
        f"gold up to {context['ds']}. Chosen on the Pareto front: CV ROC-AUC {objectives['cv_roc_auc']:.4f}, "
        f"p99 latency {objectives['latency_p99_ms']:.2f} ms, complexity {objectives['complexity']:.2f}, "
        f"interpretability {objectives['interpretability']:.2f}. Input: the raw gold feature columns; "
        "output: P(label = 1)."
    )
    decision = registry.register(
        uri,
        name,
        chosen["model_uri"],
        chosen["mlflow_run_id"],
        data.X_test,
        data.y_test,
        margin=float(p["promotion_margin"]),
        tags=tags,
        description=description,
    )
    log_decision(uri, context["parent_run_id"], decision)
    versions = registry.versions_table(uri, name)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(versions, "registry/versions.json")
        mlflow.log_text(versions.to_csv(index=False), "registry/versions.csv")
    return decision.record()


def _plain(value):
    """numpy scalars and NaN made JSON-friendly for XCom."""
    import math

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
