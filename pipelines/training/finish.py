"""The training DAG's later steps: tune the best base algorithms, select one model (baseline gate,
Pareto front, weighted score), explain it with SHAP and register it."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.steps import log_figure as _log_figure
from pipelines.tracking import log_frame
from pipelines.training.context import EXPERIMENT, _config, _ctx, _data
from pipelines.training.evaluate import evaluate
from pipelines.training.logged import _log, _run_tags


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
    """Pick one model: the rule-based gate, the Pareto front, then the weighted score (pipelines.training.pareto);
    a run judged on a sample of the train rows refits it on every train row (pipelines.training.refit)."""
    import mlflow
    import pandas as pd

    from pipelines.training import baseline, pareto, refit

    settings, lake = _ctx(settings)
    p = context["params"]
    board = pd.DataFrame([r for r in records if r])
    data = _data(context, lake)
    baselines = baseline.scores(board, data, _config(context))
    board = baseline.with_lift(board, baselines)
    selection = pareto.select(
        board, weights=dict(p["pareto_weights"]), gate=dict(p["gate"]), near_best_se=p.get("near_best_se")
    )
    table = selection.table
    chosen = table[table["selected"]].iloc[0].to_dict() if selection.selected else None
    if chosen is not None:
        chosen = refit.refit(settings, lake, context, {k: _plain(v) for k, v in chosen.items()}, data)
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(table, "selection/pareto_table.json")
        mlflow.log_text(selection.reason, "selection/reason.txt")
        mlflow.set_tag("selected_algorithm", selection.selected or "none")
        mlflow.log_metrics({f"baseline_{k}_cv_roc_auc": mean for k, (mean, _) in baselines.items()})
        if not selection.selected:
            mlflow.set_tags({"outcome": "nothing registered", "outcome_reason": selection.reason[:5000]})
        if (table["considered"]).any():
            for fig, path in (
                (pareto.plot_front_2d(table, gate=selection.gate, log_x=True), "selection/pareto_2d.png"),
                (pareto.plot_front_3d(table), "selection/pareto_3d.png"),
            ):
                _log_figure(fig, path)
    return {
        "selected": selection.selected,
        "reason": selection.reason,
        "baselines": {k: mean for k, (mean, _) in baselines.items()},
        "record": chosen,
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
    from pipelines.training import multiclass
    from pipelines.training.pyfunc import unwrap

    if not selection["selected"]:
        return {"explained": False, "reason": "no model was selected"}
    settings, lake = _ctx(settings)
    data, chosen = _data(context, lake), selection["record"]
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    model = unwrap(mlflow.sklearn.load_model(chosen["model_uri"]))
    budget = float(context["params"]["explain_time_budget_s"])
    # multi-class: each class's probability against the rest, explained on its own (a budget share each)
    views = (
        {name: multiclass.OneClass(model, k) for k, name in enumerate(data.classes)}
        if data.multiclass
        else {None: model}
    )
    tables, figures, explainer = [], {}, None
    for name, view in views.items():
        explainer = shap_explain.build_explainer(
            view, data.X_train, family=chosen["family"], features=data.columns, seed=context["seed"]
        )
        table, figs = shap_explain.global_summary(
            explainer, data.X_test, seed=context["seed"], time_budget_s=budget / len(views)
        )
        prefix = "" if name is None else f"class_{name}/"
        figures.update({f"{prefix}{kind}": fig for kind, fig in figs.items()})
        tables.append(table if name is None else table.rename(columns={"mean_abs_shap": f"mean_abs_shap_{name}"}))
    table = tables[0]
    if data.multiclass:  # one column per class, and their mean (the ranking)
        for other in tables[1:]:
            table = table.merge(other, on="feature")
        table["mean_abs_shap"] = table[[c for c in table.columns if c.startswith("mean_abs_shap_")]].mean(axis=1)
        table = table.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)
    with mlflow.start_run(run_id=chosen["mlflow_run_id"]), tempfile.TemporaryDirectory() as tmp:
        log_frame(table, "shap/mean_abs_shap.json")
        for kind, fig in figures.items():
            _log_figure(fig, f"shap/{kind}.png")
        mlflow.log_dict(
            {**explainer.describe(), "per_class": data.multiclass, "classes": list(data.classes or ())},
            "shap/explainer.json",
        )
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
    if not selection["selected"]:  # the DAG's register task ends skipped with this reason
        decision = Decision(name, None, None, False, selection["reason"], registry.METRIC, None)
        log_decision(uri, context["parent_run_id"], decision)
        _log_outcome(uri, context, "nothing registered", selection["reason"])
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
        **{k: str(chosen[k]) for k in ("refit_train_rows", "refit_error") if chosen.get(k) is not None},
    }
    description = (
        f"{chosen['algorithm']} trained by {context['dag_id']} run {context['airflow_run_id']} on {context['dataset']} "
        f"gold up to {context['ds']}. Chosen on the Pareto front: CV ROC-AUC {objectives['cv_roc_auc']:.4f}, "
        f"p99 latency {objectives['latency_p99_ms']:.2f} ms, complexity {objectives['complexity']:.2f}, "
        f"interpretability {objectives['interpretability']:.2f}. Input: the raw gold feature columns; "
        + (
            f"output: one probability column per class ({', '.join(data.classes)})."
            if data.multiclass
            else "output: P(label = 1), one value per row."
        )
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
    _log_outcome(uri, context, f"registered {name} version {decision.version} ({decision.alias})", decision.reason)
    versions = registry.versions_table(uri, name)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=context["parent_run_id"]):
        log_frame(versions, "registry/versions.json")
        mlflow.log_text(versions.to_csv(index=False), "registry/versions.csv")
    return decision.record()


def _log_outcome(tracking_uri: str, context: dict, outcome: str, reason: str) -> None:
    """What the run came to, on its parent MLflow run (tags ``outcome``, ``outcome_reason``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(context["parent_run_id"], "outcome", outcome)
    client.set_tag(context["parent_run_id"], "outcome_reason", reason[:5000])


def _plain(value):
    """numpy scalars and NaN made JSON-friendly for XCom."""
    import math

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
