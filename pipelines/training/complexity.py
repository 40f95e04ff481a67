"""How big and how readable a fitted model is: learned parameters (walked through pipelines and
ensembles), complexity = log10(1 + parameters) and an interpretability score per model family.

Pure (numpy and scikit-learn); ``pipelines.training.metrics`` re-exports every name."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

# Fitted attributes that describe the data or the fit, not what the model learned.
_NOT_PARAMETERS = frozenset(
    {
        "classes_",
        "feature_names_in_",
        "n_features_in_",
        "n_iter_",
        "n_samples_seen_",
        "n_outputs_",
        "labels_",
        "estimators_samples_",
        "estimators_features_",
    }
)


_SCALER_ATTRS = ("mean_", "scale_", "min_", "center_")


def _size(value: Any) -> int:
    return int(np.size(value)) if value is not None else 0


def _is_estimator(obj: Any) -> bool:
    return hasattr(obj, "fit") and hasattr(obj, "get_params")


def _sum(items: Iterable[Any]) -> int:
    return sum(_count(item) for item in items)


def _xgboost_nodes(model: Any) -> int:
    """Nodes over all trees from the booster's JSON model (one parse; gblinear: its weights)."""
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    gb = json.loads(bytes(booster.save_raw(raw_format="json")))["learner"]["gradient_booster"]
    if gb["name"] == "gblinear":
        return len(gb["model"]["weights"])
    trees = (gb["gbtree"] if gb["name"] == "dart" else gb)["model"]["trees"]
    return sum(int(t["tree_param"]["num_nodes"]) - int(t["tree_param"].get("num_deleted", 0)) for t in trees)


def _lightgbm_nodes(model: Any) -> int:
    """Nodes over all trees: a tree with L leaves has 2L - 1 nodes.

    Reads ``num_leaves=`` from the model text, which is several times faster than ``dump_model()``.
    """
    booster = model.booster_ if hasattr(model, "booster_") else model
    lines = booster.model_to_string().splitlines()
    return sum(2 * int(line.partition("=")[2]) - 1 for line in lines if line.startswith("num_leaves="))


def _calibrator(cal: Any) -> int:
    if hasattr(cal, "a_") and hasattr(cal, "b_"):  # sigmoid (Platt): two scalars
        return 2
    return _count(cal)


def _fallback(est: Any) -> int:
    """Sizes of the public fitted attributes (ending in ``_``) that hold arrays or estimators."""
    total = 0
    for name, value in getattr(est, "__dict__", {}).items():
        if name.startswith("_") or not name.endswith("_") or name in _NOT_PARAMETERS or name.startswith("oob_"):
            continue
        total += _value_count(value)
    return total


def _value_count(value: Any) -> int:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return sum(_value_count(v) for v in value.ravel())
        return int(value.size) if np.issubdtype(value.dtype, np.number) or value.dtype == bool else 0
    if isinstance(value, list | tuple):
        return sum(_value_count(v) for v in value)
    if _is_estimator(value):
        return _count(value)
    return 0


def _count(est: Any) -> int:
    """Dispatch on what the estimator exposes, most specific first (see count_parameters)."""
    if est is None or isinstance(est, str):  # "drop" / "passthrough"
        return 0
    if isinstance(getattr(est, "n_parameters_", None), int | np.integer):  # torch wrappers
        return int(est.n_parameters_)
    module = type(est).__module__ or ""
    if module.startswith("xgboost"):
        return _xgboost_nodes(est)
    if module.startswith("lightgbm"):
        return _lightgbm_nodes(est)
    if hasattr(est, "steps"):  # Pipeline
        return _sum(step for _, step in est.steps)
    if hasattr(est, "transformers_"):  # ColumnTransformer (fitted)
        return _sum(t for _, t, _ in est.transformers_)
    if hasattr(est, "transformer_list"):  # FeatureUnion
        return _sum(t for _, t in est.transformer_list)
    if hasattr(est, "_predictors"):  # HistGradientBoosting*
        return sum(len(p.nodes) for iteration in est._predictors for p in iteration)
    if hasattr(getattr(est, "tree_", None), "node_count"):  # single sklearn tree
        return int(est.tree_.node_count)
    if hasattr(est, "calibrated_classifiers_"):  # CalibratedClassifierCV
        return sum(
            _count(cc.estimator) + sum(_calibrator(c) for c in cc.calibrators) for cc in est.calibrated_classifiers_
        )
    if type(est).__name__ == "FrozenEstimator":
        return _count(est.estimator)
    if hasattr(est, "estimators_"):  # forests, bagging, boosting, voting, stacking, one-vs-rest
        members = est.estimators_
        members = members.ravel() if isinstance(members, np.ndarray) else members  # GradientBoosting: 2-D
        return _sum(members) + _count(getattr(est, "final_estimator_", None))
    if hasattr(est, "support_vectors_"):  # SVMs: support vectors, their weights, intercepts
        return _size(est.support_vectors_) + _size(est.dual_coef_) + _size(est.intercept_)
    if hasattr(est, "coefs_") and hasattr(est, "intercepts_"):  # sklearn MLP
        return sum(_size(w) for w in est.coefs_) + sum(_size(b) for b in est.intercepts_)
    if type(est).__name__ == "Nystroem":
        return _size(est.components_)
    if isinstance(getattr(est, "coef_", None), np.ndarray):  # linear models
        intercept = _size(getattr(est, "intercept_", None)) if getattr(est, "fit_intercept", True) else 0
        return _size(est.coef_) + intercept
    if hasattr(est, "categories_"):  # OneHotEncoder, OrdinalEncoder
        return sum(_size(c) for c in est.categories_)
    if hasattr(est, "scale_") and any(isinstance(getattr(est, a, None), np.ndarray) for a in _SCALER_ATTRS):
        return sum(_size(getattr(est, a, None)) for a in _SCALER_ATTRS)
    return _fallback(est)


