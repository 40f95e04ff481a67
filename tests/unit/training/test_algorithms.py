"""The algorithm registry on tiny data: every base model and ensemble fits raw features, copes with
missing values and unseen categories, and the torch MLP stops early, pickles and is deterministic."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.constants import REPO_ROOT
from pipelines.training import algorithms
from pipelines.training.algorithms import FeatureSpec
from pipelines.training.torch_mlp import TorchMLPClassifier
from tests.unit.training.frames import mixed_frame

FEATURES = FeatureSpec(numeric=("x1", "x2", "x3"), categorical=("color", "city"))
# Small sizes so every model fits in well under a second.
FAST = {
    "random_forest": {"model__n_estimators": 20},
    "hist_gb": {"model__max_iter": 30},
    "xgboost": {"model__n_estimators": 20},
    "lightgbm": {"model__n_estimators": 20},
    "svm_rbf": {"kernel__n_components": 50},
    "mlp_torch": {"model__max_epochs": 30, "model__batch_size": 64, "model__lr": 3e-3},
}


def _frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    return mixed_frame(n, seed)


def _as_category(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"color": "category", "city": "category"})


def _new_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with a category never seen in training, and missing values of each kind."""
    rows = frame.head(4).astype({"color": object, "city": object}).reset_index(drop=True)
    rows.loc[0, "color"] = "purple"
    rows.loc[1, "city"] = "zanzibar"
    rows.loc[2, "color"] = None
    rows.loc[3, "city"] = np.nan
    return rows


def _fast(name: str, seed: int = 0):
    return algorithms.build(name, FEATURES, seed).set_params(**FAST.get(name, {}))


def _check_proba(proba: np.ndarray, n: int) -> None:
    assert proba.shape == (n, 2)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


@pytest.fixture(scope="module")
def data():
    return _frame()


# -- registry ---------------------------------------------------------------------------------


def test_registry_names_and_families():
    assert algorithms.BASE_ALGORITHMS == (
        "logreg",
        "ridge",
        "random_forest",
        "hist_gb",
        "xgboost",
        "lightgbm",
        "svm_rbf",
        "mlp_torch",
    )
    assert algorithms.ENSEMBLES == ("voting", "bagging", "stacking")
    assert list(algorithms.ALGORITHMS) == [*algorithms.BASE_ALGORITHMS, *algorithms.ENSEMBLES]
    for name, algo in algorithms.ALGORITHMS.items():
        assert algo.name == name
        assert algo.family in algorithms.FAMILIES
        assert algo.ensemble == (name in algorithms.ENSEMBLES)
        assert algo.description


def test_get_unknown_lists_known_names():
    with pytest.raises(ValueError, match="unknown algorithm 'nope'") as err:
        algorithms.get("nope")
    for name in algorithms.ALGORITHMS:
        assert name in str(err.value)


def test_ensembles_are_not_built_like_base_algorithms():
    with pytest.raises(ValueError, match="build_ensemble"):
        algorithms.build("voting", FEATURES, 0)
    with pytest.raises(ValueError, match="not an ensemble"):
        algorithms.build_ensemble("logreg", [("a", algorithms.build("logreg", FEATURES, 0))], FEATURES, 0)


def test_feature_spec_accepts_lists_and_rejects_overlap():
    spec = FeatureSpec(numeric=["a"], categorical=["b"])
    assert spec.numeric == ("a",) and spec.columns == ("a", "b")
    hash(spec)
    with pytest.raises(ValueError, match="both numeric and categorical"):
        FeatureSpec(numeric=("a",), categorical=("a",))


def test_import_does_not_import_torch():
    code = "import sys, pipelines.training.algorithms; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- base algorithms --------------------------------------------------------------------------


@pytest.mark.parametrize("categorical_dtype", ["object", "category"])
@pytest.mark.parametrize("name", algorithms.BASE_ALGORITHMS)
def test_base_algorithm_fits_raw_features(name, categorical_dtype, data):
    frame, y = data
    if categorical_dtype == "category":
        frame = _as_category(frame)
    model = _fast(name)
    assert [step for step, _ in model.steps][0] == "prep" and model.steps[-1][0] == "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert model.fit(frame, y) is model
    proba = model.predict_proba(frame)
    _check_proba(proba, len(frame))
    assert roc_auc_score(y, proba[:, 1]) > 0.7
    assert set(model.predict(frame)) <= {0, 1}

    new = _new_rows(frame)
    if categorical_dtype == "category":
        new = new.astype({"color": "category", "city": "category"})
    _check_proba(model.predict_proba(new), len(new))
    _check_proba(model.predict_proba(new.iloc[[0]]), 1)  # a single row (serving)

    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(new), model.predict_proba(new))


