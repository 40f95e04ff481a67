"""The shared register-and-promote: the policy on its own, then against a throwaway MLflow store with
tiny real pyfunc models (each predicts a constant), every registration run again as a retry would."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.constants import CHALLENGER, CHAMPION
from pipelines.registry import (
    RECORD_ARTIFACT,
    RESCORE,
    Policy,
    RegistryError,
    log_decision,
    register_and_promote,
)

# ---- the policy -------------------------------------------------------------------------------------


def test_a_higher_is_better_gate_is_a_least_score():
    policy = Policy("ndcg_at_10", gate=0.1)
    assert policy.gate_failure(0.05) == "ndcg_at_10 0.05 is below the gate 0.1"
    assert policy.gate_failure(0.1) is None and policy.gate_failure(0.3) is None


def test_a_lower_is_better_gate_is_a_bound_to_stay_under_and_baselines_must_be_beaten():
    policy = Policy("mase_daily", higher_is_better=False, gate=1.0)
    assert policy.gate_failure(1.0) == "mase_daily 1 is not below the gate 1"
    assert policy.gate_failure(0.99) is None
    naive = {"seasonal naive": 0.8}
    assert policy.gate_failure(0.8, naive) == "mase_daily 0.8 does not beat seasonal naive (0.8)"
    assert policy.gate_failure(0.79, naive) is None
    assert policy.gate_failure(0.79, {"seasonal naive": None}) is None  # the baseline did not run


@pytest.mark.parametrize("score", [None, math.nan, math.inf])
def test_an_undefined_score_fails_the_gate(score):
    assert "undefined" in Policy("mase_daily", higher_is_better=False).gate_failure(score)


def test_beating_the_champion_needs_a_gain_of_at_least_the_margin_and_a_tie_never_wins():
    higher = Policy("auc")
    assert not higher.beats(0.9, 0.9) and higher.beats(0.9001, 0.9) and not higher.beats(0.89, 0.9)
    margin = Policy("auc", margin=0.01)
    assert not margin.beats(0.905, 0.9) and margin.beats(0.91, 0.9)
    lower = Policy("mase", higher_is_better=False, margin=0.05)
    assert lower.beats(0.5, 0.6) and not lower.beats(0.56, 0.6) and not lower.beats(0.6, 0.5)


def test_a_policy_that_cannot_work_is_refused():
    with pytest.raises(RegistryError, match="champion_by"):
        Policy("auc", champion_by="guess")
    with pytest.raises(RegistryError, match="margin"):
        Policy("auc", margin=-0.1)


# ---- against a store --------------------------------------------------------------------------------


class Constant(mlflow.pyfunc.PythonModel):
    def __init__(self, value: float):
        self.value = value

    def predict(self, context, model_input, params=None):
        return np.full(len(model_input), self.value)


@pytest.fixture(scope="module")
def _store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{tmp}/m.db"
    MlflowClient(uri).create_experiment("registry", artifact_location=(tmp / "artifacts").as_uri())
    return uri


@pytest.fixture
def store(_store):
    """One store for the module (creating one takes seconds); each test registers its own model names."""
    mlflow.set_tracking_uri(_store)
    mlflow.set_experiment("registry")
    return _store


@pytest.fixture
def m(request) -> str:
    """This test's registered model name."""
    return request.node.name.removeprefix("test_")[:60]


def _logged(value: float) -> tuple[str, str]:
    """A run that logged a model predicting ``value``: (run id, model URI)."""
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(value), pip_requirements=[])
    return run.info.run_id, info.model_uri


def _score(uri: str) -> float:
    return float(mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"x": [0.0]}))[0])


def _state(store: str, name: str) -> tuple[list[int], dict]:
    client = MlflowClient(store)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    return versions, dict(client.get_registered_model(name).aliases) if versions else {}


def _twice(*args, **kwargs) -> dict:
    """Register, then again as a retry would; both give the same record."""
    first = register_and_promote(*args, **kwargs).record()
    assert register_and_promote(*args, **kwargs).record() == first
    return first


def test_stored_scores_champion_then_challenger_then_a_new_champion_each_retried(store, m):
    policy = Policy("accuracy")
    r1, m1 = _logged(0.8)
    first = _twice(store, m, policy, r1, m1, score=0.8, tags={"model": "a"})
    assert first["alias"] == CHAMPION and first["reason"] == "no champion yet" and first["version"] == "1"
    assert _state(store, m) == ([1], {CHAMPION: 1})

    r2, m2 = _logged(0.8)
    tie = _twice(store, m, policy, r2, m2, score=0.8)
    assert tie["alias"] == CHALLENGER and not tie["promoted"]
    assert tie["reason"] == "accuracy 0.80000 does not beat champion version 1 (0.80000)"
    assert (tie["champion_version"], tie["champion_score"]) == ("1", 0.8)
    assert _state(store, m) == ([1, 2], {CHAMPION: 1, CHALLENGER: 2})

    r3, m3 = _logged(0.9)
    better = _twice(store, m, policy, r3, m3, score=0.9)
    assert better["promoted"] and better["version"] == "3" and "beats champion version 1" in better["reason"]
    assert _state(store, m) == ([1, 2, 3], {CHAMPION: 3, CHALLENGER: 2})

    tags = MlflowClient(store).get_model_version(m, "1").tags
    assert tags["model"] == "a" and tags["accuracy"] == "0.8" and tags["decision"] == "promoted to champion"


