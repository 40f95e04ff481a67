"""A replay through the real prediction API, then the monitoring step for each day (no Airflow): the
day the drift starts is detected, and the undrifted days raise no alert (false alerts counted: none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.config import load_settings
from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.lake import Lake
from pipelines.monitoring import alerts, run
from pipelines.serving import replay
from tests.unit.serving.registry_helpers import NAME, log_version, rows, sqlite_registry

DATES = ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06"]
DRIFT_FROM = "2026-01-05"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """A toy gold dataset (the reference and the held-out rows) and its champion in a sqlite registry."""

    tmp = tmp_path_factory.mktemp("replay")
    uri = sqlite_registry(tmp)
    log_version(uri)
    lake = Lake((tmp / "lake").as_uri())
    gold = rows(6000, seed=1)
    gold[ROW_ID] = np.arange(len(gold), dtype=np.uint64)
    gold[LABEL] = gold.pop("label").astype("int8")
    gold[SPLIT] = np.where(np.arange(len(gold)) % 2, "train", "test")
    lake.write_partition(
        GOLD, "toy", "2026-01-01", pa.Table.from_pandas(gold), {"numeric": ["age", "x1"], "categorical": ["city"]}
    )
    return load_settings(
        {
            "MLP_LAKE_ROOT": lake.root_uri,
            "MLP_STATE_DIR": str(tmp / "state"),
            "MLFLOW_TRACKING_URI": uri,
            "MLP_SERVING__MODEL": NAME,
            "MLP_MONITORING__MODEL": NAME,
            "MLP_MONITORING__REFERENCE_DATASET": "toy",
        }
    )


def test_inject_drift_keeps_integer_columns_integers():
    frame = pd.DataFrame({"age": [20, 30, 40, 50], "city": ["a", "b", "c", "a"]})
    out = replay.inject_drift(frame, shift={"age": 1.0}, replace={"city": "z"})
    assert out["age"].dtype == frame["age"].dtype and (out["age"] > frame["age"]).all()
    assert (out["city"] == "z").all() and frame["city"].tolist() == ["a", "b", "c", "a"]
    with pytest.raises(ValueError, match="colour"):
        replay.inject_drift(frame, shift={"colour": 1.0})


def test_the_drift_date_is_detected_and_undrifted_dates_raise_no_alert(settings):
    lake = Lake(settings.lake_root)
    held = replay.held_out(lake, "toy", "2026-01-01", seed=0)
    assert len(held) == 3000 and set(held.columns) >= {ROW_ID, LABEL, "age", "x1", "city"}
    with replay.in_process(settings) as (client, service):
        # A first replay of the first day, replaced by the one below (a re-run never doubles a day).
        replay.replay_days(
            client, service, held, DATES[:1], rows_per_day=500, drift_from=None, drift=None, lake=lake,
            model=NAME, labels_dataset="labels",
        )  # fmt: skip
        traffic = replay.replay_days(
            client, service, held, DATES, rows_per_day=500, drift_from=DRIFT_FROM,
            drift={"shift": {"x1": 1.5}, "fraction": 0.8}, lake=lake, model=NAME, labels_dataset="labels", seed=0,
        )  # fmt: skip
    assert traffic["drifted"].tolist() == [False, False, False, True, True]
    # Each day's traffic was logged on that day (the service's clock), with its labels.
    logged = run.predlog.read_predictions(lake, NAME)
    assert logged.groupby(pd.to_datetime(logged["_ts"]).dt.strftime("%Y-%m-%d")).size().to_dict() == dict.fromkeys(
        DATES, 500
    )

    for ds in DATES:
        summary = run.check(ds, settings=settings)
        assert summary["today"] == 500 and summary["labelled"] == 500 * (DATES.index(ds) + 1)
    report = alerts.detection_report(lake, NAME, DATES, DRIFT_FROM)
    assert report["detected"] and report["first_alert"] == DRIFT_FROM and report["missed"] == []
    assert report["false_alerts"] == 0 and report["false_alert_dates"] == [], report["days"]
    assert report["undrifted_dates"] == 3 and report["not_monitored"] == []
    assert [d["features"] for d in report["days"]] == [[], [], [], ["x1"], ["x1"]]
    assert [d["retrain"] for d in report["days"]] == [False, False, False, True, True]


def test_the_report_counts_false_alerts_and_missed_drift(tmp_path):
    lake = Lake(tmp_path.as_uri())
    alerts.store(lake, "m", "2026-01-01", [alerts.alert("2026-01-01", "m", alerts.ANOMALY, "rows", 0.1, 0.05, "x")])
    alerts.store(lake, "m", "2026-01-02", [])
    report = alerts.detection_report(lake, "m", ["2026-01-01", "2026-01-02", "2026-01-03"], "2026-01-02")
    assert report["false_alerts"] == 1 and report["false_alert_dates"] == ["2026-01-01"]
    assert report["first_alert"] == "2026-01-01" and report["detected"] is False
    assert report["missed"] == ["2026-01-02", "2026-01-03"] and report["not_monitored"] == ["2026-01-03"]


def test_prediction_drift_baseline_is_held_out_rows_so_an_overfit_champion_is_not_flagged(settings, tmp_path):
    """A random forest is near-certain on the rows it was fitted on: against its probabilities on those,
    its clean production traffic would look drifted. The baseline is the held-out (test split) rows."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from pipelines.monitoring import drift
    from pipelines.training.data import load_training_data

    lake = Lake(settings.lake_root)
    data = load_training_data(lake, "toy", "2026-01-01")
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough")
    forest = Pipeline([("prep", prep), ("model", RandomForestClassifier(50, random_state=0))])
    noisy = data.y_train.where(np.random.default_rng(0).random(len(data.y_train)) > 0.25, 1 - data.y_train)
    forest.fit(data.X_train, noisy)  # memorises the flipped labels: sure of itself on these rows only
    uri = f"sqlite:///{tmp_path}/overfit.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("training", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("training")
    with mlflow.start_run():
        X = data.X_train.head(5)
        info = mlflow.sklearn.log_model(
            forest,
            name="model",
            signature=infer_signature(X, forest.predict_proba(X)[:, 1]),
            input_example=X,
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
        )
    name = "overfit_classifier"  # its own prediction log, labels and alerts in the shared toy lake
    version = mlflow.register_model(info.model_uri, name).version
    MlflowClient(uri).set_registered_model_alias(name, "champion", version)
    overfit = load_settings(
        {
            "MLP_LAKE_ROOT": settings.lake_root,
            "MLP_STATE_DIR": str(tmp_path / "state"),
            "MLFLOW_TRACKING_URI": uri,
            "MLP_SERVING__MODEL": name,
            "MLP_MONITORING__MODEL": name,
            "MLP_MONITORING__REFERENCE_DATASET": "toy",
        }
    )

    day = "2026-01-02"
    held = replay.held_out(lake, "toy", "2026-01-01", seed=1)
    with replay.in_process(overfit) as (client, service):
        traffic = replay.replay_days(
            client, service, held, [day], rows_per_day=800, drift_from=None, drift=None, lake=lake,
            model=name, labels_dataset="labels",
        )  # fmt: skip
    logged = run.predlog.read_predictions(lake, name, day)["_probability"]
    on_fitted_rows = pd.Series(forest.predict_proba(data.X_train)[:, 1])
    trap = drift.psi(on_fitted_rows, logged)
    assert trap > 2 * settings.monitoring.psi_threshold, trap  # the trap is real
    summary = run.check(day, settings=overfit)
    assert summary["today"] == traffic["rows"].sum() == 800
    assert summary["prediction_psi"] < settings.monitoring.psi_threshold
    assert summary["alerts"] == 0
