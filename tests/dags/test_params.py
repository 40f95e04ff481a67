"""One source of truth per knob: every DAG Param default is what the DAG's pipeline does without the
Param, and a setting (an ``MLP_`` override or a settings overlay) reaches a DAG run's effective
parameters.

Each DAG's Params are resolved by one pure function of its package, called by the task that starts
the run (``RESOLVERS``); an empty Param (None, "", [], {}) takes the setting. The DAG files are
parsed by Airflow's DagBag, so the defaults checked are the ones a triggered run receives.
"""

from __future__ import annotations

import pytest

from pipelines import features
from pipelines.deep.steps import image_params, sentiment_params
from pipelines.forecasting.run import dataset_of
from pipelines.forecasting.run import run_params as forecasting_params
from pipelines.monitoring.run import run_params as monitoring_params
from pipelines.recommendation.run import check_params as recommendation_params
from pipelines.steps.params import fill, is_empty
from pipelines.training.run import run_params as training_params
from tests.dags import test_integrity as integrity
from tests.unit.settings import tmp_settings

airflow_home = integrity.airflow_home  # the session fixture: Airflow in a tmp home

# dag_id -> the function its first task resolves the run's Params with: (params, settings) -> effective.
RESOLVERS = {
    "features": lambda params, settings: {"dataset": features.dataset_of(params.get("dataset"), settings)},
    "forecasting": lambda params, settings: {
        **forecasting_params(params, settings),
        "dataset": dataset_of(params.get("dataset"), settings),  # prepare's first line
    },
    "monitoring": monitoring_params,
    "recommendation": lambda params, settings: recommendation_params(params),
    "training": training_params,
    "sentiment": sentiment_params,
    "image": image_params,
}
# Params a run reads as they are, with no setting behind them (the date, the feed switches).
PLAIN = {
    "features": {"simulate_feed", "land_source"},
    "forecasting": {"ds"},
    "monitoring": {"retrain", "training_conf"},
    "recommendation": set(),
    "training": {"dataset"},
    "sentiment": set(),
    "image": set(),
}


@pytest.fixture(scope="module")
def dag_params(airflow_home) -> dict[str, dict]:
    """dag_id -> the Params a run triggered without conf receives."""
    out = {}
    for path in integrity.DAG_FILES:
        bag = integrity.load_dagbag(path)
        assert not bag.import_errors, bag.import_errors
        for dag_id, dag in bag.dags.items():
            out[dag_id] = {key: dag.params[key] for key in dag.params}
    return out


def test_every_dag_has_a_resolver_or_is_listed(dag_params):
    assert set(dag_params) == set(PLAIN)
    for dag_id, params in dag_params.items():
        if dag_id not in RESOLVERS:
            assert set(params) <= PLAIN[dag_id], (dag_id, set(params) - PLAIN[dag_id])


@pytest.mark.parametrize("dag_id", sorted(RESOLVERS))
def test_every_param_default_is_what_the_pipeline_does_without_it(dag_params, dag_id, tmp_path):
    settings = tmp_settings(tmp_path)
    resolve = RESOLVERS[dag_id]
    defaults = dag_params[dag_id]
    without = resolve({}, settings)
    assert resolve(defaults, settings) == without
    # ... and each Param is a knob of the resolver (a Param it drops would do nothing).
    unknown = set(defaults) - set(without) - PLAIN[dag_id]
    assert not unknown, f"{dag_id}: Params {sorted(unknown)} are not resolved by the pipeline"


@pytest.mark.parametrize("dag_id", sorted(RESOLVERS))
def test_a_param_given_wins_over_the_setting(dag_params, dag_id, tmp_path):
    """The other direction: a value in the form is not replaced by the setting (else the Param is dead)."""
    settings = tmp_settings(tmp_path)
    resolve = RESOLVERS[dag_id]
    given = {
        "forecasting": {"horizon": 9, "models": ["theta"]},
        "monitoring": {"window": 3, "psi_threshold": 0.5},
        "recommendation": {"top_n": 7, "models": ["popularity"]},
        "training": {"cv_folds": 3, "gate": {"cv_roc_auc": "> 0.5"}},
        "sentiment": {"epochs": 2, "dataset": "mine"},
        "image": {"patience": 2, "seeds": 3},
        "features": {"dataset": "mine"},
    }[dag_id]
    effective = resolve({**dag_params[dag_id], **given}, settings)
    assert {k: effective[k] for k in given} == given


OVERLAY = """\
features:
  dataset: my_table
forecasting:
  dataset: my_sales
  models: [seasonal_naive, theta]
  seq_len: 20
  backtest_folds: 3
  backtest_step: 7
  max_epochs: 9
  patience: 2
monitoring:
  model: my_model
  psi_threshold: 0.3
deep:
  sentiment_dataset: my_reviews
  image_dataset: digits
  image_patience: 2
"""
# Every setting a DAG Param stands for: a Param default that hid one of them would fail the test.
EXPECTED = {
    "features": {"dataset": "my_table"},
    "forecasting": {
        "dataset": "my_sales",
        "models": ["seasonal_naive", "theta"],
        "horizon": 14,
        "seq_len": 20,
        "backtest_folds": 3,
        "backtest_step": 7,
        "tuning_calls": 0,
        "max_epochs": 9,
        "patience": 2,
    },
    "monitoring": {"model": "my_model", "window": 3, "max_auc_drop": 0.2, "psi_threshold": 0.3},
    "sentiment": {"dataset": "my_reviews", "epochs": 2},
    "image": {"source": "digits", "patience": 2, "seeds": 3},
    "training": {"gate": {"cv_roc_auc_lift": "> 0.01", "cv_roc_auc_lift_z": "> 2"}},
}


def test_a_settings_change_reaches_the_effective_params_of_a_dag_run(dag_params, tmp_path):
    """MLP_ overrides and a settings overlay (MLP_CONFIG) change what a run triggered with the DAG's
    defaults does: the Param defaults do not hide the settings."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    env = {
        "MLP_CONFIG": str(overlay),
        "MLP_FORECASTING__HORIZON": "14",
        "MLP_FORECASTING__TUNING_CALLS": "0",
        "MLP_MONITORING__WINDOW": "3",
        "MLP_MONITORING__MAX_AUC_DROP": "0.2",
        "MLP_DEEP__SENTIMENT_EPOCHS": "2",
        "MLP_DEEP__SEEDS": "3",
        "MLP_TRAINING__GATE__CV_ROC_AUC_LIFT": '"> 0.01"',
    }
    changed, default = tmp_settings(tmp_path, **env), tmp_settings(tmp_path)
    for dag_id, values in EXPECTED.items():
        effective = RESOLVERS[dag_id](dag_params[dag_id], changed)
        assert {k: effective[k] for k in values} == values, dag_id
        before = RESOLVERS[dag_id](dag_params[dag_id], default)
        assert all(before[k] != v for k, v in values.items()), (dag_id, before)  # each is a change


def test_fill_takes_the_default_for_empty_values_only():
    params = {"a": None, "b": "", "c": [], "d": {}, "e": 0, "f": False, "g": "x", "unknown": 1}
    out = fill(params, a=1, b="s", c=[2], d={"k": 1}, e=5, f=True, g="y", h="missing")
    assert out == {"a": 1, "b": "s", "c": [2], "d": {"k": 1}, "e": 0, "f": False, "g": "x", "h": "missing"}
    assert is_empty(()) and not is_empty(0) and not is_empty(False)
