"""SHAP on tiny data: the right explainer per model, additivity in the stated output space, one-hot
contributions summed back to raw features, explain_one for serving, the global summary, and a
permutation explainer that agrees with exact Shapley values."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from pipelines.constants import REPO_ROOT
from pipelines.training import algorithms, explain
from pipelines.training.algorithms import FeatureSpec
from pipelines.training.ensembles import PrefitStacking
from tests.unit.training.frames import mixed_frame

# "const" never varies, so no model can use it.
FEATURES = FeatureSpec(numeric=("x1", "x2", "x3", "const"), categorical=("color", "city"))
FAST = {
    "random_forest": {"model__n_estimators": 20},
    "hist_gb": {"model__max_iter": 30},
    "xgboost": {"model__n_estimators": 20},
    "lightgbm": {"model__n_estimators": 20, "model__min_child_samples": 10},
    "svm_rbf": {"kernel__n_components": 30},
    "mlp_torch": {"model__max_epochs": 5, "model__batch_size": 64, "model__lr": 3e-3},
}
# (explainer kind, output space) each registry model gets
EXPECTED = {
    "logreg": (explain.LINEAR, explain.LOG_ODDS),
    "ridge": (explain.PERMUTATION, explain.PROBABILITY),  # calibrated: not linear in the features
    "random_forest": (explain.TREE, explain.PROBABILITY),
    "hist_gb": (explain.PERMUTATION, explain.PROBABILITY),  # native categorical splits: see below
    "xgboost": (explain.TREE, explain.LOG_ODDS),
    "lightgbm": (explain.TREE, explain.LOG_ODDS),
    "svm_rbf": (explain.PERMUTATION, explain.PROBABILITY),
    "mlp_torch": (explain.PERMUTATION, explain.PROBABILITY),
    "voting": (explain.PERMUTATION, explain.PROBABILITY),
    "stacking": (explain.PERMUTATION, explain.PROBABILITY),
    "bagging": (explain.PERMUTATION, explain.PROBABILITY),
}


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    return mixed_frame(n, seed, const=True)


@pytest.fixture(scope="module")
def data():
    return _frame()


_MODELS: dict[str, object] = {}


def _model(name: str, data):
    """A fitted registry model (small sizes), fitted once per test session."""
    if name not in _MODELS:
        frame, y = data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if name in algorithms.BASE_ALGORITHMS:
                model = algorithms.build(name, FEATURES, 0).set_params(**FAST.get(name, {})).fit(frame, y)
            elif name == "voting":
                bases = [(b, FrozenEstimator(_model(b, data))) for b in ("lightgbm", "logreg")]
                model = VotingClassifier(bases, voting="soft").fit(frame, y)
            elif name == "stacking":
                bases = [(b, _model(b, data)) for b in ("xgboost", "ridge")]
                meta = LogisticRegression().fit(np.column_stack([m.predict_proba(frame)[:, 1] for _, m in bases]), y)
                model = PrefitStacking(bases, meta).fit(frame, y)
            else:
                bases = [("logreg", algorithms.build("logreg", FEATURES, 0))]
                model = algorithms.build_ensemble("bagging", bases, FEATURES, 0).fit(frame, y)
        _MODELS[name] = model
    return _MODELS[name]


def _same(a: dict, b: dict) -> None:
    """Two explain_one answers agree (numbers to float precision)."""
    assert {k: v for k, v in a.items() if isinstance(v, str)} == {k: v for k, v in b.items() if isinstance(v, str)}
    for key in ("base_value", "output", "probability"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12)
    assert a["contributions"] == pytest.approx(b["contributions"], rel=1e-9, abs=1e-12)


def _model_output(model, X: pd.DataFrame, space: str) -> np.ndarray:
    p = model.predict_proba(X)[:, 1]
    return np.log(p / (1 - p)) if space == explain.LOG_ODDS else p


# -- which explainer, additivity ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_model_gets_its_explainer_and_values_add_up(name, data):
    frame, _ = data
    model = _model(name, data)
    family = algorithms.get(name).family
    explainer = explain.build_explainer(model, frame, family=family)
    assert (explainer.kind, explainer.output_space) == EXPECTED[name]
    assert explainer.features == FEATURES.columns
    assert explainer.describe()["family"] == family

    rows = frame.iloc[::8]
    result = explain.explain_rows(explainer, rows)
    assert list(result.values.columns) == list(explainer.features)  # raw names, no one-hot columns
    assert result.values.index.equals(rows.index)
    assert (result.explainer, result.output_space) == EXPECTED[name]
    # base + sum(values) is the model's own output in the stated space
    total = result.base_value + result.values.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, result.output, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.output, _model_output(model, rows, result.output_space), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.probability, model.predict_proba(rows)[:, 1])
    # "const" cannot matter to any model
    np.testing.assert_allclose(result.values["const"], 0.0, atol=1e-8)  # float32 nets: batch-size noise


def test_hist_gb_with_categorical_splits_is_explained_by_permutation(data):
    frame, _ = data
    explainer = explain.build_explainer(_model("hist_gb", data), frame)
    assert explainer.kind == explain.PERMUTATION
    assert "categorical" in explainer.note


def test_hist_gb_on_numeric_features_uses_the_tree_explainer(data):
    frame, y = data
    numeric = FeatureSpec(numeric=("x1", "x2", "x3"), categorical=())
    model = algorithms.build("hist_gb", numeric, 0).set_params(model__max_iter=30).fit(frame, y)
    explainer = explain.build_explainer(model, frame)
    assert (explainer.kind, explainer.output_space) == (explain.TREE, explain.LOG_ODDS)
    assert explainer.features == ("x1", "x2", "x3")  # what the model reads, not every column given
    result = explain.explain_rows(explainer, frame.head(30))
    np.testing.assert_allclose(result.base_value + result.values.sum(axis=1), result.output, atol=1e-8)
    np.testing.assert_allclose(result.output, model.decision_function(frame.head(30)), atol=1e-8)


def test_one_hot_contributions_are_summed_per_raw_feature(data):
    frame, _ = data
    model = _model("logreg", data)
    explainer = explain.build_explainer(model, frame)
    rows = frame.head(10)
    result = explain.explain_rows(explainer, rows)
    # the linear SHAP value of a one-hot column is coef * (x - background mean); a raw column's is their sum
    prep, logreg = model.named_steps["prep"], model.named_steps["model"]
    names = prep.get_feature_names_out()
    phi = logreg.coef_[0] * (prep.transform(rows) - prep.transform(explainer.background).mean(axis=0))
    for raw in ("color", "city"):
        columns = [i for i, n in enumerate(names) if n.startswith(raw + "_")]
        assert len(columns) > 1
        np.testing.assert_allclose(result.values[raw], phi[:, columns].sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(result.values["x1"], phi[:, list(names).index("x1")], atol=1e-10)


def test_a_listed_feature_the_model_does_not_read_gets_zero(data):
    frame, _ = data
    frame = frame.assign(extra=np.arange(len(frame), dtype=float))
    features = [*FEATURES.columns, "extra"]
    for name in ("lightgbm", "voting"):
        explainer = explain.build_explainer(_model(name, data), frame, features=features)
        assert explainer.features == tuple(features)
        values = explain.explain_rows(explainer, frame.head(20)).values
        np.testing.assert_allclose(values["extra"], 0.0, atol=1e-12)
        assert values["x1"].abs().mean() > 0


def test_failed_self_check_falls_back_to_permutation(data, monkeypatch):
    frame, _ = data
    real = explain._tree_values

    def off_by_one(explainer, Xt):
        values, base = real(explainer, Xt)
        return values, base + 1.0

    monkeypatch.setattr(explain, "_tree_values", off_by_one)
    explainer = explain.build_explainer(_model("lightgbm", data), frame)
    assert (explainer.kind, explainer.output_space) == (explain.PERMUTATION, explain.PROBABILITY)
    assert "additivity" in explainer.note
    assert len(explainer.background) == explain.AGNOSTIC_BACKGROUND


# -- the permutation explainer against exact Shapley values ------------------------------------


class _Additive(ClassifierMixin, BaseEstimator):
    """P(class 1) is a sum of one term per feature: its exact Shapley values are known in closed form."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = 0.5 + 0.1 * np.tanh(X["x1"]) - 0.05 * np.tanh(X["x2"]) + 0.2 * (X["color"] == "red") - 0.1
        return np.column_stack([1 - p, p])


