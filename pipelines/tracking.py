"""MLflow helpers shared by the DAGs: tracking URI from settings, one run per DAG run and step.

The tracking URI is read when a task runs. A retried task finds the run its earlier attempt
made (same Airflow run id and key) and logs into it again instead of starting a duplicate.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, TypeGuard

from pipelines import faults
from pipelines.config import Settings


def find_or_create_run(
    settings: Settings, experiment_key: str, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> str:
    """Id of the run in the experiment with these tags and this parent (none: a top-level run),
    created if there is none.

    The parent must match too: nested runs often carry their parent's tags and more, and a retry
    must find the parent again, not one of its children.
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    experiment = _experiment(settings, settings.mlflow.experiment(experiment_key))
    client = MlflowClient(settings.mlflow.tracking_uri)
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in sorted(tags.items()))
    found = client.search_runs(
        [experiment.experiment_id], filter_string=query, max_results=100, order_by=["attributes.start_time ASC"]
    )
    for run in found:  # the earliest first: a parent starts before its children
        if run.data.tags.get("mlflow.parentRunId") == parent_run_id:
            return run.info.run_id
    extra = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
    return client.create_run(experiment.experiment_id, tags={**tags, **extra}, run_name=run_name).info.run_id


def get_or_start_run(settings: Settings, experiment_key: str, run_name: str, tags: dict[str, str]) -> Any:
    """An active MLflow run in the experiment, reusing one with exactly these tags if it exists."""
    import mlflow

    return mlflow.start_run(run_id=find_or_create_run(settings, experiment_key, run_name, tags))


def _experiment(settings: Settings, name: str) -> Any:
    """The experiment, created if needed; without a server its artifacts go under .state, not the cwd."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if settings.mlflow.tracking_uri.startswith("sqlite:"):
            location = (settings.state_dir / "mlflow" / "artifacts").as_uri()
        with suppress(mlflow.exceptions.MlflowException):  # a parallel task may have just created it
            mlflow.create_experiment(name, artifact_location=location)
        experiment = mlflow.get_experiment_by_name(name)
    return mlflow.set_experiment(experiment_id=experiment.experiment_id)


def log_feature_quality(settings: Settings, manifests: dict[str, dict], airflow_run_id: str) -> str:
    """Row counts and hashes of one date's layers as an MLflow run in the features experiment."""
    import mlflow

    bronze, silver, gold = manifests["bronze"], manifests["silver"], manifests["gold"]
    tags = {"dataset": gold["dataset"], "ds": gold["ds"], "airflow_run_id": airflow_run_id}
    faults.checkpoint("tracking_connect", airflow_run_id)  # reliability tests hold a retry here
    with get_or_start_run(settings, "features", f"{gold['dataset']} {gold['ds']}", tags) as run:
        faults.checkpoint("tracking", airflow_run_id)  # reliability tests stop MLflow here, with the run open
        mlflow.set_tags({"gold_content_hash": gold["content_hash"], "gold_schema_hash": gold["schema_hash"]})
        mlflow.log_params({"dataset": gold["dataset"], "ds": gold["ds"], "contract": silver.get("contract")})
        metrics = {
            "rows_in": bronze["rows_in"],
            "bronze_rows": bronze["rows"],
            "bronze_quarantined": bronze["quarantined_rows"],
            "silver_rows": silver["rows"],
            "silver_quarantined": silver["rows_quarantined"],
            "duplicates": silver.get("duplicates", 0),
            "gold_rows": gold["rows"],
            **{f"{name}_rows": s["rows"] for name, s in gold["splits"].items()},
            **{
                f"{name}_positive_rate": s["positives"] / max(s["rows"], 1)
                for name, s in gold["splits"].items()
                if "positives" in s  # unlabelled gold has no positives
            },
        }
        mlflow.log_metrics(metrics)
        for layer, manifest in manifests.items():
            mlflow.log_dict(manifest, f"manifests/{layer}.json")
        return run.info.run_id


def log_frame(frame: Any, artifact_file: str) -> None:
    """A table as a JSON artifact (pandas "split" orient) of the active run, replacing an earlier one.

    ``mlflow.log_table`` appends to an artifact that exists, so a retried task would double its
    rows; this writes the whole file again instead. Read it back with ``read_frame``.
    """
    import tempfile
    from pathlib import Path

    import mlflow

    path = Path(artifact_file)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / path.name
        local.write_text(frame.to_json(orient="split", index=False, date_format="iso", default_handler=str))
        mlflow.log_artifact(str(local), artifact_path=str(path.parent) if str(path.parent) != "." else None)


def read_frame(run_id: str, artifact_file: str) -> Any:
    """A table written by ``log_frame``."""
    import mlflow
    import pandas as pd

    with open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_file)) as f:
        return pd.read_json(f, orient="split")


# -- links from Airflow tasks to their MLflow runs (plugins/mlflow_links.py) --------------------

_RUN_ID_KEYS = ("mlflow_run_id", "parent_run_id")


def _is_run_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def mlflow_run_id_in(value: object) -> str | None:
    """The MLflow run id a task's return value names, if any.

    Training steps return ``mlflow_run_id`` (a model's run) or ``parent_run_id`` (the DAG run's
    run); ``select`` nests the chosen model's record; the features ``track`` step returns the bare id.
    """
    if _is_run_id(value):
        return value
    if not isinstance(value, dict):
        return None
    for key in _RUN_ID_KEYS:
        if _is_run_id(value.get(key)):
            return value[key]
    for nested in value.values():
        if isinstance(nested, dict) and (found := mlflow_run_id_in(nested)):
            return found
    return None


def mlflow_run_url(ui_url: str, run_id: str) -> str:
    """The MLflow UI page of a run (the UI resolves the experiment from the run id)."""
    return f"{ui_url.rstrip('/')}/#/runs/{run_id}"
