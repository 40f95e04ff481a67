"""Which SHAP explainer a fitted model gets (``_route``), and how a model's transformed columns map
back to the raw features it reads (one-hot columns summed per raw feature). Import from
``pipelines.training.explain``, which re-exports every name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pipelines.training.explain import Explainer

TREE, LINEAR, PERMUTATION = "tree", "linear", "permutation"
LOG_ODDS, PROBABILITY = "log_odds", "probability"


def _unwrap(model):
    """The fitted estimator inside a logged model (``pyfunc.ClassProbabilities``) or a FrozenEstimator."""
    from pipelines.training.pyfunc import unwrap

    model = unwrap(model)
    while type(model).__name__ == "FrozenEstimator":
        model = model.estimator
    return model


def _route(model, features: tuple[str, ...]) -> tuple[str, str, str]:
    """(kind, output space, why) for a fitted model."""
    from sklearn.pipeline import Pipeline

    if not (isinstance(model, Pipeline) and len(model.steps) == 2):
        return PERMUTATION, PROBABILITY, ""
    est = model.steps[-1][1]
    tree = _tree_kind(est)
    if tree is None and not _is_logreg(est):
        if type(est).__name__ == "CalibratedClassifierCV":
            return PERMUTATION, PROBABILITY, "calibrated probabilities are not linear in the features"
        return PERMUTATION, PROBABILITY, ""
    if tree == "hist_gb_categorical":
        return PERMUTATION, PROBABILITY, "shap's TreeExplainer mis-reads HistGradientBoosting's categorical splits"
    if _owners(model.steps[0][1], features) is None:
        return PERMUTATION, PROBABILITY, "the preprocessing's output columns cannot be mapped to raw features"
    if tree is None:
        return LINEAR, LOG_ODDS, ""
    return TREE, PROBABILITY if tree == "forest" else LOG_ODDS, ""


def _tree_kind(est) -> str | None:
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier

    if isinstance(est, (RandomForestClassifier, ExtraTreesClassifier)):
        return "forest"
    if isinstance(est, HistGradientBoostingClassifier):
        categorical = getattr(est, "is_categorical_", None)
        return "hist_gb_categorical" if categorical is not None and np.any(categorical) else "hist_gb"
    module = type(est).__module__.split(".")[0]
    if module == "xgboost" and type(est).__name__ == "XGBClassifier":
        return "xgboost"
    if module == "lightgbm" and type(est).__name__ == "LGBMClassifier":
        return "lightgbm"
    return None


def _is_logreg(est) -> bool:
    from sklearn.linear_model import LogisticRegression

    return isinstance(est, LogisticRegression) and est.coef_.shape[0] == 1


def _raw_features(model, X: pd.DataFrame) -> tuple[str, ...]:
    """The raw columns a model reads: its preprocessing's inputs, else its fitted names, else X's columns."""
    used = _used_columns(_unwrap(model))
    if used is None:
        return tuple(map(str, X.columns))
    order = [str(c) for c in getattr(_unwrap(model), "feature_names_in_", X.columns)]
    return tuple([c for c in order if c in used] + sorted(used - set(order)))


def _used_columns(model) -> set[str] | None:
    """Names of the raw columns a model reads, or None when it does not say."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    model = _unwrap(model)
    if isinstance(model, Pipeline):
        first = model.steps[0][1]
        if isinstance(first, ColumnTransformer):
            used = set()
            for name, trans, cols in first.transformers_:
                if trans == "drop" or _width(first, name) == 0:
                    continue
                resolved = _resolve(first, cols)
                if resolved is None:
                    return _names_in(first)
                used.update(resolved)
            return used
        if type(first).__name__ == "ColumnFrame":  # algorithms.ColumnFrame: the bagging Pipeline's first step
            return set(map(str, first.columns))
        return _names_in(model)
    bases = getattr(model, "estimators_", None)  # voting, stacking, PrefitStacking
    if isinstance(bases, list) and bases:
        sets = [_used_columns(b) for b in bases]
        if all(s is not None for s in sets):
            return set().union(*sets)
    return _names_in(model)


def _names_in(model) -> set[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else set(map(str, names))


def _width(ct, name: str) -> int:
    part = ct.output_indices_.get(name, slice(0, 0))
    return part.stop - part.start


def _resolve(ct, cols) -> list[str] | None:
    """A ColumnTransformer column selection as names, or None when it is not a plain list/array/slice/scalar."""
    names_in = getattr(ct, "feature_names_in_", None)
    if isinstance(cols, str):
        return [cols]
    if isinstance(cols, slice):
        return None if names_in is None else list(map(str, pd.Index(names_in)[cols]))
    if callable(cols):
        return None
    cols = list(np.atleast_1d(np.asarray(cols, dtype=object)))
    if all(isinstance(c, str) for c in cols):
        return cols
    if names_in is None:
        return None
    if all(isinstance(c, (bool, np.bool_)) for c in cols):
        return [str(n) for n, keep in zip(names_in, cols, strict=True) if keep]
    if all(isinstance(c, (int, np.integer)) for c in cols):
        return [str(names_in[int(c)]) for c in cols]
    return None


def _owners(ct, features: tuple[str, ...]) -> list[str] | None:
    """The raw feature behind each output column of a fitted ColumnTransformer, or None when unknowable."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if not isinstance(ct, ColumnTransformer) or getattr(ct, "sparse_output_", False):
        return None
    owners = []
    for name, trans, cols in ct.transformers_:
        width = 0 if trans == "drop" else _width(ct, name)
        if width == 0:
            continue
        cols = _resolve(ct, cols)
        if cols is None or not set(cols) <= set(features):
            return None
        if width == len(cols):
            owners += cols  # numeric, ordinal, native categorical: 1:1
            continue
        if len(cols) == 1:
            owners += cols * width
            continue
        last = trans.steps[-1][1] if isinstance(trans, Pipeline) else trans
        if not isinstance(last, OneHotEncoder) or hasattr(last, "feature_names_in_"):
            return None
        tags = [f"\x00{i}\x00" for i in range(len(cols))]  # unique prefixes no category can fake
        out = last.get_feature_names_out(tags)
        if len(out) != width:
            return None
        owners += [cols[next(i for i, t in enumerate(tags) if n.startswith(t + "_"))] for n in out]
    return owners if len(owners) == _total_width(ct) else None


def _total_width(ct) -> int:
    return max((part.stop for part in ct.output_indices_.values()), default=0)


def _grouping(explainer: Explainer) -> np.ndarray:
    """0/1 matrix (transformed columns x raw features) that sums one-hot contributions per raw feature."""
    owners = _owners(_unwrap(explainer.model).steps[0][1], explainer.features)
    index = {f: j for j, f in enumerate(explainer.features)}
    G = np.zeros((len(owners), len(index)))
    G[np.arange(len(owners)), [index[o] for o in owners]] = 1.0
    return G
