"""The in-process training verb end to end on tiny gold (a real MLflow store, real Parquet): multi-class labels,
the baseline gate and its outcome, a numeric label refused, and re-runs of the same date with other params."""

import json

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT
from pipelines.lake import Lake
from pipelines.training import run
from pipelines.training.data import TrainingDataError
from tests.unit.settings import tmp_settings

DS = "2026-01-01"
FAST = {"cv_folds": 3, "tune_top_k": 0, "explain_time_budget_s": 5, "time_budget_s": 60}


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_settings(tmp_path, MLP_LAKE_ROOT=(tmp_path / "lake").as_uri())


def _write(settings, name, frame, numeric, label_kind, categorical=()):
    frame = frame.assign(
        **{
            ROW_ID: np.arange(len(frame), dtype=np.uint64),
            SPLIT: np.random.default_rng(0).choice(["train", "valid", "test"], len(frame), p=[0.6, 0.1, 0.3]),
        }
    )
    meta = {"numeric": list(numeric), "categorical": list(categorical), "label_kind": label_kind}
    meta["label_source"] = {"column": "target", "positive": None}
    Lake(settings.lake_root).write_partition(GOLD, name, DS, pa.Table.from_pandas(frame, preserve_index=False), meta)


def _iris(settings):
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    names = np.asarray(data.target_names)[data.target.to_numpy()]
    _write(settings, "iris", X.assign(**{LABEL: names}), X.columns, "multiclass")
    return list(X.columns)


