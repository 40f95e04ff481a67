import mlflow
import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.tracking import find_or_create_run, log_feature_quality, log_frame, read_frame

MANIFESTS = {
    "bronze": {"rows_in": 10, "rows": 9, "quarantined_rows": 1},
    "silver": {"rows": 8, "rows_quarantined": 1, "duplicates": 1, "contract": "people"},
    "gold": {
        "dataset": "people",
        "ds": "2026-01-01",
        "rows": 8,
        "content_hash": "abc",
        "schema_hash": "def",
        "splits": {
            "train": {"rows": 6, "positives": 3},
            "valid": {"rows": 1, "positives": 0},
            "test": {"rows": 1, "positives": 1},
        },
    },
}


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return load_settings(
        {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "MLP_STATE_DIR": str(tmp_path / "state")}
    )


def test_quality_run_is_logged_once_per_airflow_run(settings, tmp_path):
    first = log_feature_quality(settings, MANIFESTS, "manual__1")
    retry = log_feature_quality(settings, MANIFESTS, "manual__1")  # a retried task
    other = log_feature_quality(settings, MANIFESTS, "manual__2")  # a later DAG run
    assert first == retry != other
    run = mlflow.get_run(first)
    assert run.data.metrics["rows_in"] == 10 and run.data.metrics["train_positive_rate"] == 0.5
    assert run.data.tags["gold_content_hash"] == "abc" and run.data.tags["ds"] == "2026-01-01"
    assert run.info.artifact_uri.startswith((tmp_path / "state" / "mlflow" / "artifacts").as_uri())
    assert not (tmp_path / "mlruns").exists()


def test_unlabelled_gold_logs_no_positive_rate(settings):
    gold = {**MANIFESTS["gold"], "splits": {"train": {"rows": 6}, "valid": {"rows": 1}, "test": {"rows": 1}}}
    run = mlflow.get_run(log_feature_quality(settings, {**MANIFESTS, "gold": gold}, "manual__3"))
    assert run.data.metrics["train_rows"] == 6 and "train_positive_rate" not in run.data.metrics


def test_a_retry_finds_the_parent_run_not_a_child_that_carries_its_tags(settings):
    tags = {"kind": "sentiment", "airflow_run_id": "manual__1"}
    parent = find_or_create_run(settings, "deep", "parent", tags)
    child = find_or_create_run(settings, "deep", "child", {**tags, "model": "lstm"}, parent)
    assert find_or_create_run(settings, "deep", "parent", tags) == parent != child  # the retry of the parent
    assert find_or_create_run(settings, "deep", "child", {**tags, "model": "lstm"}, parent) == child
    other = find_or_create_run(settings, "deep", "child", {**tags, "model": "lstm"}, "f" * 32)  # another parent
    assert other not in (parent, child)


def test_log_frame_replaces_the_table_so_a_retry_adds_no_rows(settings):
    frame = pd.DataFrame({"model": ["a", "b"], "score": [0.9, 0.8]})
    run_id = find_or_create_run(settings, "training", "board", {"airflow_run_id": "manual__1"})
    for _ in range(3):  # the first try and two retries
        with mlflow.start_run(run_id=run_id):
            log_frame(frame, "tables/leaderboard.json")
    pd.testing.assert_frame_equal(read_frame(run_id, "tables/leaderboard.json"), frame)
