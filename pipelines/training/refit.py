"""The selected model refitted on every train row, when the run judged its models on a sample.

With the Param ``sample_rows`` every model is cross-validated, tuned, scored and compared on a
stratified sample of the train rows (``pipelines.training.data``: the sample is drawn after the
split, so every test row is still scored). Once ``select`` has chosen one, that model (the same
algorithm and hyperparameters: ``sklearn.base.clone``) is fitted again on every train row, logged
on its own MLflow run as a second model (tags ``model_uri``, ``sample_model_uri``,
``refit_train_rows``, metric ``refit_seconds``), and that model is what ``explain`` explains and
``register`` scores on the test rows and registers. Voting refits each base and keeps equal
weights; stacking refits each base and keeps its meta model (fitted on the sample's out-of-fold
probabilities). If the refit fails, the sample's model is kept and the run says why
(``refit_error``). A retried ``select`` finds the refit on the chosen run (its tags) and reuses it.
The leaderboard's figures (CV, latency, test score of each candidate) stay those of the sample.
"""

from __future__ import annotations

import time

from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator

from pipelines.config import Settings
from pipelines.lake import Lake
from pipelines.training.data import TrainingData, load_training_data
from pipelines.training.ensembles import PrefitStacking


def refit_model(model, X, y):
    """A fresh copy of ``model`` (same hyperparameters) fitted on ``X``, ``y``; ensembles refit their bases."""
    if isinstance(model, VotingClassifier):
        bases = [(name, FrozenEstimator(refit_model(_unfrozen(m), X, y))) for name, m in model.estimators]
        return VotingClassifier(bases, voting=model.voting, n_jobs=1).fit(X, y)
    if isinstance(model, PrefitStacking):
        bases = [(name, refit_model(m, X, y)) for name, m in model.estimators]
        return PrefitStacking(bases, model.final_estimator_).fit(X, y)
    return clone(model).fit(X, y)


def _unfrozen(model):
    return model.estimator if isinstance(model, FrozenEstimator) else model


def refit(settings: Settings, lake: Lake, context: dict, chosen: dict, sample: TrainingData) -> dict:
    """``chosen`` (a selection record) with ``model_uri`` the model refitted on every train row, logged
    on the chosen model's run; unchanged when no sample cut the train rows."""
    import mlflow

    from pipelines.training.logged import _log_model
    from pipelines.training.pyfunc import unwrap

    if not sample.sampled:
        return chosen
    full = load_training_data(lake, context["dataset"], context["ds"], None, context["seed"])
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    rows, done = len(full.y_train), mlflow.get_run(chosen["mlflow_run_id"]).data
    if done.tags.get("sample_model_uri") == chosen["model_uri"] and done.tags.get("refit_train_rows") == str(rows):
        # a retried select: this model's refit on these rows is logged already, and is not logged twice
        return _refitted(chosen, done.tags["model_uri"], rows, done.metrics.get("refit_seconds", 0.0))
    started = time.perf_counter()
    try:
        model = refit_model(unwrap(mlflow.sklearn.load_model(chosen["model_uri"])), full.X_train, full.y_train)
    except Exception as exc:  # noqa: BLE001 - the sample's model stays the selected one, and the run says why
        reason = f"{type(exc).__name__}: {exc}"[:500]
        with mlflow.start_run(run_id=chosen["mlflow_run_id"]):
            mlflow.set_tag("refit_error", reason)
        return {**chosen, "refit_error": reason}
    seconds = time.perf_counter() - started
    with mlflow.start_run(run_id=chosen["mlflow_run_id"]):
        uri = _log_model(model, full)
        mlflow.set_tags({"model_uri": uri, "sample_model_uri": chosen["model_uri"], "refit_train_rows": str(rows)})
        mlflow.log_metric("refit_seconds", seconds)
    return _refitted(chosen, uri, rows, seconds)


def _refitted(chosen: dict, uri: str, rows: int, seconds: float) -> dict:
    """``chosen`` with the refitted model as the one to explain and register."""
    return {
        **chosen,
        "model_uri": uri,
        "sample_model_uri": chosen["model_uri"],
        "refit_train_rows": rows,
        "refit_seconds": round(seconds, 1),
    }