def _exact_shapley(model, background: pd.DataFrame, row: pd.DataFrame) -> np.ndarray:
    """Interventional Shapley values of P(class 1) by enumerating every coalition."""
    columns = list(background.columns)
    m = len(columns)

    def value(coalition):
        masked = background.copy()
        for j in coalition:
            masked[columns[j]] = row[columns[j]].iloc[0]
        return model.predict_proba(masked)[:, 1].mean()

    v = {c: value(c) for r in range(m + 1) for c in itertools.combinations(range(m), r)}
    phi = np.zeros(m)
    for j in range(m):
        others = [k for k in range(m) if k != j]
        for r in range(m):
            weight = math.factorial(r) * math.factorial(m - r - 1) / math.factorial(m)
            for c in itertools.combinations(others, r):
                phi[j] += weight * (v[tuple(sorted((*c, j)))] - v[c])
    return phi


def test_permutation_values_are_exact_for_an_additive_model(data):
    frame, y = data
    explainer = explain.build_explainer(_Additive().fit(frame, y), frame, features=["x1", "x2", "color", "city"])
    assert explainer.kind == explain.PERMUTATION
    rows = frame.head(5)
    values = explain.explain_rows(explainer, rows).values.to_numpy()
    for i in range(len(rows)):
        exact = _exact_shapley(explainer.model, explainer.background, rows.iloc[[i]])
        np.testing.assert_allclose(values[i], exact, atol=1e-12)