def count_parameters(model: Any) -> int:
    """Number of learned parameters of a fitted estimator or Pipeline, walked recursively.

    What counts as a parameter, by kind:

    - Pipeline, ColumnTransformer, FeatureUnion: the sum over their fitted steps;
    - linear models: ``coef_`` size + ``intercept_`` size (0 without an intercept);
    - scikit-learn trees: ``tree_.node_count``; forests, bagging, gradient boosting, voting,
      stacking and one-vs-rest: the sum over ``estimators_`` (+ ``final_estimator_``);
    - HistGradientBoosting: nodes over all ``_predictors``; XGBoost: nodes over all trees of the
      booster (gblinear: its weights); LightGBM: 2 * num_leaves - 1 per tree (no linear-tree terms);
    - SVMs: support vectors + dual coefficients + intercepts; Nystroem: ``components_`` size;
      scikit-learn MLP: the sizes of ``coefs_`` and ``intercepts_``;
    - anything exposing an integer ``n_parameters_`` (the torch wrappers): that number;
    - CalibratedClassifierCV: each calibrated copy's estimator + its calibrator (sigmoid: 2);
    - encoders: number of categories; scalers: sizes of ``mean_``/``scale_``/``min_``/``center_``.

    Fallback for any other type: the total size of public fitted attributes (names ending in
    ``_``) holding numeric arrays, recursing into estimators held in such attributes or in
    lists/object arrays. Data descriptions such as ``classes_``, ``feature_names_in_`` and
    ``labels_`` are not counted. An unfitted scikit-learn estimator raises ValueError.
    """
    if _is_estimator(model):
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except NotFittedError as exc:
            raise ValueError(f"{type(model).__name__} is not fitted: fit it before counting its parameters") from exc
        except (TypeError, AttributeError):
            pass  # not a scikit-learn estimator after all: count what it has
    return int(_count(model))


def complexity_score(model: Any) -> float:
    """``log10(1 + count_parameters(model))``: roughly the number of digits of the parameter count.

    Parameter counts span six orders of magnitude across families (a logistic regression has
    tens, a boosted ensemble hundreds of thousands), so the log keeps the axis readable on a
    Pareto plot and makes a 10x larger model cost one unit; the ``1 +`` keeps it 0 for 0.
    """
    return math.log10(1 + count_parameters(model))


INTERPRETABILITY_BASE = MappingProxyType(
    {
        "linear": 1.0,
        "tree": 0.6,
        "tree_ensemble": 0.4,
        "boosting": 0.35,
        "kernel": 0.2,
        "neural": 0.15,
        "ensemble": 0.1,
    }
)


FAMILIES: tuple[str, ...] = tuple(INTERPRETABILITY_BASE)


def interpretability_score(family: str, n_parameters: int) -> float:
    """How easily a person can read the model, in [0, 1]: a base score per family times a size penalty.

    ==============  ==========  ===========================================
    family          base score  examples
    ==============  ==========  ===========================================
    linear          1.0         logistic regression, linear SVM
    tree            0.6         a single decision tree
    tree_ensemble   0.4         random forest, extra trees
    boosting        0.35        XGBoost, LightGBM, HistGradientBoosting
    kernel          0.2         RBF SVM, Nystroem + linear model
    neural          0.15        MLP, torch networks
    ensemble        0.1         voting, stacking of other models
    ==============  ==========  ===========================================

    ``score = base * 1 / (1 + log10(1 + n_parameters) / 10)``

    The penalty is 1 for an empty model and halves the base score only at 10^10 parameters, so
    the family dominates and size separates models within a family (a 10-coefficient linear
    model scores 0.91, a 1,000-node tree 0.46). Raises ValueError for an unknown family.
    """
    if family not in INTERPRETABILITY_BASE:
        raise ValueError(f"unknown model family {family!r}; known families: {', '.join(FAMILIES)}")
    if isinstance(n_parameters, bool) or not isinstance(n_parameters, int | np.integer) or n_parameters < 0:
        raise ValueError(f"n_parameters must be an integer >= 0; got {n_parameters!r}")
    return INTERPRETABILITY_BASE[family] / (1.0 + math.log10(1 + int(n_parameters)) / 10.0)
