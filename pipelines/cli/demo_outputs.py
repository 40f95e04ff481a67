"""What the demo's DAG runs left behind, for its summary: lake manifests and tables, MLflow runs and
registry versions, and task states from Airflow's REST API."""

from __future__ import annotations

from pipelines.cli import dagruns
from pipelines.config import Settings
from pipelines.constants import BRONZE, CHAMPION, GOLD, SILVER
from pipelines.lake import Lake


def feature_outputs(settings: Settings, dataset: str, ds: str) -> dict:
    lake = Lake(settings.lake_root)
    try:
        bronze = lake.read_manifest(BRONZE, dataset, ds)
        silver = lake.read_manifest(SILVER, dataset, ds)
        gold = lake.read_manifest(GOLD, dataset, ds)
    except FileNotFoundError:
        return {}
    return {
        "rows in": bronze["rows_in"],
        "gold rows": gold["rows"],
        "quarantined": bronze["quarantined_rows"] + silver["rows_quarantined"],
        "gold hash": gold["content_hash"][:12],
    }


def training_outputs(settings: Settings, dataset: str, ds: str) -> dict:
    lake = Lake(settings.lake_root)
    try:
        board = lake.read_partition(GOLD, f"{dataset}_leaderboard", ds).to_pandas()
    except FileNotFoundError:
        return {}
    ok = board[board["status"] == "ok"]
    out = {"algorithms": len(board), "failed": int((board["status"] != "ok").sum())}
    if len(ok):
        best = ok.iloc[0]
        out.update(
            {
                "best": best["algorithm"],
                "cv auc": round(float(best["cv_roc_auc"]), 4),
                "test auc": round(float(best["test_roc_auc"]), 4),
            }
        )
    return out


