"""The algorithm registry: every model is a scikit-learn Pipeline that takes the raw gold features.

Each base algorithm is ``Pipeline([("prep", ...), ("model", ...)])`` (``svm_rbf`` adds a
``kernel`` step between them), so tuning, the benchmark, SHAP and serving treat all alike and
``set_params(model__...)`` reaches every model's hyperparameters. The preprocessing accepts
categorical columns as ``str``/object or ``category`` dtype, maps missing values (None/NaN) to
their own ``__missing__`` category, and never fails on a category first seen at predict time.

Every model runs on ONE thread (n_jobs=1 and friends): the benchmark runs algorithms in parallel
processes. xgboost, lightgbm and torch are imported when a model is built, not at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    BaggingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from threadpoolctl import ThreadpoolController

from pipelines.training.metrics import FAMILIES  # noqa: F401  (re-exported: the one list of model families)
from pipelines.training.preprocessing import (  # noqa: F401  (re-exported: pickled models and serving name them here)
    MISSING,
    FeatureSpec,
    _as_category_frame,
    _as_float,
    _as_float_frame,
    _as_strings,
    _as_unicode,
    _categorical_mask,
    _category_prep,
    _onehot_prep,
    _ordinal_prep,
    _to_str,
    check_features,
)


@dataclass(frozen=True)
class Algorithm:
    name: str  # registry key
    family: str  # one of pipelines.training.metrics.FAMILIES
    description: str
    build: Callable[[FeatureSpec, int], object]  # (features, seed) -> unfitted Pipeline on raw features
    ensemble: bool = False  # voting/bagging/stacking: built from base models with build_ensemble()


# -- base algorithms ------------------------------------------------------------------------


def _logreg(features: FeatureSpec, seed: int) -> Pipeline:
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    return Pipeline([("prep", _onehot_prep(features)), ("model", model)])


def _ridge(features: FeatureSpec, seed: int) -> Pipeline:
    model = CalibratedClassifierCV(RidgeClassifier(alpha=1.0), method="sigmoid", cv=3, n_jobs=1)
    return Pipeline([("prep", _onehot_prep(features)), ("model", model)])


def _random_forest(features: FeatureSpec, seed: int) -> Pipeline:
    model = RandomForestClassifier(
        n_estimators=300, min_samples_leaf=3, max_features="sqrt", n_jobs=1, random_state=seed
    )
    return Pipeline([("prep", _ordinal_prep(features)), ("model", model)])


@functools.cache
def _openmp() -> ThreadpoolController:
    """The loaded OpenMP runtimes, found once: ``threadpool_limits`` scans every loaded shared library
    on each call (8 ms with torch loaded, more than scoring a row); a kept controller limits in ~30 us."""
    return ThreadpoolController().select(user_api="openmp")


class OneThreadHistGradientBoosting(HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier on one OpenMP thread (it has no n_jobs).

    Its OpenMP threads spin-wait: with the benchmark's parallel processes sharing the cores, the
    default (one thread per core) ran a 400-row fit in 100 s instead of 0.1 s.
    """

    def fit(self, X, y, sample_weight=None, **fit_params):
        with _openmp().limit(limits=1):
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)

    def predict(self, X):
        with _openmp().limit(limits=1):
            return super().predict(X)

    def predict_proba(self, X):
        with _openmp().limit(limits=1):
            return super().predict_proba(X)

    def decision_function(self, X):
        with _openmp().limit(limits=1):
            return super().decision_function(X)


def _hist_gb(features: FeatureSpec, seed: int) -> Pipeline:
    model = OneThreadHistGradientBoosting(
        learning_rate=0.05,
        max_iter=1000,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=_categorical_mask(features) if features.categorical else None,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=30,
        scoring="loss",
        random_state=seed,
    )
    return Pipeline([("prep", _ordinal_prep(features)), ("model", model)])


