"""What a training step logs to MLflow for one model: its nested run's params, metrics, plots,
out-of-fold predictions, permutation importance and the model itself (``pipelines.training.pyfunc``),
and how the ensembles read judged base models back."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.steps import log_figure as _log_figure
from pipelines.tracking import log_frame
from pipelines.training.context import EXPERIMENT, _config
from pipelines.training.evaluate import Evaluation

OOF_ARTIFACT = "cv_predictions.parquet"


def _judged_bases(settings: Settings, records: list[dict], data) -> tuple[list[tuple[str, object]], object]:
    """The fitted final models and out-of-fold probabilities (one column each, multi-class one per class) of
    judged base runs."""
    import mlflow
    import numpy as np
    import pandas as pd

    from pipelines.training.pyfunc import unwrap

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    bases, columns = [], []
    for r in records:
        path = mlflow.artifacts.download_artifacts(run_id=r["mlflow_run_id"], artifact_path=OOF_ARTIFACT)
        frame = pd.read_parquet(path)
        if len(frame) != len(data.y_train) or not np.array_equal(frame["label"].to_numpy(), data.y_train.to_numpy()):
            raise ValueError(f"{r['algorithm']}: its out-of-fold predictions are for other train rows")
        columns.append(frame[[c for c in frame.columns if c.startswith("proba")]].to_numpy())
        bases.append((r["algorithm"], unwrap(mlflow.sklearn.load_model(r["model_uri"]))))
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
        for fig, path in plots.model_figures(data.y_test.to_numpy(), result.test_proba, result.name, data.classes):
            _log_figure(fig, path)
        if result.oof is not None:
            _log_oof(result.oof, data.y_train)
        table = _importances(result.model, data, context["seed"])
        log_frame(table, "feature_importance.json")
        _log_figure(plots.importances(table, result.name), "plots/feature_importance.png")
        model_uri = _log_model(result.model, data)
        mlflow.set_tag("model_uri", model_uri)
    return {"mlflow_run_id": run_id, "model_uri": model_uri}


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
    from pipelines.training import multiclass

    scoring = multiclass.scorer if data.multiclass else "roc_auc"  # multi-class: one-vs-rest macro, as the board
    imp = permutation_importance(model, X, y, scoring=scoring, n_repeats=2, random_state=seed, n_jobs=1)
    return pd.DataFrame({"feature": X.columns, "importance": imp.importances_mean, "std": imp.importances_std})


def _log_oof(oof, y) -> None:
    """The out-of-fold probabilities, in train-row order, for the ensembles to reuse."""
    import tempfile
    from pathlib import Path

    import mlflow
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / OOF_ARTIFACT
        columns = {"proba": oof} if oof.ndim == 1 else {f"proba_{k}": oof[:, k] for k in range(oof.shape[1])}
        pd.DataFrame({"label": y.to_numpy(), **columns}).to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def _log_model(model, data) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from pipelines.training import pyfunc
    from pipelines.training.metrics import requirements

    example = data.X_train.head(5)
    logged = pyfunc.wrap(model, data.classes if data.multiclass else None)
    signature = infer_signature(example, logged.predict(example))  # binary: P(positive); multi-class: a column each
    info = mlflow.sklearn.log_model(
        logged,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format="cloudpickle",
        pyfunc_predict_fn="predict",
        pip_requirements=requirements(model),  # MLflow's own inference runs a subprocess: ~3 s per model
    )
    return info.model_uri  # models:/m-<id>: MLflow 3 keeps logged models outside the run's artifacts
