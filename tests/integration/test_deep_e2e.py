"""The deep-learning part of `make demo` end to end through Airflow (api-server, scheduler,
LocalExecutor) against a throwaway MLflow server, run the way `make demo` runs it
(`demo.start_others` / `demo.finish_others`): features for the reviews beside the image DAG, then
sentiment, kept small through the demo Params (a sample of reviews, 1 LSTM epoch; 300 images,
2 epochs, 1 seed per arm).
"""

import json
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import demo
from pipelines.constants import CHAMPION, GOLD
from pipelines.lake import Lake
from tests.integration.isolation import embedded_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DS = "2026-01-01"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    with embedded_stack(
        root,
        MLP_USER_DIR=str(root / "user"),  # own-data tests add datasets: never the checkout's include/user
        MLP_DEMO__SENTIMENT=json.dumps({"epochs": 1, "max_rows": 1500}),
        MLP_DEMO__IMAGE=json.dumps({"epochs": 2, "seeds": 1, "max_rows": 300}),
    ) as (settings, env):
        yield settings, env


@pytest.fixture(scope="module")
def deep_demo(airflow):
    settings, env = airflow
    with demo.scheduling(settings, env):  # as in `make demo`: runs triggered through the REST API
        return {r.dag_id: r for r in demo.finish_others(settings, DS, demo.start_others(settings, DS, {"deep"}))}


def test_reviews_to_a_registered_sentiment_model(airflow, deep_demo):
    settings, _ = airflow
    features = deep_demo["features"]
    assert features.state == "success", features.log
    assert features.outputs["dataset"] == "reviews" and features.outputs["gold rows"] > 5000
    assert Lake(settings.lake_root).read_manifest(GOLD, "reviews", DS)["rows"] > 5000

    result = deep_demo["sentiment"]
    assert result.state == "success", result.log
    assert result.outputs["best"] in ("tfidf_logreg", "lstm", "blend") and 0.5 < result.outputs["test auc"] <= 1
    client = MlflowClient(settings.mlflow.server_url)
    version = client.get_model_version_by_alias("sentiment_classifier", CHAMPION)
    assert version.tags["model"] in ("tfidf_logreg", "lstm", "blend")
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    model = mlflow.pyfunc.load_model(f"models:/sentiment_classifier@{CHAMPION}")
    out = model.predict(
        pd.DataFrame({"text": ["Love it, fits perfectly and the fabric is beautiful", "배송이 빠르고 좋아요"]})
    )
    assert out["label"].iloc[0] == "positive" and out["confidence"].between(0.5, 1).all()


def test_image_dag_trains_registers_and_runs_the_experiment(airflow, deep_demo):
    settings, _ = airflow
    result = deep_demo["image"]
    assert result.state == "success", result.log
    assert result.outputs["data"] in ("digits", "fashion_mnist") and 0 <= result.outputs["cnn test acc"] <= 1
    assert "poly vs relu acc" in result.outputs and result.outputs["gmm k"] >= 1
    client = MlflowClient(settings.mlflow.server_url)
    experiment = client.get_experiment_by_name("deep")
    runs = client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{result.run_id}'")
    kinds = {r.data.tags.get("kind") for r in runs}
    assert {"image", "poly_experiment", "gmm"} <= kinds
    assert all(
        r.data.tags.get("image_dataset") in ("digits", "fashion_mnist") for r in runs if "arm" not in r.data.tags
    )
    assert client.get_model_version_by_alias("image_classifier", CHAMPION)


def _typed(env, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "pipelines", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_own_text_dataset_through_the_sentiment_dag(airflow, tmp_path):
    """Issue 23: a user's three-class text CSV -> `dataset add --kind text` -> ingest -> the sentiment DAG."""
    settings, env = airflow
    words = {"good": "great lovely perfect", "bad": "awful broken cheap", "meh": "okay average plain"}
    rows = [
        {"Comment": f"{words[c].split()[i % 3]} {words[c].split()[(i + 1) % 3]} item {i}", "Mood": c}
        for i, c in enumerate(list(words) * 40)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "comments.csv", index=False)
    _typed(env, "dataset", "add", "comments", "--source", str(tmp_path / "comments.csv"), "--kind", "text")
    _typed(env, "ingest", "comments", "--ds", DS)
    conf = {"dataset": "comments", "ds": DS, "models": ["tfidf_logreg"]}
    result = demo.run_dag(settings, env, "sentiment", DS, conf=json.dumps(conf))
    assert result.state == "success", result.log
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    model = mlflow.pyfunc.load_model(f"models:/comments_sentiment@{CHAMPION}")
    assert list(model.predict(pd.DataFrame({"text": ["awful cheap", "lovely perfect"]}))["label"]) == ["bad", "good"]


def test_own_image_folder_through_the_image_dag(airflow, tmp_path):
    """Issue 23: PNG class folders -> `dataset add --kind images` -> ingest -> the image DAG (no experiment)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    settings, env = airflow
    digits = load_digits()
    for i in range(150):
        folder = tmp_path / "imgs" / f"digit{digits.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 15).astype("uint8")).save(folder / f"{i}.png")
    _typed(env, "dataset", "add", "scans", "--source", str(tmp_path / "imgs"), "--kind", "images")
    _typed(env, "ingest", "scans", "--ds", DS)
    conf = {"dataset": "scans", "ds": DS, "epochs": 2, "run_experiment": False}
    result = demo.run_dag(settings, env, "image", DS, conf=json.dumps(conf))
    assert result.state == "success", result.log
    client = MlflowClient(settings.mlflow.server_url)
    version = client.get_model_version_by_alias("scans_image", CHAMPION)
    assert version.tags["image_dataset"] == "scans"
    mlflow.set_tracking_uri(settings.mlflow.server_url)
    out = mlflow.pyfunc.load_model(f"models:/scans_image@{CHAMPION}").predict(digits.images[:3] / 16)
    assert len(out) == 3 and set(out["label"]) <= {f"digit{d}" for d in range(10)}