def _xgboost(features: FeatureSpec, seed: int) -> Pipeline:
    from xgboost import XGBClassifier

    # Ordinal codes + feature_types instead of pandas category dtype: the codes are learned by
    # sklearn, so unseen categories are NaN (missing) and nothing depends on xgboost's re-coding.
    model = XGBClassifier(
        n_estimators=400,
        max_depth=6,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.5,
        min_child_weight=2.0,
        tree_method="hist",
        enable_categorical=True,
        feature_types=["c"] * len(features.categorical) + ["q"] * len(features.numeric),
        # One-vs-rest splits for categoricals with fewer than 64 levels, partition splits above: on
        # Adult (at most 42 levels) this gave 5-fold CV ROC-AUC 0.9298 against 0.9291 with partitions.
        max_cat_to_onehot=64,
        eval_metric="logloss",
        n_jobs=1,
        random_state=seed,
    )
    return Pipeline([("prep", _ordinal_prep(features)), ("model", model)])


def _lightgbm(features: FeatureSpec, seed: int) -> Pipeline:
    from lightgbm import LGBMClassifier

    # LightGBM's sklearn API takes categorical columns from pandas ``category`` dtype (a constructor
    # ``categorical_feature`` is ignored), and remaps categories at predict: unseen -> missing.
    model = LGBMClassifier(
        n_estimators=500,
        learning_rate=0.03,
        num_leaves=31,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.5,
        reg_lambda=1.0,
        cat_smooth=50.0,
        min_data_per_group=200,
        max_cat_to_onehot=64,  # one-vs-rest splits below 64 levels (as xgboost): Adult CV 0.9298 vs 0.9295
        n_jobs=1,
        random_state=seed,
        verbose=-1,
    )
    return Pipeline([("prep", _category_prep(features)), ("model", model)])


def _svm_rbf(features: FeatureSpec, seed: int) -> Pipeline:
    """An RBF-kernel SVM made practical: a Nystroem feature map, then a linear SVM, calibrated.

    Exact ``SVC(kernel="rbf", probability=True)`` did not finish in 10 minutes on Adult's 39k
    training rows on 2 cores (its cost grows with n^2..n^3, and probability=True adds an internal
    5-fold CV), hence the kernel approximation: 500 Nystroem components on one-hot + scaled
    features, a LinearSVC on top, and Platt (sigmoid) calibration for ``predict_proba``.
    """
    kernel = Nystroem(kernel="rbf", gamma=0.05, n_components=500, random_state=seed)
    model = CalibratedClassifierCV(LinearSVC(C=0.1, random_state=seed), method="sigmoid", cv=3, n_jobs=1)
    return Pipeline([("prep", _onehot_prep(features)), ("kernel", kernel), ("model", model)])


def _mlp_torch(features: FeatureSpec, seed: int) -> Pipeline:
    from pipelines.training.torch_mlp import TorchMLPClassifier

    return Pipeline([("prep", _onehot_prep(features)), ("model", TorchMLPClassifier(seed=seed))])


def _ensemble_only(name: str) -> Callable[[FeatureSpec, int], object]:
    def build(features: FeatureSpec, seed: int) -> object:
        raise ValueError(
            f"{name!r} is an ensemble of fitted-or-unfitted base models: call "
            f"build_ensemble({name!r}, [(base_name, pipeline), ...], features, seed)"
        )

    return build


_BASES = [  # (name, family, description, builder), in default order
    ("logreg", "linear", "Logistic regression on one-hot + standardised features", _logreg),
    ("ridge", "linear", "Ridge classifier with sigmoid calibration (3-fold) for probabilities", _ridge),
    ("random_forest", "tree_ensemble", "Random forest, 300 trees, ordinal-encoded categoricals", _random_forest),
    ("hist_gb", "boosting", "scikit-learn histogram gradient boosting, native categoricals", _hist_gb),
    ("xgboost", "boosting", "XGBoost hist trees with native categorical splits", _xgboost),
    ("lightgbm", "boosting", "LightGBM leaf-wise boosting with native categorical splits", _lightgbm),
    ("svm_rbf", "kernel", "RBF SVM via a 500-component Nystroem map + calibrated linear SVM", _svm_rbf),
    ("mlp_torch", "neural", "PyTorch MLP (128-64, dropout) with early stopping", _mlp_torch),
]
_ENSEMBLES = [
    ("voting", "Soft voting over the given base models"),
    ("bagging", "Bagging (5 bootstraps) of the first (best) base model"),
    ("stacking", "Stacking of the base models under a logistic regression (3-fold)"),
]
ALGORITHMS: dict[str, Algorithm] = {
    **{name: Algorithm(name, family, text, builder) for name, family, text, builder in _BASES},
    **{name: Algorithm(name, "ensemble", text, _ensemble_only(name), ensemble=True) for name, text in _ENSEMBLES},
}
BASE_ALGORITHMS: tuple[str, ...] = tuple(n for n, a in ALGORITHMS.items() if not a.ensemble)
ENSEMBLES: tuple[str, ...] = ("voting", "bagging", "stacking")
# Base algorithms by their task time on Adult (bench/training.py, 5 folds), longest first: the
# training DAG maps them in this order and its train task starts them in it (plugins/task_order.py),
# the same order in every run (Airflow's own order of mapped instances is arbitrary).
LONGEST_FIRST: tuple[str, ...] = (
    "svm_rbf",
    "random_forest",
    "lightgbm",
    "mlp_torch",
    "hist_gb",
    "xgboost",
    "ridge",
    "logreg",
)