def test_permutation_values_approach_exact_shapley_values(data):
    frame, _ = data
    model = _model("svm_rbf", data)  # RBF features: interactions between every pair of inputs
    explainer = explain.build_explainer(model, frame, max_background=12, permutations=200)
    rows = frame.iloc[[3, 7]]
    values = explain.explain_rows(explainer, rows).values.to_numpy()
    for i in range(len(rows)):
        exact = _exact_shapley(model, explainer.background, rows.iloc[[i]])
        np.testing.assert_allclose(values[i], exact, atol=0.01)


# -- serving -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lightgbm", "voting"])
def test_explain_one_on_a_dict_row(name, data):
    frame, _ = data
    model = _model(name, data)
    explainer = explain.build_explainer(model, frame)
    row = {**frame.iloc[5].to_dict(), "color": "purple", "ignored": "extra keys are fine"}  # an unseen category
    answer = explain.explain_one(explainer, row)
    assert json.loads(json.dumps(answer)) == answer
    assert set(answer) == {"base_value", "output", "probability", "output_space", "explainer", "contributions"}
    assert answer["explainer"] == explainer.kind and answer["output_space"] == explainer.output_space
    contributions = answer["contributions"]
    assert set(contributions) == set(FEATURES.columns)
    sizes = [abs(v) for v in contributions.values()]
    assert sizes == sorted(sizes, reverse=True)
    assert answer["base_value"] + sum(contributions.values()) == pytest.approx(answer["output"], abs=1e-6)
    one = pd.DataFrame([row])[list(FEATURES.columns)]
    assert answer["probability"] == pytest.approx(float(model.predict_proba(one)[0, 1]))
    # the same row gives the same answer (the permutation explainer is seeded), as a DataFrame too
    category_row = one.astype({"color": "category", "city": "category"})
    _same(explain.explain_one(explainer, category_row), answer)


def test_explain_one_names_missing_features(data):
    frame, _ = data
    explainer = explain.build_explainer(_model("logreg", data), frame)
    row = frame.iloc[0].to_dict()
    del row["city"], row["x2"]
    with pytest.raises(ValueError, match=r"missing feature\(s\) \['x2', 'city'\]"):
        explain.explain_one(explainer, row)
    with pytest.raises(ValueError, match="takes one row, got 2"):
        explain.explain_one(explainer, frame.head(2))
    with pytest.raises(TypeError, match="dict of feature -> value"):
        explain.explain_one(explainer, [1, 2, 3])
    with pytest.raises(ValueError, match="no rows"):
        explain.explain_rows(explainer, frame.head(0))


