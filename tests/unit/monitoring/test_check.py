"""The monitoring step end to end on a synthetic lake: prediction log + labels + gold reference -> alerts and retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.config import load_settings
from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.lake import Lake
from pipelines.monitoring import run
from pipelines.serving import ab, predlog

MODEL = "toy_classifier"


def _features(n, rng, shift=0.0):
    return pd.DataFrame({"x1": rng.normal(shift, 1, n), "city": rng.choice(["a", "b", "c"], n)})


@pytest.fixture
def env(tmp_path):
    rng = np.random.default_rng(0)
    lake = Lake((tmp_path / "lake").as_uri())
    gold = _features(2000, rng)
    gold[ROW_ID] = np.arange(2000, dtype=np.uint64)
    gold[LABEL] = rng.integers(0, 2, 2000).astype("int8")
    gold[SPLIT] = "train"
    lake.write_partition(
        GOLD, "toy", "2026-01-01", pa.Table.from_pandas(gold), {"numeric": ["x1"], "categorical": ["city"]}
    )
    settings = load_settings(
        {
            "MLP_LAKE_ROOT": lake.root_uri,
            "MLP_STATE_DIR": str(tmp_path / "state"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
            "MLP_MONITORING__MODEL": MODEL,
            "MLP_MONITORING__REFERENCE_DATASET": "toy",
            "MLP_MONITORING__WINDOW": "3",
        }
    )
    return settings, lake, rng


def _log_day(lake, rng, day: int, n: int, signal: float, shift: float = 0.0) -> None:
    """A day of logged predictions and their labels (signal: how well the probabilities separate them)."""
    ds = f"2026-01-{day:02d}"
    frame = _features(n, rng, shift)
    y = rng.integers(0, 2, n)
    units = [f"{ds}-{i}" for i in range(n)]
    log = predlog.PredictionLogger(lake, MODEL)
    ts = pd.Timestamp(f"{ds} 12:00", tz="UTC")
    proba = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    log.log(
        [
            {predlog.TS: ts, predlog.UNIT_ID: u, predlog.PROBABILITY: float(p), predlog.VERSION: "1", **row}
            for u, p, row in zip(units, proba, frame.to_dict("records"), strict=True)
        ]
    )
    log.close()
    run.write_labels(lake, "labels", MODEL, ds, pd.DataFrame({"unit_id": units, "label": y}))


def test_steady_traffic_raises_no_alert(env):
    settings, lake, rng = env
    for day in range(1, 7):
        _log_day(lake, rng, day, 300, signal=1.0)
    out = run.check("2026-01-06", settings=settings)
    assert out["labelled"] == 1800 and out["today"] == 300
    assert not out["degradation"]["degraded"] and out["drifted_features"] == []
    assert out["alerts"] == 0 and out["retrain"] is False
    assert "prediction_psi" not in out  # no registered champion to score the reference with


def test_degradation_and_drift_alert_and_ask_for_retraining(env):
    settings, lake, rng = env
    for day in range(1, 4):
        _log_day(lake, rng, day, 300, signal=1.5)
    for day in range(4, 7):
        _log_day(lake, rng, day, 300, signal=0.2, shift=2.0 if day == 6 else 0.0)
    out = run.check("2026-01-06", settings=settings)
    assert out["degradation"]["degraded"], out["degradation"]
    assert out["drifted_features"] == ["x1"]
    assert out["anomaly"]["anomalous"]
    assert out["retrain"] is True
    stored = lake.read_parquet(f"monitoring/{MODEL}_alerts/ds=2026-01-06/alerts.parquet").to_pandas()
    assert {"degradation", "feature_drift", "anomaly"} <= set(stored["kind"])
    # Re-running the date replaces its alerts rather than adding to them.
    again = run.check("2026-01-06", settings=settings)
    assert again["alerts"] == out["alerts"]
    assert len(lake.read_parquet(f"monitoring/{MODEL}_alerts/ds=2026-01-06/alerts.parquet")) == out["alerts"]


def test_no_traffic_yet_is_not_an_error(env):
    settings, lake, _ = env
    out = run.check("2026-01-01", settings=settings)
    assert out["predictions"] == 0 and out["labelled"] == 0 and out["alerts"] == 0 and out["retrain"] is False


def test_ab_arms_in_the_log_are_analysed(env):
    settings, lake, rng = env
    n = 600
    units = [f"ab-{i}" for i in range(n)]
    arms = ["challenger" if ab.assign("exp", u, 0.5) == "challenger" else "champion" for u in units]
    y = rng.integers(0, 2, n)
    signal = np.where(np.array(arms) == "challenger", 2.0, 0.2)
    proba = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    frame = _features(n, rng)
    log = predlog.PredictionLogger(lake, MODEL)
    log.log(
        [
            {predlog.TS: pd.Timestamp("2026-01-03 08:00", tz="UTC"), predlog.UNIT_ID: u, predlog.ARM: a,
             predlog.PROBABILITY: float(p), **row}
            for u, a, p, row in zip(units, arms, proba, frame.to_dict("records"), strict=True)
        ]
    )  # fmt: skip
    log.close()
    run.write_labels(lake, "labels", MODEL, "2026-01-03", pd.DataFrame({"unit_id": units, "label": y}))
    out = run.check("2026-01-03", settings=settings)
    assert out["ab_test"]["recommendation"] == "promote", out["ab_test"]["reason"]
    assert out["ab_test"]["arms"]["challenger"]["rows"] + out["ab_test"]["arms"]["champion"]["rows"] == n


def test_class_name_labels_skip_degradation_saying_why_and_drift_is_still_checked(env):
    settings, lake, rng = env
    for day in range(1, 7):
        _log_day(lake, rng, day, 300, signal=1.0, shift=2.0 if day == 6 else 0.0)
        ds = f"2026-01-{day:02d}"
        units = [f"{ds}-{i}" for i in range(300)]
        names = rng.choice(["barolo", "barbera", "grignolino"], 300)
        # a user's label file holds the class names as they are (the demo's write_labels casts to int)
        lake.write_parquet(
            f"labels/{MODEL}/ds={ds}/labels.parquet",
            pa.Table.from_pandas(pd.DataFrame({"unit_id": units, "label": names})),
        )
    out = run.check("2026-01-06", settings=settings)
    assert out["labelled"] == 1800
    assert out["degradation"] == {"degraded": False, "reason": run.NOT_BINARY}
    assert out["drifted_features"] == ["x1"] and out["alerts"] >= 1


def test_the_prediction_drift_baseline_is_what_the_service_logs(tmp_path):
    import mlflow

    from tests.unit.serving.registry_helpers import FEATURES, log_version, rows, sqlite_registry

    uri = sqlite_registry(tmp_path)
    settings = load_settings({"MLFLOW_TRACKING_URI": uri, "MLP_STATE_DIR": str(tmp_path / "state")})
    held_out = rows(200, seed=1)[FEATURES]
    for name, multiclass in (("toy_binary", False), ("toy_multiclass", True)):
        log_version(uri, name=name, multiclass=multiclass)
        proba = mlflow.sklearn.load_model(f"models:/{name}@champion").predict_proba(held_out)
        expected = proba.max(axis=1) if multiclass else proba[:, 1]  # serving's "probability"
        baseline = run._reference_probabilities(settings, name, held_out)
        np.testing.assert_allclose(baseline.to_numpy(), expected)
