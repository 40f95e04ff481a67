"""Which MLflow run a task's return value names, and the MLflow UI address of a run."""

import pytest

from pipelines.config import load_settings
from pipelines.tracking import mlflow_run_id_in, mlflow_run_url

RUN = "0123456789abcdef0123456789abcdef"
PARENT = "fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"mlflow_run_id": RUN, "parent_run_id": PARENT, "algorithm": "logreg"}, RUN),  # train: the model's run
        ({"parent_run_id": PARENT, "dataset": "adult"}, PARENT),  # prepare, leaderboard: the DAG run's run
        ({"selected": "logreg", "record": {"mlflow_run_id": RUN}}, RUN),  # select: the chosen model's run
        (RUN, RUN),  # features.track returns the id itself
        ({"mlflow_run_id": None, "model_uri": None}, None),
        ({"explained": True, "top_features": [{"feature": "age"}]}, None),
        ("not a run id", None),
        (["0123456789abcdef0123456789abcdef"], None),
        (None, None),
        (RUN.upper(), None),
    ],
)
def test_run_id_in_a_return_value(value, expected):
    assert mlflow_run_id_in(value) == expected


def test_run_url_opens_the_run_page_of_the_ui():
    assert mlflow_run_url("http://127.0.0.1:5000/", RUN) == f"http://127.0.0.1:5000/#/runs/{RUN}"


def test_ui_url_defaults_to_the_server_and_can_be_set():
    settings = load_settings({"MLP_MLFLOW__PORT": "5123"})
    assert settings.mlflow.browser_url == "http://127.0.0.1:5123"
    settings = load_settings({"MLP_MLFLOW__UI_URL": "https://mlflow.example.org"})
    assert settings.mlflow.browser_url == "https://mlflow.example.org"