def _noise(settings, n=300):
    """Labels no feature tells anything about (constant features: every model scores AUC 0.5, as the dummy)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": np.ones(n), "b": np.full(n, 2.0), LABEL: rng.integers(0, 2, n)})
    _write(settings, "noise", frame.astype({LABEL: "int8"}), ["a", "b"], "binary")


@pytest.mark.slow
def test_multiclass_label_trains_end_to_end_with_per_class_outputs(settings):
    features = _iris(settings)
    summary = run.run("iris", DS, {**FAST, "algorithms": ["logreg", "xgboost", "mlp_torch"]}, settings=settings)
    assert summary["outcome"] == "registered", summary["reason"]
    assert summary["leaderboard"]["best_cv_roc_auc"] > 0.9 and summary["leaderboard"]["failed"] == []

    board = Lake(settings.lake_root).read_partition(GOLD, "iris_leaderboard", DS).to_pandas()
    ok = board[board["status"] == "ok"]
    assert set(ok["algorithm"]) >= {"logreg", "xgboost", "mlp_torch", "voting", "stacking", "bagging"}
    for name in ("setosa", "versicolor", "virginica"):  # per-class test metrics
        assert ok[f"test_f1_{name}"].notna().all() and ok[f"test_roc_auc_{name}"].between(0, 1).all()
    assert ok["test_roc_auc"].between(0.9, 1).all()  # one-vs-rest macro
    assert summary["baselines"]["dummy"] == pytest.approx(0.5) and summary["baselines"]["logreg"] > 0.9

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    uri = f"models:/{summary['registered_model']}@champion"
    rows = Lake(settings.lake_root).read_partition(GOLD, "iris", DS).to_pandas()[features].head(7)
    out = mlflow.pyfunc.load_model(uri).predict(rows)
    assert list(out.columns) == ["setosa", "versicolor", "virginica"] and out.shape == (7, 3)
    assert np.allclose(out.sum(axis=1), 1.0)

    version = MlflowClient(settings.mlflow.tracking_uri).get_model_version_by_alias("iris_classifier", "champion")
    files = [f.path for f in MlflowClient(settings.mlflow.tracking_uri).list_artifacts(version.run_id, "shap")]
    assert {"shap/class_setosa", "shap/class_virginica", "shap/mean_abs_shap.json"} <= set(files)
    table = pd.read_json(
        mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="shap/mean_abs_shap.json"),
        orient="split",
    )
    assert {"mean_abs_shap", "mean_abs_shap_setosa", "mean_abs_shap_versicolor"} <= set(table.columns)

    # serving: every class's probability, "probability" the top one
    from pipelines.serving.model import load

    served = load(settings.mlflow.tracking_uri, "iris_classifier", "champion")
    assert served.classes == ["setosa", "versicolor", "virginica"]
    scored = served.predict(rows.to_dict("records"))
    assert scored.shape == (7, 3) and np.allclose(scored, out.to_numpy())


@pytest.mark.slow
def test_binary_pyfunc_returns_one_probability_column(settings):
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=400), LABEL: (x + rng.normal(0, 0.5, 400) > 0).astype("int8")})
    _write(settings, "toy", frame, ["x", "z"], "binary")
    summary = run.run("toy", DS, {**FAST, "algorithms": ["logreg", "hist_gb"]}, settings=settings)
    assert summary["outcome"] == "registered", summary["reason"]
    model = mlflow.pyfunc.load_model("models:/toy_classifier@champion")
    out = np.asarray(model.predict(frame[["x", "z"]].head(9)))
    assert out.shape == (9,) and ((out >= 0) & (out <= 1)).all()
    fitted = mlflow.sklearn.load_model("models:/toy_classifier@champion")
    assert np.allclose(fitted.predict_proba(frame[["x", "z"]].head(9))[:, 1], out)

    from pipelines.serving.model import load  # serving unwraps the logged model: its fast path compiles

    served = load(settings.mlflow.tracking_uri, "toy_classifier", "champion")
    assert served.classes is None and served.fast_path.startswith("on"), served.fast_path
    assert np.allclose(served.predict(frame[["x", "z"]].head(9).to_dict("records")), out)


def test_a_retry_finds_its_parent_and_other_params_on_the_same_run_id_get_a_new_one(settings):
    _noise(settings)
    first = run.prepare("noise", {"cv_folds": 2}, "training", "manual__2026-01-01", settings=settings)
    retry = run.prepare("noise", {"cv_folds": 2}, "training", "manual__2026-01-01", settings=settings)
    other = run.prepare("noise", {"cv_folds": 3}, "training", "manual__2026-01-01", settings=settings)
    assert first["parent_run_id"] == retry["parent_run_id"] != other["parent_run_id"]
    assert first["params"]["gate"] == dict(settings.training.gate)  # an empty gate: settings training.gate


def test_numeric_label_is_refused_at_prepare_naming_its_type(settings):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=50), LABEL: rng.normal(size=50)})
    _write(settings, "prices", frame, ["x"], "numeric")
    with pytest.raises(TrainingDataError, match=r"label 'target' is numeric \(float64, a regression target"):
        run.prepare("prices", {}, "training", "r", settings=settings)


@pytest.mark.slow
def test_nothing_beats_the_baseline_so_nothing_is_registered_and_the_run_says_why(settings):
    _noise(settings)
    summary = run.run("noise", DS, {**FAST, "algorithms": ["logreg", "random_forest"]}, settings=settings)
    assert summary["outcome"] == "nothing registered" and summary["version"] is None
    assert "none of the" in summary["reason"] and "cv_roc_auc_lift" in summary["reason"]
    assert summary["baselines"]["dummy"] == pytest.approx(0.5)
    tags = MlflowClient(settings.mlflow.tracking_uri).get_run(summary["parent_run_id"]).data.tags
    assert tags["outcome"] == "nothing registered" and "cv_roc_auc_lift" in tags["outcome_reason"]

    # the absolute rules are an option: with a gate every model passes, the same data registers a model
    again = run.run("noise", DS, {**FAST, "algorithms": ["logreg"], "gate": {"cv_roc_auc": "> 0"}}, settings=settings)
    assert again["outcome"] == "registered", again["reason"]


@pytest.mark.slow
def test_the_verb_reruns_the_same_date_with_other_params(settings, capsys, monkeypatch):
    from pipelines.cli import main

    _noise(settings)
    first = run.run("noise", DS, {**FAST, "algorithms": ["logreg"], "gate": {"cv_roc_auc": "> 0"}}, settings=settings)
    second = run.run(
        "noise", DS, {**FAST, "algorithms": ["logreg"], "cv_folds": 2, "gate": {"cv_roc_auc": "> 0"}}, settings=settings
    )
    assert first["parent_run_id"] != second["parent_run_id"]  # a new parent run per invocation
    params = MlflowClient(settings.mlflow.tracking_uri).get_run(second["parent_run_id"]).data.params
    assert params["cv_folds"] == "2"

    # the CLI loads its own settings: point them at this test's store
    monkeypatch.setenv("MLP_LAKE_ROOT", settings.lake_root)
    monkeypatch.setenv("MLP_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow.tracking_uri)
    code = main(["train", "--dataset", "noise", "--params", json.dumps({**FAST, "algorithms": ["logreg"]})])
    captured = capsys.readouterr()
    assert code == 1 and "nothing registered" in captured.err  # noise never beats the baseline: exit 1, saying why
    assert json.loads(captured.out)["ds"] == DS
