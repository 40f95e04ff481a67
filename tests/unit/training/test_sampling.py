"""The Param sample_rows: a sample of the train rows only (every test row is scored), and the selected
model refitted on every train row before it is explained and registered."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from pipelines.constants import GOLD, LABEL, ROW_ID, SPLIT, TEST
from pipelines.lake import Lake
from pipelines.training import ensembles, run
from pipelines.training.data import load_training_data, sample_counts
from pipelines.training.refit import refit_model
from tests.unit.settings import tmp_settings

DS = "2026-01-01"


def _gold(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            ROW_ID: np.arange(n, dtype=np.uint64),
            "x": x,
            "z": rng.normal(size=n),
            LABEL: (x + rng.normal(scale=0.7, size=n) > 0.8).astype("int8"),  # about a quarter positive
            SPLIT: rng.choice(["train", "valid", "test"], n, p=[0.6, 0.15, 0.25]),
        }
    )


def _write(lake: Lake, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    lake.write_partition(GOLD, "toy", DS, table, {"numeric": ["x", "z"], "categorical": []})


@pytest.fixture
def lake(tmp_path):
    return Lake((tmp_path / "lake").as_uri())


def test_a_sample_cuts_the_train_rows_and_keeps_every_test_row(lake):
    frame = _gold(4000)
    _write(lake, frame)
    test, train = frame[frame[SPLIT] == TEST], frame[frame[SPLIT] != TEST]
    data = load_training_data(lake, "toy", DS, sample=600, seed=1)
    assert len(data.y_test) == len(test)  # the held-out score is on the whole test split
    assert np.array_equal(data.X_test["x"].to_numpy(), test["x"].to_numpy())
    assert abs(len(data.y_train) - 600) <= 2  # stratified: per-class rounding
    assert set(data.X_train["x"]) <= set(train["x"])
    assert data.y_train.mean() == pytest.approx(train[LABEL].mean(), abs=0.01)
    assert data.sampled and data.train_rows_all == len(train)
    assert data.summary()["train_rows_before_sample"] == len(train)

    whole = load_training_data(lake, "toy", DS)
    assert not whole.sampled and len(whole.y_train) == len(train) and "train_rows_before_sample" not in whole.summary()
    assert not load_training_data(lake, "toy", DS, sample=len(train)).sampled  # a sample as big as the table


def test_a_rare_class_keeps_its_rows_in_a_sample(lake):
    frame = _gold(6000)
    frame[LABEL] = (frame["x"] > 2.1).astype("int8")  # about 2 % positive
    _write(lake, frame)
    train = frame[frame[SPLIT] != TEST]
    positives = int(train[LABEL].sum())
    data = load_training_data(lake, "toy", DS, sample=1000, seed=1)
    assert int(data.y_train.sum()) == positives  # all of them, not the 2 % share (about 20)
    assert len(data.y_train) == 1000 and len(data.y_test) == (frame[SPLIT] == TEST).sum()
    reference = load_training_data(lake, "toy", DS, sample=1000, seed=1, sample_test=True)
    assert reference.y_train.mean() == pytest.approx(train[LABEL].mean(), abs=0.01)  # a reference keeps the shares


@pytest.mark.parametrize(
    ("counts", "sample", "kept"),
    [
        ({0: 122864, 1: 1102}, 10000, {0: 8898, 1: 1102}),  # bio_train: every positive
        ({0: 900, 1: 100}, 500, {0: 400, 1: 100}),
        ({0: 60, 1: 40}, 50, {0: 30, 1: 20}),  # balanced enough: plain shares
        ({0: 5000, 1: 5000, 2: 100}, 3000, {0: 1450, 1: 1450, 2: 100}),
        ({0: 9000, 1: 900, 2: 100}, 1200, {0: 900, 1: 200, 2: 100}),  # the floor is 200 a class
    ],
)
def test_sample_counts(counts, sample, kept):
    assert sample_counts(counts, sample) == kept
    assert sum(kept.values()) <= sample


def test_a_reference_sample_cuts_test_rows_too(lake):
    frame = _gold(4000)
    _write(lake, frame)
    data = load_training_data(lake, "toy", DS, sample=800, seed=1, sample_test=True)
    assert abs(len(data.y_train) + len(data.y_test) - 800) <= 2
    assert 0 < len(data.y_test) < (frame[SPLIT] == TEST).sum()


def _xy(n: int, seed: int):
    frame = _gold(n, seed)
    return frame[["x", "z"]], frame[LABEL].to_numpy()


@pytest.mark.parametrize("kind", ["plain", "voting", "stacking"])
def test_refit_fits_the_same_model_again_on_other_rows(kind):
    (X_small, y_small), (X_all, y_all) = _xy(200, 1), _xy(3000, 2)
    bases = [
        ("logreg", LogisticRegression(C=0.3).fit(X_small, y_small)),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0).fit(X_small, y_small)),
    ]
    if kind == "plain":
        model = bases[0][1]
    else:
        oof = np.column_stack([m.predict_proba(X_small)[:, 1] for _, m in bases])
        fold = np.arange(len(y_small)) % 3
        model = ensembles.assemble(kind, bases, oof, y_small, fold, 0).fit(X_small, y_small)
    refitted = refit_model(model, X_all, y_all)

    direct = LogisticRegression(C=0.3).fit(X_all, y_all)  # what the logreg (base) must now be
    if kind == "plain":
        assert refitted is not model and refitted.C == 0.3
        assert np.allclose(refitted.coef_, direct.coef_)
        return
    parts = dict(refitted.estimators) if kind == "stacking" else dict(refitted.named_estimators_)
    logreg = parts["logreg"].estimator if kind == "voting" else parts["logreg"]
    assert np.allclose(logreg.coef_, direct.coef_) and not np.allclose(logreg.coef_, bases[0][1].coef_)
    tree = parts["tree"].estimator if kind == "voting" else parts["tree"]
    assert tree.tree_.n_node_samples[0] == len(y_all)
    if kind == "stacking":
        assert refitted.final_estimator_ is model.final_estimator_  # the meta model is kept
    assert refitted.predict_proba(X_all).shape == (len(y_all), 2)


@pytest.mark.slow
def test_a_sampled_run_registers_the_model_refitted_on_every_train_row(tmp_path, lake, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = tmp_settings(tmp_path)
    frame = _gold(3000)
    _write(lake, frame)
    train_rows = int((frame[SPLIT] != TEST).sum())
    params = {"algorithms": ["logreg", "hist_gb"], "cv_folds": 2, "tune_top_k": 0, "sample_rows": 500}
    summary = run.run("toy", DS, {**params, "explain_time_budget_s": 5}, settings=settings)
    assert summary["outcome"] == "registered", summary["reason"]
    assert summary["refit_train_rows"] == train_rows and {"prepare", "select", "register"} <= set(summary["seconds"])

    client = MlflowClient(settings.mlflow.tracking_uri)
    version = client.get_model_version(summary["registered_model"], summary["version"])
    assert version.tags["refit_train_rows"] == str(train_rows)
    chosen = client.get_run(version.run_id).data.tags
    assert chosen["refit_train_rows"] == str(train_rows) and chosen["sample_model_uri"] != chosen["model_uri"]
    summary_json = client.get_run(summary["parent_run_id"]).data
    assert summary_json.params["sample_rows"] == "500"

    # a retried select reuses the refit logged on the chosen run: no second model, the same URI
    import mlflow

    from pipelines.training import refit

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    experiment = client.get_run(version.run_id).info.experiment_id
    logged = lambda: mlflow.search_logged_models(  # noqa: E731
        [experiment], filter_string=f"source_run_id = '{version.run_id}'", output_format="list"
    )
    before = len(logged())
    record = {"mlflow_run_id": version.run_id, "model_uri": chosen["sample_model_uri"]}
    context = {"dataset": "toy", "ds": DS, "seed": 0}
    again = refit.refit(settings, lake, context, record, load_training_data(lake, "toy", DS, sample=500))
    assert again["model_uri"] == chosen["model_uri"] and again["refit_train_rows"] == train_rows
    assert len(logged()) == before
