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
from tests.unit.serving.registry_helpers import NAME, log_version, rows

DATES = ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06"]
DRIFT_FROM = "2026-01-05"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """A toy gold dataset (the reference and the held-out rows) and its champion in a sqlite registry."""
    import mlflow

    tmp = tmp_path_factory.mktemp("replay")
    uri = f"sqlite:///{tmp}/m.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("training", artifact_location=(tmp / "artifacts").as_uri())
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