def registry_outputs(settings: Settings, dataset: str) -> dict:
    """The registered model's champion after a training run (read from the running MLflow server)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = f"{dataset}_classifier"
    try:
        v = MlflowClient(settings.mlflow.server_url).get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return {"champion": "none"}
    return {"champion": f"{name} v{v.version} ({v.tags.get('algorithm')}, {v.tags.get('decision', '')})"}


def deep_outputs(settings: Settings, airflow_run_id: str | None) -> dict:
    """Headline metrics of a sentiment or image DAG run, from its MLflow runs (experiment ``deep``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not airflow_run_id:
        return {}
    client = MlflowClient(settings.mlflow.server_url)
    try:
        experiment = client.get_experiment_by_name(settings.mlflow.experiment("deep"))
        runs = client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{airflow_run_id}'")
    except (MlflowException, AttributeError):
        return {}
    out: dict = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags, metrics = run.data.tags, run.data.metrics
        if "arm" in tags or "model" in tags:  # nested runs (experiment arms, sentiment models)
            continue
        kind = tags.get("kind")
        if kind == "sentiment" and "best_model" in tags:
            best = tags["best_model"]
            out["best"] = best
            out["test auc"] = round(metrics.get(f"{best}_test_roc_auc", float("nan")), 4)
            out["model"] = f"v{tags.get('registered_version', '?')} ({tags.get('alias', '?')})"
        elif kind == "image":
            out["data"] = tags.get("image_dataset")
            out["cnn test acc"] = round(metrics.get("test_accuracy", float("nan")), 4)
        elif kind == "poly_experiment":
            arms = {
                arm: round(metrics.get(f"{arm}_accuracy_mean", float("nan")), 3)
                for arm in ("poly_polyadam", "relu_adam")
            }
            diverged = next((int(v) for k, v in metrics.items() if k.startswith("poly_polyadam_diverged_of_")), None)
            out["poly vs relu acc"] = f"{arms['poly_polyadam']} vs {arms['relu_adam']} (poly diverged {diverged})"
        elif kind == "gmm":
            out["gmm k"] = int(metrics.get("n_components", 0))
    order = ["best", "test auc", "model", "data", "cnn test acc", "poly vs relu acc", "gmm k"]
    return {k: out[k] for k in order if k in out}


def registered_by(settings: Settings, dataset: str, airflow_run_id: str) -> dict:
    """The model version a training run registered (its tags say which run) and what the registry decided."""
    name = f"{dataset}_classifier"
    v = _registered_by_run(settings, name, airflow_run_id)
    if v is None:
        return {"registered": "nothing"}
    return {
        "registered": f"{name} v{v.version} ({v.tags.get('algorithm')}, {v.tags.get('decision', '')})",
        **registry_outputs(settings, dataset),
    }


def experiment_urls(settings: Settings) -> dict[str, str]:
    """Every MLflow experiment with runs (``Default`` aside) -> its page in the MLflow UI."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    ui = settings.mlflow.server_url.rstrip("/")
    try:
        experiments = MlflowClient(settings.mlflow.server_url).search_experiments()
    except MlflowException:
        return {}
    return {e.name: f"{ui}/#/experiments/{e.experiment_id}" for e in experiments if e.name != "Default"}


def _version_of_run(settings: Settings, name: str, airflow_run_id: str | None) -> str:
    """``name vN (alias)`` of the model version an Airflow run registered, or ``nothing``."""
    from mlflow.exceptions import MlflowException

    try:
        v = _registered_by_run(settings, name, airflow_run_id)
    except MlflowException:
        return "nothing"
    if v is None:
        return "nothing"
    return f"{name} v{v.version} ({', '.join(v.aliases) or v.tags.get('decision', 'no alias')})"


def _registered_by_run(settings: Settings, name: str, airflow_run_id: str | None):
    """The first version of ``name`` whose ``airflow_run_id`` tag names this Airflow run; None if there is none."""
    from mlflow import MlflowClient

    versions = MlflowClient(settings.mlflow.server_url).search_model_versions(f"name = '{name}'")
    return next((v for v in versions if airflow_run_id and v.tags.get("airflow_run_id") == airflow_run_id), None)


def forecasting_outputs(settings: Settings, dataset: str, ds: str, airflow_run_id: str | None) -> dict:
    """The best forecaster by backtest, its MASE next to seasonal naive's, and what was registered."""
    try:
        board = Lake(settings.lake_root).read_partition(GOLD, f"{dataset}_forecast_leaderboard", ds).to_pandas()
    except FileNotFoundError:
        return {}
    ok = board[board["status"] == "ok"]
    metric = "mase_daily" if "mase_daily" in board else next((c for c in board if c.startswith("mase_")), None)
    out: dict = {"dataset": dataset, "models": len(board)}
    if len(ok) and metric:
        naive = ok.loc[ok["model"] == "seasonal_naive", metric]
        out["best"] = ok["model"].iloc[0]
        out["MASE"] = round(float(ok[metric].iloc[0]), 3)
        out["seasonal naive"] = round(float(naive.iloc[0]), 3) if len(naive) else "-"
    name = settings.forecasting.registered_model.format(dataset=dataset)
    out["registered"] = _version_of_run(settings, name, airflow_run_id)
    return out


def recommendation_outputs(settings: Settings, ratings: str, ds: str, airflow_run_id: str | None) -> dict:
    """The best ranking model, its NDCG@k, the top-N rows written to gold and what was registered."""
    from pipelines.recommendation.run import leaderboard_dataset, recommendations_dataset

    lake = Lake(settings.lake_root)
    try:
        board = lake.read_partition(GOLD, leaderboard_dataset(ratings), ds).to_pandas()
        top = lake.read_manifest(GOLD, recommendations_dataset(ratings), ds)
    except FileNotFoundError:
        return {}
    k = settings.recommendation.k
    ok = board[board["status"] == "ok"]
    out: dict = {"models": len(board)}
    if len(ok):
        out["best"] = ok["model"].iloc[0]
        out[f"NDCG@{k}"] = round(float(ok[f"ndcg_at_{k}"].iloc[0]), 4)
    out["top-N rows"] = top["rows"]
    out["registered"] = _version_of_run(settings, settings.recommendation.registered_model, airflow_run_id)
    return out


def monitoring_outputs(settings: Settings, result, traffic: dict | None) -> dict:
    """The day's traffic, the alerts stored for it and what became of ``trigger_training``."""
    from pipelines.monitoring import alerts

    out = {
        "traffic": traffic["rows"] if traffic else 0,
        "drift injected": "yes" if traffic and traffic["drifted"] else "no",
    }
    stored = alerts.read(Lake(settings.lake_root), settings.monitoring.model, result.ds)
    if stored is not None:
        out["alerts"] = len(stored)
        if len(stored):
            out["kinds"] = "/".join(sorted(set(stored["kind"])))
    if result.run_id:
        try:
            state = dagruns.task_states(dagruns.client(settings), "monitoring", result.run_id).get("trigger_training")
        except (dagruns.ApiError, OSError):
            state = None
        out["trigger_training"] = state or "-"
    return out
