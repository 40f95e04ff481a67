"""The data contract of the served model's dataset checked on every request: reject (422 naming field and
rule), flag (scored; the response and the logged row carry the violations) or off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.config import load_settings
from pipelines.lake import Lake
from pipelines.serving.app import VIOLATIONS, create_app
from pipelines.serving.predlog import read_predictions

NAME = "adultish_classifier"
GOOD = {"age": 40, "hours_per_week": 40, "workclass": "Private", "gender": "Female"}


def _log_adultish(tracking_uri: str) -> None:
    """A training-DAG pipeline on four of UCI Adult's columns, registered with the tag the training DAG
    sets (``dataset: adult``): the contract include/config/contracts/adult.yaml applies."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from pipelines.training import algorithms

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "age": rng.integers(17, 90, n).astype("int64"),
            "hours_per_week": rng.integers(1, 99, n).astype("int64"),
            "workclass": rng.choice(["Private", "State-gov", "Self-emp-inc"], n).astype(object),
            "gender": rng.choice(["Male", "Female"], n).astype(object),
        }
    )
    y = ((X["age"] > 40) ^ (X["gender"] == "Male") ^ (rng.random(n) < 0.1)).astype(int)
    spec = algorithms.FeatureSpec(numeric=["age", "hours_per_week"], categorical=["workclass", "gender"])
    model = algorithms.build("logreg", spec, seed=0).fit(X, y)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X.head(5), model.predict_proba(X.head(5))[:, 1]),
            input_example=X.head(5),
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
            pip_requirements=["scikit-learn"],
        )
    version = mlflow.register_model(info.model_uri, NAME, tags={"dataset": "adult"})
    MlflowClient(tracking_uri).set_registered_model_alias(NAME, "champion", version.version)


@pytest.fixture(scope="module")
def adultish(store):
    environ, uri, _ = store
    _log_adultish(uri)
    return {**environ, "MLP_SERVING__MODEL": NAME}


def _client(environ: dict, policy: str):
    settings = load_settings({**environ, "MLP_SERVING__CONTRACT_POLICY": policy})
    return settings, TestClient(create_app(settings), base_url="http://localhost")


BROKEN = [  # (row, field, rule)
    ({**GOOD, "age": 10**18}, "age", "max"),
    ({**GOOD, "hours_per_week": 0}, "hours_per_week", "min"),
    ({**GOOD, "gender": "?"}, "gender", "allowed"),
    ({**GOOD, "workclass": "Astronaut"}, "workclass", "allowed"),
    ({**GOOD, "gender": None}, "gender", "nullable"),
]


def test_model_shows_the_contract_it_checks(adultish):
    _, client = _client(adultish, "reject")
    with client:
        info = client.get("/model").json()
    assert info["contract"].startswith("adult ") and info["contract_policy"] == "reject"
    rules = {f["name"]: f["contract"] for f in info["features"]}
    assert rules["age"] == {"nullable": False, "min": 17, "max": 100, "allowed": None}
    assert rules["workclass"]["nullable"] is True and "Private" in rules["workclass"]["allowed"]


def test_reject_names_the_field_and_rule(adultish):
    _, client = _client(adultish, "reject")
    with client:
        assert client.post("/predict", json=GOOD).json()["predictions"][0]["violations"] == []
        for row, field, rule in BROKEN:
            response = client.post("/predict", json=row)
            assert response.status_code == 422, response.text
            [error] = response.json()["detail"]
            assert error["loc"] == ["body", field] and error["type"] == f"contract_{rule}", error
            response = client.post("/predict", json=[GOOD] * 70 + [row])  # the pipeline's batch path
            assert [e["loc"] for e in response.json()["detail"]] == [["body", 70, field]]
            assert client.post("/explain", json=row).status_code == 422
        everything_null = dict.fromkeys(GOOD)
        response = client.post("/predict", json=everything_null)
        assert response.status_code == 422
        # workclass may be null (the contract says nullable); the other three may not
        assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
            ("body", "age"),
            ("body", "hours_per_week"),
            ("body", "gender"),
        }


def test_flag_scores_and_marks_the_row_in_the_answer_and_the_log(adultish):
    settings, client = _client(adultish, "flag")
    lake = Lake(settings.lake_root)
    with client:
        rows = [{**row, "unit_id": f"flag-{i}"} for i, (row, _, _) in enumerate(BROKEN)]
        answer = client.post("/predict", json=[*rows, {**GOOD, "unit_id": "flag-ok"}])
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        for prediction, (_, field, rule) in zip(predictions, BROKEN, strict=False):
            assert [(v["field"], v["rule"]) for v in prediction["violations"]] == [(field, rule)]
            assert 0 <= prediction["probability"] <= 1
        assert predictions[-1]["violations"] == []
    logged = read_predictions(lake, NAME).set_index("_unit_id")  # leaving the client flushed the log
    for i, (_, field, _) in enumerate(BROKEN):
        assert logged.loc[f"flag-{i}", VIOLATIONS].startswith(f"{field}: ")
    assert pd.isna(logged.loc["flag-ok", VIOLATIONS])


def test_off_scores_without_checking(adultish):
    _, client = _client(adultish, "off")
    with client:
        answer = client.post("/predict", json=[row for row, _, _ in BROKEN])
        assert answer.status_code == 200 and all(p["violations"] == [] for p in answer.json()["predictions"])
        assert client.post("/predict", json={**GOOD, "age": True}).status_code == 422  # types are always checked
