"""The prediction API against a throwaway registry: validation, limits, logging, explanations, hot swap."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.config import load_settings
from pipelines.lake import Lake
from pipelines.serving.app import create_app
from pipelines.serving.predlog import read_predictions
from tests.unit.serving.registry_helpers import NAME, log_version, sqlite_registry

ROW = {"age": 40, "x1": 0.3, "city": "a"}


def _client(environ, **overrides):
    settings = load_settings({**environ, **overrides})
    return settings, TestClient(create_app(settings), base_url="http://localhost")


def test_predict_single_and_batch(store):
    environ, _, _ = store
    _, client = _client(environ)
    with client:
        one = client.post("/predict", json={**ROW, "unit_id": "u1"})
        assert one.status_code == 200, one.text
        [pred] = one.json()["predictions"]
        assert 0 <= pred["probability"] <= 1
        assert pred["version"] == "1" and pred["alias"] == "champion" and pred["arm"] == "champion"
        assert pred["unit_id"] == "u1"
        many = client.post("/predict", json=[ROW, {**ROW, "city": None, "x1": -2}, {**ROW, "age": 70}])
        assert many.status_code == 200, many.text
        assert len(many.json()["predictions"]) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"age": 40, "city": "a"}, "x1"),  # missing
        ({**ROW, "x1": "high"}, "x1"),  # mistyped
        ({**ROW, "age": 40.5}, "age"),  # not an integer
        ({**ROW, "city": 3}, "city"),  # not a string
        ({**ROW, "colour": "red"}, "colour"),  # unknown
    ],
)
def test_bad_rows_get_422_naming_the_field(store, body, field):
    environ, _, _ = store
    _, client = _client(environ)
    with client:
        response = client.post("/predict", json=body)
        assert response.status_code == 422, response.text
        assert any(e["loc"][-1] == field for e in response.json()["detail"]), response.text
        response = client.post("/predict", json=[ROW, body])
        assert response.status_code == 422
        assert any(e["loc"][1] == 1 and e["loc"][-1] == field for e in response.json()["detail"])


def test_oversized_and_malformed_bodies(store):
    environ, _, _ = store
    _, client = _client(environ, MLP_SERVING__MAX_BODY_BYTES="1000")
    with client:
        big = client.post("/predict", json=[ROW] * 100)
        assert big.status_code == 413 and "1000" in big.json()["detail"]
        bad = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "JSON" in bad.json()["detail"]
        assert client.post("/predict", json=[]).status_code == 422


def test_model_health_docs(store):
    environ, _, _ = store
    _, client = _client(environ)
    with client:
        info = client.get("/model").json()
        assert info["name"] == NAME and info["alias"] == "champion" and info["version"] == "1"
        assert info["fast_path"].startswith("on: matched the pipeline"), info["fast_path"]
        assert [(f["name"], f["type"]) for f in info["features"]] == [
            ("age", "long"),
            ("x1", "double"),
            ("city", "string"),
        ]
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["models"] == {"champion": "1"}
        schema = client.get("/openapi.json").json()
        body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert "x1" in json.dumps(body)
        assert client.get("/docs").status_code == 200


def test_explain_returns_contributions_per_raw_feature(store):
    environ, _, _ = store
    _, client = _client(environ)
    with client:
        response = client.post("/explain", json=ROW)
        assert response.status_code == 200, response.text
        out = response.json()
        assert set(out["contributions"]) == {"age", "x1", "city"}
        assert out["output"] == pytest.approx(out["base_value"] + sum(out["contributions"].values()), abs=1e-6)
        assert client.post("/explain", json=[ROW, ROW]).status_code == 422
        binary = client.post("/explain", params={"class": "1"}, json=ROW)  # a binary model names no class
        assert binary.status_code == 422 and binary.json()["detail"][0]["loc"] == ["query", "class"], binary.text


def test_a_multiclass_model_explains_the_predicted_class_or_the_one_named(tmp_path):
    uri = sqlite_registry(tmp_path)
    log_version(uri, name="toy_multiclass", multiclass=True)
    environ = {"MLP_LAKE_ROOT": str(tmp_path / "lake"), "MLP_STATE_DIR": str(tmp_path / "state")}
    _, client = _client({**environ, "MLFLOW_TRACKING_URI": uri, "MLP_SERVING__MODEL": "toy_multiclass"})
    with client:
        [pred] = client.post("/predict", json=ROW).json()["predictions"]
        predicted = max(pred["probabilities"], key=pred["probabilities"].get)
        out = client.post("/explain", json=ROW).json()
        assert out["class"] == predicted and set(out["contributions"]) == {"age", "x1", "city"}
        assert out["probability"] == pytest.approx(pred["probabilities"][predicted], abs=1e-9)
        assert out["output"] == pytest.approx(out["base_value"] + sum(out["contributions"].values()), abs=1e-6)
        other = next(c for c in ("low", "mid", "high") if c != predicted)
        named = client.post("/explain", params={"class": other}, json=ROW).json()
        assert named["class"] == other
        assert named["probability"] == pytest.approx(pred["probabilities"][other], abs=1e-9)
        bad = client.post("/explain", params={"class": "medium"}, json=ROW)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "class"], bad.text
        assert all(c in bad.json()["detail"][0]["msg"] for c in ("low", "mid", "high")), bad.text


def test_predictions_are_logged_to_parquet(store):
    environ, _, tmp = store
    settings, client = _client(environ, MLP_SERVING__LOG_FLUSH_INTERVAL_S="60", MLP_SERVING__LOG_BATCH_ROWS="1000")
    lake = Lake(settings.lake_root)
    before = len(read_predictions(lake, NAME))
    with client:
        for i in range(7):
            assert client.post("/predict", json={**ROW, "unit_id": f"log{i}"}).status_code == 200
        assert client.post("/predict", json=[ROW, ROW]).status_code == 200
    # leaving the client shuts the app down: the writer flushes what it holds
    logged = read_predictions(lake, NAME)
    assert len(logged) - before == 9
    new = logged[logged["_unit_id"].str.startswith("log")]
    assert sorted(new["_unit_id"]) == [f"log{i}" for i in range(7)]
    assert {"_request_id", "_ts", "_model_version", "_arm", "_probability", "age", "x1", "city"} <= set(logged.columns)
    assert (new["_model_version"] == "1").all() and new["_probability"].between(0, 1).all()


def test_a_moved_champion_is_served_after_a_poll(store):
    environ, uri, _ = store
    _, client = _client(environ, MLP_SERVING__RELOAD_INTERVAL_S="0.2")
    with client:
        assert client.get("/model").json()["version"] == "1"
        new = log_version(uri, C=0.01)
        deadline = time.monotonic() + 20
        while client.get("/model").json()["version"] != new and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/model").json()["version"] == new
        assert client.post("/predict", json=ROW).json()["predictions"][0]["version"] == new
        # back to version 1 so the module's other tests see it
        from mlflow import MlflowClient

        MlflowClient(uri).set_registered_model_alias(NAME, "champion", "1")


def test_ab_test_routes_by_unit_and_records_the_arm(store):
    environ, uri, _ = store
    challenger = log_version(uri, C=0.05, alias="challenger")
    _, client = _client(environ, MLP_SERVING__AB__EXPERIMENT="exp1", MLP_SERVING__AB__CHALLENGER_FRACTION="0.5")
    with client:
        assert client.get("/model").json()["ab_test"]["challenger_version"] == challenger
        out = client.post("/predict", json=[{**ROW, "unit_id": f"u{i}"} for i in range(60)]).json()["predictions"]
        arms = {p["arm"] for p in out}
        assert arms == {"champion", "challenger"}
        assert all((p["arm"] == "challenger") == (p["version"] == challenger) for p in out)
        again = client.post("/predict", json=[{**ROW, "unit_id": f"u{i}"} for i in range(60)]).json()["predictions"]
        assert [p["arm"] for p in again] == [p["arm"] for p in out]


def test_replay_with_injected_drift_then_labels(store):
    from pipelines.monitoring.run import read_labels, write_labels
    from pipelines.serving.replay import inject_drift, replay
    from tests.unit.serving.registry_helpers import rows

    environ, _, _ = store
    settings, client = _client(environ)
    data = rows(120, seed=5)
    drifted = inject_drift(data, shift={"x1": 3.0}, replace={"city": "zz"}, fraction=0.5, seed=1)
    assert (drifted["x1"] > data["x1"]).mean() == pytest.approx(0.5, abs=0.15)
    units = [f"r{i}" for i in range(len(data))]
    with client:
        out = replay(client, drifted[["age", "x1", "city"]], units, batch_size=50)
    assert out["unit_id"].tolist() == units and out["probability"].between(0, 1).all()
    lake = Lake(settings.lake_root)
    write_labels(lake, "labels", NAME, "2026-01-02", pd.DataFrame({"unit_id": units, "label": data["label"]}))
    assert len(read_labels(lake, "labels", NAME)) == 120
    with pytest.raises(ValueError, match="colour"):
        inject_drift(data, replace={"colour": "red"})


def test_serve_without_a_champion_names_the_model_and_alias(tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("MLP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLP_SERVING__MODEL", "nobody")
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "'nobody'" in err and "'champion'" in err and "training DAG" in err