def test_extra_columns_and_string_dtype_are_accepted(data):
    frame, y = data
    frame = frame.assign(label=y, split="train").astype({"color": "str", "city": "str"})
    model = _fast("logreg").fit(frame, y)
    _check_proba(model.predict_proba(frame[["city", "color", "x3", "x2", "x1"]]), len(frame))


def test_every_model_is_single_threaded():
    for name in algorithms.BASE_ALGORITHMS:
        params = algorithms.build(name, FEATURES, 0).get_params()
        for key in ("model__n_jobs", "model__nthread", "model__num_threads"):
            if key in params:
                assert params[key] in (1, None), (name, key, params[key])
    hgb = algorithms.build("hist_gb", FEATURES, 0).named_steps["model"]
    assert isinstance(hgb, algorithms.OneThreadHistGradientBoosting)


def test_hist_gb_runs_on_one_openmp_thread(data, monkeypatch):
    """Its fit and predict run under a one-thread limit of scikit-learn's OpenMP runtime (from a
    controller kept between calls), whatever the limit outside."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from threadpoolctl import threadpool_limits

    seen = []

    def spy(method):
        def wrapped(self, *args, **kwargs):
            seen.append(_openmp_effective_n_threads())  # what HistGradientBoosting itself asks for
            return method(self, *args, **kwargs)

        return wrapped

    for name in ("fit", "predict_proba"):
        monkeypatch.setattr(HistGradientBoostingClassifier, name, spy(getattr(HistGradientBoostingClassifier, name)))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # with it set, the effective count is not capped at the cores
    frame, y = data
    with threadpool_limits(limits=2, user_api="openmp"):
        model = _fast("hist_gb").fit(frame, y)
        model.predict_proba(frame)
        assert _openmp_effective_n_threads() == 2
    assert seen == [1, 1]


@pytest.mark.parametrize("name", ["random_forest", "hist_gb", "xgboost"])
def test_ordinal_encoder_is_fitted_on_unicode_not_objects(name, data):
    """With max_categories, OrdinalEncoder.fit on an object array counts values in a Python loop
    (an isinstance check per value), which ran about 4x slower inside Airflow task processes: the
    ordinal prep hands it a unicode array, counted by np.unique. Missing values are a category."""
    frame, y = data
    model = _fast(name).fit(frame, y)
    encoder = model.named_steps["prep"].named_transformers_["cat"].named_steps["ordinal"]
    assert encoder.max_categories == 250
    assert [c.dtype.kind for c in encoder.categories_] == ["U", "U"]
    assert set(encoder.categories_[0]) == {"red", "green", "blue", algorithms.MISSING}
    strings = algorithms._as_unicode(frame[["color", "city"]])
    assert strings.dtype.kind == "U" and (strings == algorithms._as_strings(frame[["color", "city"]])).all()


def test_same_seed_same_model(data):
    frame, y = data
    for name in ("random_forest", "xgboost", "lightgbm", "hist_gb"):
        a = _fast(name, seed=3).fit(frame, y).predict_proba(frame)
        b = _fast(name, seed=3).fit(frame, y).predict_proba(frame)
        np.testing.assert_allclose(a, b, err_msg=name)


# -- ensembles --------------------------------------------------------------------------------


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("name", algorithms.ENSEMBLES)
def test_ensemble_from_two_bases(name, fitted, data):
    frame, y = data
    frame = _as_category(frame)
    bases = [("lightgbm", _fast("lightgbm")), ("logreg", _fast("logreg"))]
    if fitted:
        bases = [(b, m.fit(frame, y)) for b, m in bases]
    model = algorithms.build_ensemble(name, bases, FEATURES, 0)
    model.fit(frame, y)
    proba = model.predict_proba(frame)
    _check_proba(proba, len(frame))
    assert roc_auc_score(y, proba[:, 1]) > 0.7
    new = _new_rows(frame).astype({"color": "category", "city": "category"})
    _check_proba(model.predict_proba(new), len(new))
    pickle.loads(pickle.dumps(model)).predict_proba(new)


def test_bagging_bags_the_first_base(data):
    frame, y = data
    bases = [("xgboost", _fast("xgboost")), ("logreg", _fast("logreg"))]
    model = algorithms.build_ensemble("bagging", bases, FEATURES, 0).fit(frame, y)
    bagging = model.named_steps["model"]
    assert len(bagging.estimators_) == 5 and bagging.n_jobs == 1
    assert type(bagging.estimators_[0].named_steps["base"].named_steps["model"]).__name__ == "XGBClassifier"


def test_ensemble_argument_errors():
    one = [("logreg", algorithms.build("logreg", FEATURES, 0))]
    with pytest.raises(ValueError, match="at least 2"):
        algorithms.build_ensemble("voting", one, FEATURES, 0)
    with pytest.raises(ValueError, match="at least one"):
        algorithms.build_ensemble("bagging", [], FEATURES, 0)
    with pytest.raises(ValueError, match="unique"):
        algorithms.build_ensemble("stacking", one + one, FEATURES, 0)
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        algorithms.build_ensemble("nope", one, FEATURES, 0)


# -- check_features ---------------------------------------------------------------------------


def test_check_features_accepts_good_frames(data):
    frame, _ = data
    algorithms.check_features(frame, FEATURES)
    algorithms.check_features(_as_category(frame), FEATURES)
    algorithms.check_features(frame.astype({"x3": "Int64", "color": "str"}), FEATURES)


def test_check_features_names_missing_column(data):
    frame, _ = data
    with pytest.raises(ValueError, match="column 'city' is missing"):
        algorithms.check_features(frame.drop(columns="city"), FEATURES)


def test_check_features_names_datetime_column(data):
    frame, _ = data
    frame = frame.assign(x2=pd.Timestamp("2024-01-01"))
    with pytest.raises(ValueError, match=r"column 'x2' has dtype datetime64\[.*\]: no preprocessing handles it"):
        algorithms.check_features(frame, FEATURES)
    frame = frame.assign(x2=1.0, color=pd.Timestamp("2024-01-01"))
    with pytest.raises(ValueError, match="column 'color' has dtype datetime64"):
        algorithms.check_features(frame, FEATURES)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("color", lambda n: [["a", "b"]] * n, r"column 'color' has dtype object \(list values\): no preprocessing"),
        ("city", lambda n: [b"raw"] * n, r"column 'city' has dtype object \(bytes values\)"),
        ("x1", lambda n: ["1.5"] * n, "column 'x1' is listed as numeric but has dtype"),
        ("x1", lambda n: [{"k": 1}] * n, r"column 'x1' has dtype object \(dict values\)"),
    ],
)
def test_check_features_names_unhandled_dtypes(column, values, message, data):
    frame, _ = data
    frame = frame.copy()
    frame[column] = pd.Series(values(len(frame)), dtype=object)
    with pytest.raises(ValueError, match=message):
        algorithms.check_features(frame, FEATURES)


# -- TorchMLPClassifier -----------------------------------------------------------------------


def _numeric(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_mlp_stops_early_and_keeps_the_best_epoch():
    X, y = _numeric()
    # A big net and a high learning rate overfit 270 rows within a few epochs.
    mlp = TorchMLPClassifier(hidden_sizes=(256, 256), dropout=0.0, lr=0.05, batch_size=32, max_epochs=200, patience=2)
    mlp.fit(X, y)
    assert mlp.n_epochs_ < 200
    assert mlp.n_epochs_ == len(mlp.history_) == mlp.best_epoch_ + 2
    assert set(mlp.history_[0]) >= {"train_loss", "val_loss"}
    assert mlp.history_[mlp.best_epoch_ - 1]["val_loss"] == min(h["val_loss"] for h in mlp.history_)
    assert mlp.n_parameters_ == 6 * 256 + 256 + 256 * 256 + 256 + 256 + 1
    assert mlp.n_features_in_ == 6 and list(mlp.classes_) == [0, 1]


def test_mlp_pickles_and_is_deterministic():
    X, y = _numeric()
    a = TorchMLPClassifier(max_epochs=5, seed=7).fit(X, y)
    b = TorchMLPClassifier(max_epochs=5, seed=7).fit(X, y)
    proba = a.predict_proba(X)
    _check_proba(proba, len(X))
    np.testing.assert_array_equal(proba, b.predict_proba(X))
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    assert roc_auc_score(y, proba[:, 1]) > 0.9
    c = TorchMLPClassifier(max_epochs=5, seed=8).fit(X, y)
    assert not np.array_equal(c.predict_proba(X), proba)


def test_mlp_accepts_sparse_and_string_labels():
    from scipy import sparse

    X, y = _numeric()
    labels = np.where(y == 1, "yes", "no")
    mlp = TorchMLPClassifier(max_epochs=3).fit(sparse.csr_matrix(X), labels)
    assert list(mlp.classes_) == ["no", "yes"]
    assert set(mlp.predict(X)) <= {"no", "yes"}
    with pytest.raises(ValueError, match="fitted on 6"):
        mlp.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="2 classes or more"):  # one class; three or more train a softmax output
        TorchMLPClassifier().fit(X, np.zeros(len(X)))


def test_mlp_module_does_not_import_torch():
    code = "import sys, pipelines.training.torch_mlp; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
