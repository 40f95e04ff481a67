"""The logged model: a fitted classifier whose pyfunc ``predict`` returns probabilities.

``mlflow.pyfunc.load_model(uri).predict(rows)`` gives, for a binary model, ONE value per row:
P(positive class); for a multi-class model a DataFrame with one column per class (the class
names, in the order of ``TrainingData.classes``). ``mlflow.sklearn.load_model(uri)`` gives the
same object; ``predict_proba`` and ``classes_`` are the fitted estimator's, so scikit-learn
code (permutation importance, voting over it) treats it like the estimator, and ``unwrap``
hands back the estimator itself (SHAP routing, the serving fast path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


class ClassProbabilities(BaseEstimator):
    """``predict`` = probabilities: P(positive) for two classes, a column per class otherwise.

    Not a scikit-learn classifier (its ``predict`` is no label): it only wraps a fitted one for
    MLflow's pyfunc flavour, which calls ``predict``.
    """

    def __init__(self, estimator=None, class_names=()):
        self.estimator = estimator
        self.class_names = class_names

    def fit(self, X, y):
        self.estimator.fit(X, y)
        return self

    @property
    def classes_(self):
        return self.estimator.classes_

    @property
    def multiclass(self) -> bool:
        return len(self.estimator.classes_) > 2

    def predict_proba(self, X):
        return self.estimator.predict_proba(X)

    def predict(self, X):
        proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        if proba.shape[1] == 2:
            return proba[:, 1]
        names = [str(c) for c in self.class_names] or [str(c) for c in self.estimator.classes_]
        return pd.DataFrame(proba, columns=names, index=getattr(X, "index", None))


def wrap(model, class_names=None) -> ClassProbabilities:
    """The model as it is logged (``class_names``: multi-class only; binary models need none)."""
    return ClassProbabilities(unwrap(model), tuple(class_names or ()))


def unwrap(model):
    """The fitted estimator inside a logged model (a model logged before the wrapper: itself)."""
    return model.estimator if isinstance(model, ClassProbabilities) else model


def class_names(model) -> list[str] | None:
    """A multi-class logged model's class names; None for a binary model."""
    if isinstance(model, ClassProbabilities) and model.multiclass:
        return [str(c) for c in model.class_names] or [str(c) for c in model.classes_]
    classes = getattr(model, "classes_", None)
    return [str(c) for c in classes] if classes is not None and len(classes) > 2 else None