def test_rescore_scores_both_models_and_the_new_one_is_always_the_challenger_too(store, m):
    policy = Policy("value", champion_by=RESCORE, margin=0.05, challenger_too=True)
    for value, alias, reason in [
        (0.5, {CHAMPION: 1, CHALLENGER: 1}, "no champion yet"),
        (
            0.52,
            {CHAMPION: 1, CHALLENGER: 2},
            "value 0.52000 does not beat champion version 1 (0.50000) by the margin 0.05",
        ),
        (0.6, {CHAMPION: 3, CHALLENGER: 3}, "value 0.60000 beats champion version 1 (0.50000) by the margin 0.05"),
    ]:
        run_id, uri = _logged(value)
        record = _twice(store, m, policy, run_id, uri, scorer=_score)
        assert record["score"] == value and record["reason"] == reason
        assert _state(store, m)[1] == alias
    with pytest.raises(RegistryError, match="give a scorer"):
        register_and_promote(store, m, policy, run_id, uri, score=0.6)


def test_a_gate_failure_registers_nothing_or_only_a_challenger(store, m):
    calls = []

    def log() -> str:
        calls.append(1)
        return _logged(1.2)[1]

    with mlflow.start_run() as run:
        pass
    policy = Policy("mase_daily", higher_is_better=False, gate=1.0)
    out = _twice(store, f"{m}_forecaster", policy, run.info.run_id, log, score=1.2)
    assert not out["registered"] and out["alias"] is None and "not below the gate" in out["reason"]
    assert calls == [] and MlflowClient(store).search_model_versions(f"name = '{m}_forecaster'") == []

    failing = Policy("ndcg_at_10", gate=0.5, register_failing=True)
    r1, m1 = _logged(0.3)
    out = _twice(store, m, failing, r1, m1, score=0.3)
    assert out["alias"] == CHALLENGER and out["reason"] == "ndcg_at_10 0.3 is below the gate 0.5"
    assert _state(store, m) == ([1], {CHALLENGER: 1})


def test_stored_scores_compare_only_on_the_same_comparability_key(store, m):
    policy = Policy("mase_daily", higher_is_better=False, comparable_by="backtest_key")
    for value, key, alias in [(0.5, "a", CHAMPION), (0.6, "a", CHALLENGER), (0.9, "b", CHAMPION)]:
        run_id, uri = _logged(value)
        record = _twice(store, m, policy, run_id, uri, score=value, tags={"backtest_key": key})
        assert record["alias"] == alias
    assert "backtest_key differs" in record["reason"] and record["champion_score"] is None
    with pytest.raises(RegistryError, match="pass it in tags"):
        register_and_promote(store, m, policy, run_id, uri, score=0.4)


def test_the_model_is_logged_only_when_its_run_has_no_version_yet(store, m):
    calls = []
    with mlflow.start_run() as run:
        pass

    def log() -> str:
        calls.append(1)
        with mlflow.start_run(run_id=run.info.run_id):
            return mlflow.pyfunc.log_model(name="model", python_model=Constant(0.7), pip_requirements=[]).model_uri

    for _ in range(3):  # the first try and two retries
        assert register_and_promote(store, m, Policy("accuracy"), run.info.run_id, log, score=0.7).version == "1"
    assert calls == [1]


def test_a_retry_completes_missing_alias_moves_but_never_takes_one_back(store, m):
    policy = Policy("accuracy")
    r1, m1 = _logged(0.8)
    register_and_promote(store, m, policy, r1, m1, score=0.8)
    client = MlflowClient(store)
    client.delete_registered_model_alias(m, CHAMPION)  # as if the first try died before moving it
    assert register_and_promote(store, m, policy, r1, m1, score=0.8).alias == CHAMPION
    assert _state(store, m) == ([1], {CHAMPION: 1})

    r2, m2 = _logged(0.9)
    register_and_promote(store, m, policy, r2, m2, score=0.9)
    client.delete_registered_model_alias(m, CHAMPION)
    client.set_registered_model_alias(m, CHAMPION, "2")
    late = register_and_promote(store, m, policy, r1, m1, score=0.8)  # run 1 retried after run 2 promoted
    assert late.alias == CHAMPION and _state(store, m) == ([1, 2], {CHAMPION: 2})


def test_a_model_logged_by_another_run_is_refused(store, m):
    _, uri = _logged(0.8)
    with mlflow.start_run() as other:
        pass
    with pytest.raises(RegistryError, match="was logged by run .* not " + other.info.run_id):
        register_and_promote(store, m, Policy("accuracy"), other.info.run_id, uri, score=0.8)


def test_the_decision_is_logged_on_the_dag_run_the_same_way_each_time(store, m):
    r1, m1 = _logged(0.8)
    with mlflow.start_run() as parent:
        pass
    for _ in range(2):
        decision = register_and_promote(store, m, Policy("accuracy"), r1, m1, score=0.8)
        log_decision(store, parent.info.run_id, decision)
    run = MlflowClient(store).get_run(parent.info.run_id)
    assert {k: run.data.tags[k] for k in ("registered_model", "registered_version", "alias", "promoted")} == {
        "registered_model": m,
        "registered_version": "1",
        "alias": CHAMPION,
        "promoted": "true",
    }
    assert mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/{RECORD_ARTIFACT}") == decision.record()