def start_order(names: list[str]) -> list[str]:
    """``names`` longest first (``LONGEST_FIRST``); names it does not rank keep their order, last."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    return sorted(names, key=lambda n: rank.get(n, len(rank)))


def get(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}") from None


def build(name: str, features: FeatureSpec, seed: int) -> Pipeline:
    """An unfitted Pipeline for a base algorithm, taking the raw feature DataFrame."""
    return get(name).build(features, seed)


# -- ensembles ------------------------------------------------------------------------------


class ColumnFrame(TransformerMixin, BaseEstimator):
    """Give an array back its column names (a DataFrame passes through, reduced to ``columns``).

    BaggingClassifier turns its input into a numpy array; this step lets the bagged base
    Pipelines, which select columns by name, see a DataFrame again.
    """

    def __init__(self, columns=()):
        self.columns = columns

    def fit(self, X, y=None):
        self.n_features_in_ = len(self.columns)
        return self

    def transform(self, X):
        columns = list(self.columns)
        if isinstance(X, pd.DataFrame):
            return X[columns]
        return pd.DataFrame(np.asarray(X, dtype=object), columns=columns)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(list(self.columns), dtype=object)


def build_ensemble(name: str, bases: list[tuple[str, object]], features: FeatureSpec, seed: int) -> object:
    """An unfitted ensemble over base Pipelines (fitted or not: they are cloned), taking raw features.

    voting: soft VotingClassifier. stacking: StackingClassifier, logistic regression on the bases'
    out-of-fold probabilities (3 stratified folds). bagging: 5 bootstrap copies of the FIRST base,
    returned as ``Pipeline([("select", ...), ("model", BaggingClassifier)])``.
    """
    if name not in ENSEMBLES:
        get(name)  # unknown -> ValueError listing the names
        raise ValueError(f"{name!r} is a base algorithm, not an ensemble; ensembles: {', '.join(ENSEMBLES)}")
    bases = list(bases)
    if not bases:
        raise ValueError(f"ensemble {name!r} needs at least one base model, got none")
    names = [b for b, _ in bases]
    if len(set(names)) != len(names):
        raise ValueError(f"ensemble {name!r}: base names must be unique, got {names}")
    if name != "bagging" and len(bases) < 2:
        raise ValueError(f"ensemble {name!r} needs at least 2 base models, got {names}")
    estimators = [(b, clone(model)) for b, model in bases]

    if name == "voting":
        return VotingClassifier(estimators, voting="soft", n_jobs=1)
    if name == "stacking":
        return StackingClassifier(
            estimators,
            final_estimator=LogisticRegression(max_iter=1000),
            cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=seed),
            stack_method="predict_proba",
            passthrough=False,
            n_jobs=1,
        )
    columns = list(features.columns)
    inner = Pipeline([("frame", ColumnFrame(columns)), ("base", estimators[0][1])])
    bagging = BaggingClassifier(inner, n_estimators=5, bootstrap=True, n_jobs=1, random_state=seed)
    return Pipeline([("select", ColumnFrame(columns)), ("model", bagging)])
