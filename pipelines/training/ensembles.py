"""Voting and stacking assembled from base models that are already judged, without refitting them.

Every base algorithm's CV uses the same folds (``evaluate.fold_ids``), so its out-of-fold (OOF)
probabilities are exactly what each fold's copy of the base predicts inside a voting or stacking
ensemble. From them:

- **voting** (soft, equal weights): the fold's ROC-AUC is that of the mean OOF probability, the
  same figure a ``VotingClassifier`` refitted per fold would give; the final model is a
  ``VotingClassifier`` over the fitted final bases (frozen, not refitted).
- **stacking**: a logistic regression on the bases' OOF probabilities (scikit-learn's
  ``StackingClassifier`` with ``cv`` = these folds fits the same meta model). CV: for fold k the
  meta model is fitted on the OOF rows of the other folds and scored on fold k. The bases that
  produced those OOF rows saw fold k, so this is the usual OOF-stacking estimate, slightly
  optimistic next to a fully nested CV (which costs folds x folds refits of every base); the
  held-out test score is unaffected.

Bagging needs new bootstrap fits and is built with ``algorithms.build_ensemble``.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from pipelines.training import multiclass
from pipelines.training.evaluate import CrossValidation

REUSABLE = ("voting", "stacking")


class PrefitStacking(ClassifierMixin, BaseEstimator):
    """P(class 1) of a fitted meta model over the P(class 1) of fitted base models.

    Every part is fitted already (the meta model on the bases' out-of-fold probabilities, see
    ``assemble``); ``fit`` refits nothing, it only records the classes, like ``FrozenEstimator``.
    """

    def __init__(self, estimators=(), final_estimator=None):
        self.estimators = estimators
        self.final_estimator = final_estimator

    def fit(self, X, y):
        self.estimators_ = [model for _, model in self.estimators]
        self.final_estimator_ = self.final_estimator
        self.classes_ = np.unique(np.asarray(y))
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X):
        meta = np.column_stack([multiclass.scores(model.predict_proba(X)) for model in self.estimators_])
        return self.final_estimator_.predict_proba(meta)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _meta_model(seed: int) -> LogisticRegression:
    return LogisticRegression(max_iter=1000, random_state=seed)


def _check(name: str, oof: np.ndarray, y: np.ndarray, fold: np.ndarray, classes: int = 2) -> np.ndarray:
    if name not in REUSABLE:
        raise ValueError(f"{name!r} cannot be assembled from judged bases; reusable: {', '.join(REUSABLE)}")
    width = 1 if classes <= 2 else classes  # columns per base: P(class 1), or one per class
    if oof.ndim != 2 or oof.shape[1] < 2 * width or oof.shape[1] % width:
        raise ValueError(f"ensemble {name!r} needs out-of-fold predictions of at least 2 bases, got shape {oof.shape}")
    if not len(oof) == len(y) == len(fold):
        raise ValueError(f"out-of-fold predictions ({len(oof)} rows) do not match the labels ({len(y)} rows)")
    return ~np.isnan(oof).any(axis=1)  # rows every base predicted (CV may stop early on the time budget)


def cross_validation(name: str, oof: np.ndarray, y, fold: np.ndarray, seed: int, classes: int = 2) -> CrossValidation:
    """CV of the ensemble from its bases' OOF probabilities (columns of ``oof``), over the folds all bases did.

    Multi-class (``classes`` > 2): each base has one column per class, bases side by side.
    """
    started = time.perf_counter()
    y = np.asarray(y)
    done = _check(name, oof, y, fold, classes)
    aucs, ens = [], multiclass.empty(len(y), classes)
    for k in np.unique(fold[done]):
        valid = done & (fold == k)
        if name == "voting":
            ens[valid] = _mean_of_bases(oof[valid], classes)
        else:
            train = done & (fold != k)
            proba = _meta_model(seed).fit(oof[train], y[train]).predict_proba(oof[valid])
            ens[valid] = multiclass.scores(proba)
        aucs.append(multiclass.roc_auc(y[valid], ens[valid]))
    if not aucs:
        raise ValueError(f"ensemble {name!r}: no CV fold was done by every base")
    return CrossValidation(aucs, ens, time.perf_counter() - started)


def _mean_of_bases(oof: np.ndarray, classes: int) -> np.ndarray:
    """Soft voting: the mean over bases of P(class 1), or of each class's probability."""
    if classes <= 2:
        return oof.mean(axis=1)
    return oof.reshape(len(oof), -1, classes).mean(axis=1)


def assemble(
    name: str, bases: list[tuple[str, object]], oof: np.ndarray, y, fold: np.ndarray, seed: int, classes: int = 2
):
    """The ensemble over fitted final ``bases`` (in the column order of ``oof``), ready to ``fit`` cheaply."""
    y = np.asarray(y)
    done = _check(name, oof, y, fold, classes)
    if len(bases) != oof.shape[1] // (1 if classes <= 2 else classes):
        raise ValueError(f"{len(bases)} base models for {oof.shape[1]} columns of out-of-fold predictions")
    if name == "voting":
        return VotingClassifier([(b, FrozenEstimator(m)) for b, m in bases], voting="soft", n_jobs=1)
    meta = _meta_model(seed).fit(oof[done], y[done])
    return PrefitStacking(list(bases), meta)