def test_explainer_pickles_and_rebuilds_from_its_background(data):
    frame, _ = data
    row = frame.iloc[11].to_dict()
    for name in ("lightgbm", "svm_rbf"):
        model = _model(name, data)
        explainer = explain.build_explainer(model, frame, seed=3)
        answer = explain.explain_one(explainer, row)
        _same(explain.explain_one(pickle.loads(pickle.dumps(explainer)), row), answer)
        assert pickle.loads(pickle.dumps(explainer))._shap is None
        rebuilt = explain.build_explainer(model, explainer.background, seed=3)
        pd.testing.assert_frame_equal(rebuilt.background, explainer.background)
        _same(explain.explain_one(rebuilt, row), answer)


# -- global summary ----------------------------------------------------------------------------


def test_global_summary_table_and_figures(data, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    frame, _ = data
    explainer = explain.build_explainer(_model("lightgbm", data), frame)
    seen = []
    real = explain.explain_rows
    monkeypatch.setattr(explain, "explain_rows", lambda e, X: seen.append(len(X)) or real(e, X))
    table, figures = explain.global_summary(explainer, frame, max_rows=120)
    assert seen == [120]
    assert list(table.columns) == ["feature", "mean_abs_shap"]
    assert sorted(table["feature"]) == sorted(FEATURES.columns)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["feature"].iloc[0] in ("x1", "x2", "color")  # the strongest true effects
    assert table.set_index("feature").loc["const", "mean_abs_shap"] == 0.0
    assert set(figures) == {"beeswarm", "bar"}
    for fig in figures.values():
        assert isinstance(fig, Figure) and fig.axes
        assert "log-odds" in fig.axes[0].get_xlabel()
        plt.close(fig)


def test_permutation_summary_is_capped_by_default(data, monkeypatch):
    frame, _ = data
    frame = pd.concat([frame] * 2, ignore_index=True)  # 600 rows
    explainer = explain.build_explainer(_model("ridge", data), frame)
    seen = []
    monkeypatch.setattr(explain, "explain_rows", lambda e, X: seen.append(len(X)) or explain.Explanation(
        values=pd.DataFrame(np.ones((len(X), len(e.features))), columns=list(e.features)), base_value=0.0,
        output=np.zeros(len(X)), probability=np.zeros(len(X)), data=X, explainer=e.kind, output_space=e.output_space,
    ))  # fmt: skip
    monkeypatch.setattr(explain, "summary_figures", lambda result: {})
    explain.global_summary(explainer, frame)
    assert seen == [explain.AGNOSTIC_SUMMARY_ROWS]


def test_summary_time_budget_keeps_the_first_rows_at_least(data):
    import matplotlib.pyplot as plt

    frame, _ = data
    explainer = explain.build_explainer(_model("xgboost", data), frame)
    table, figures = explain.global_summary(explainer, frame, time_budget_s=1e-9)
    assert f"{explain._PROBE_ROWS} rows" in figures["bar"].axes[0].get_title()
    assert table["mean_abs_shap"].is_monotonic_decreasing
    table, figures = explain.global_summary(explainer, frame, max_rows=100, time_budget_s=60)
    assert "100 rows" in figures["beeswarm"].axes[0].get_title()
    for fig in figures.values():
        plt.close(fig)


# -- argument errors, imports ------------------------------------------------------------------


def test_build_explainer_argument_errors(data):
    frame, y = data
    model = _model("logreg", data)
    with pytest.raises(ValueError, match=r"X_background is missing feature\(s\) \['city'\]"):
        explain.build_explainer(model, frame.drop(columns="city"))
    with pytest.raises(ValueError, match="no rows"):
        explain.build_explainer(model, frame.head(0))
    with pytest.raises(ValueError, match="unknown family 'trees'"):
        explain.build_explainer(model, frame, family="trees")
    with pytest.raises(ValueError, match="not a fitted classifier"):
        explain.build_explainer(algorithms.build("logreg", FEATURES, 0), frame)
    three = algorithms.build("logreg", FEATURES, 0).fit(frame, np.arange(len(frame)) % 3)
    with pytest.raises(ValueError, match="binary"):
        explain.build_explainer(three, frame)


def test_import_is_light():
    code = (
        "import sys, pipelines.training.explain; "
        "heavy = {'shap', 'mlflow', 'airflow', 'torch', 'matplotlib'} & set(sys.modules); assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
