"""The serving fast path gives the pipeline's own probabilities, or steps aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, PolynomialFeatures, StandardScaler

from pipelines.serving import fastpath
from pipelines.serving.model import ServedModel
from pipelines.training import algorithms

NUMERIC, CATEGORICAL = ["age", "hours"], ["job", "city"]
COLUMNS = [("age", "long"), ("hours", "double"), ("job", "string"), ("city", "string")]


def _data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("float64"),
            "hours": rng.normal(40, 10, n),
            "job": rng.choice(["clerk", "nurse", "pilot", "cook", "?"], n).astype(object),
            "city": rng.choice(["a", "b", "c"], n).astype(object),
        }
    )
    X.loc[::17, "hours"] = np.nan  # missing values the imputers and trees must handle
    X.loc[::23, "job"] = None
    y = ((X["age"] > 45) ^ (X["city"] == "a") ^ (rng.random(n) < 0.1)).astype(int)
    return X, y


def _rows(X: pd.DataFrame) -> list[dict]:
    return X.astype(object).where(X.notna(), None).to_dict("records")


def _served(model, example: list[dict]) -> ServedModel:
    served = ServedModel("m", "1", "champion", "run", model, COLUMNS)
    served.compile(example)
    return served


@pytest.mark.parametrize("name", ["logreg", "ridge", "random_forest", "hist_gb", "xgboost", "lightgbm", "mlp_torch"])
def test_training_dag_pipelines_match_their_own_predict_proba(name):
    X, y = _data()
    model = algorithms.build(name, algorithms.FeatureSpec(numeric=NUMERIC, categorical=CATEGORICAL), seed=0)
    if name == "random_forest":
        model.set_params(model__n_estimators=20)
    if name == "mlp_torch":
        model.set_params(model__max_epochs=3)
    model.fit(X, y)
    rows = _rows(X)
    served = _served(model, rows[:5])
    assert served.fast_path.startswith("on"), served.fast_path
    probes = fastpath.probe_rows(rows[:5], COLUMNS) + rows[5:120]
    fast = served.fast(probes)
    slow = served.predict_pipeline(probes)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    batch = rows[:150]  # over FAST_MAX_ROWS: the pipeline; a small batch: the fast path
    np.testing.assert_allclose(served.predict(batch[:10]), served.predict(batch)[:10], rtol=0, atol=1e-12)


def test_unsupported_steps_leave_the_pipeline_in_charge():
    X, y = _data()
    model = algorithms.build("svm_rbf", algorithms.FeatureSpec(numeric=NUMERIC, categorical=CATEGORICAL), seed=0)
    model.fit(X.head(200), y.head(200))
    served = _served(model, _rows(X.head(5)))
    assert served.fast is None and served.fast_path == "off: no fast path for Nystroem"
    assert served.predict(_rows(X.head(3))).shape == (3,)

    poly = Pipeline(
        [
            ("prep", ColumnTransformer([("num", PolynomialFeatures(2), ["age"])])),
            ("model", LogisticRegression()),
        ]
    ).fit(X, y)
    assert _served(poly, _rows(X.head(5))).fast_path == "off: no fast path for PolynomialFeatures"


def test_infrequent_categories_are_not_compiled():
    X, y = _data()
    grouped = Pipeline(
        [
            ("prep", ColumnTransformer([("cat", OrdinalEncoder(max_categories=2), ["job"])])),
            ("model", LogisticRegression()),
        ]
    ).fit(X.fillna({"job": "none"}), y)
    with pytest.raises(fastpath.Unsupported, match="infrequent"):
        fastpath.compile_model(grouped, [c for c, _ in COLUMNS])


def test_a_row_the_fast_path_refuses_gets_the_pipelines_answer_or_error():
    X, y = _data()
    X = X.fillna({"job": "none", "hours": 40.0})
    strict = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="error"), CATEGORICAL)]
                ),
            ),
            ("model", LogisticRegression()),
        ]
    ).fit(X, y)
    served = _served(strict, _rows(X.head(5)))
    assert served.fast_path.startswith("on")
    unknown = {**_rows(X.head(1))[0], "city": "z"}
    with pytest.raises(fastpath.Unsupported, match="unknown category 'z'"):
        served.fast([unknown])
    with pytest.raises(ValueError, match="unknown categor"):  # the pipeline's own error, not a wrong number
        served.predict([unknown])


def test_a_fast_path_that_disagrees_is_not_used():
    X, y = _data()
    model = algorithms.build("logreg", algorithms.FeatureSpec(numeric=NUMERIC, categorical=CATEGORICAL), seed=0)
    model.fit(X, y)
    rows = _rows(X.head(5))
    good = fastpath.compile_model(model, [c for c, _ in COLUMNS])
    assert fastpath.verify(good, ServedModel("m", "1", "c", "r", model, COLUMNS).predict_pipeline, rows) == (5, None)

    def off_by_a_little(batch):
        return good(batch) + 1e-6

    checked, problem = fastpath.verify(off_by_a_little, lambda batch: good(batch), rows)
    assert checked == 1 and "fast path" in problem


def test_a_sparse_one_hot_lightgbm_pipeline_is_compiled():
    from lightgbm import LGBMClassifier

    X, y = _data()
    X = X.fillna({"job": "none"})
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
                    remainder="passthrough",
                    sparse_threshold=1.0,
                ),
            ),
            ("model", LGBMClassifier(n_estimators=30, min_child_samples=5, verbose=-1)),
        ]
    ).fit(X, y)
    assert model[0].sparse_output_  # one-hot columns make it sparse: scored dense here
    served = _served(model, _rows(X.head(5)))
    assert served.fast_path.startswith("on")
    rows = _rows(X)
    np.testing.assert_allclose(served.fast(rows[:64]), served.predict_pipeline(rows[:64]), rtol=0, atol=1e-12)
