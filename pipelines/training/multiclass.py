"""Scores of binary and multi-class classifiers in one shape, and the multi-class test metrics.

A binary model's score is P(class 1), one value per row, as everywhere else in training; a
multi-class model's is its ``predict_proba`` matrix, one column per class (codes 0..k-1, see
``TrainingData.classes``). Multi-class ROC-AUC is one-vs-rest, **macro** averaged (every class
counts the same, whatever its size), so a rare class the model cannot find pulls the figure
down; the weighted average is reported next to it as ``roc_auc_weighted``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize


def scores(proba) -> np.ndarray:
    """What the metrics read from ``predict_proba``: P(class 1) for two columns, else the whole matrix."""
    proba = np.asarray(proba, dtype=np.float64)
    return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba


def empty(rows: int, classes: int) -> np.ndarray:
    """Out-of-fold scores not computed yet (NaN): one column for binary, one per class otherwise."""
    return np.full(rows if classes <= 2 else (rows, classes), np.nan)


def roc_auc(y, score) -> float:
    """ROC-AUC of binary scores, or one-vs-rest macro ROC-AUC of a probability matrix (column k: class k).

    Multi-class: the mean over the classes ``y`` holds rows of and rows not of (a rare class can miss a
    fold); with every class there, scikit-learn's ``roc_auc_score(multi_class="ovr", average="macro")``.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim == 1:
        return float(roc_auc_score(y, score))
    y = np.asarray(y).astype(int)
    aucs = [roc_auc_score(y == k, score[:, k]) for k in range(score.shape[1]) if 0 < np.sum(y == k) < len(y)]
    if not aucs:
        raise ValueError("ROC-AUC is undefined: the rows hold a single class")
    return float(np.mean(aucs))


def full(proba, fitted_classes, classes: int) -> np.ndarray:
    """``predict_proba`` of a model fitted on rows lacking some classes, widened to every class code 0..k-1."""
    proba = np.asarray(proba, dtype=np.float64)
    if classes <= 2 or proba.shape[1] == classes:
        return proba
    out = np.zeros((len(proba), classes))
    out[:, np.asarray(fitted_classes).astype(int)] = proba
    return out


def scorer(estimator, X, y) -> float:
    """A scikit-learn scorer: ``roc_auc`` of the estimator's probabilities (permutation importance)."""
    proba = np.asarray(estimator.predict_proba(X))
    return roc_auc(y, scores(full(proba, estimator.classes_, max(proba.shape[1], int(np.max(y)) + 1))))


def softmax(margin: np.ndarray) -> np.ndarray:
    """Probabilities from per-class raw scores (a booster's multi-class margins)."""
    z = margin - margin.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def multiclass_metrics(y_true, proba, classes) -> dict[str, float]:
    """Test metrics of a multi-class model: the argmax class is the prediction.

    ``roc_auc`` (one-vs-rest, macro), ``roc_auc_weighted``, ``pr_auc`` (macro average precision),
    ``log_loss``, ``brier`` (mean over rows of the squared error summed over classes), ``accuracy``,
    ``precision``/``recall``/``f1`` (macro), and per class ``precision_<c>``, ``recall_<c>``,
    ``f1_<c>``, ``roc_auc_<c>`` (one-vs-rest) with ``<c>`` the class name.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=np.float64)
    k = p.shape[1]
    labels = np.arange(k)
    onehot = label_binarize(y, classes=labels)
    pred = p.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "roc_auc": roc_auc(y, p),
        "roc_auc_weighted": _weighted_auc(y, p),
        "pr_auc": float(average_precision_score(onehot, p, average="macro")),
        "log_loss": float(log_loss(y, p, labels=labels)),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
    }
    for i, name in enumerate(classes):
        out[f"precision_{name}"] = float(precision[i])
        out[f"recall_{name}"] = float(recall[i])
        out[f"f1_{name}"] = float(f1[i])
        present = onehot[:, i].any() and not onehot[:, i].all()
        out[f"roc_auc_{name}"] = float(roc_auc_score(onehot[:, i], p[:, i])) if present else float("nan")
    cm = confusion_matrix(y, pred, labels=labels)
    out["misclassified"] = float(cm.sum() - np.trace(cm))
    return out


def _weighted_auc(y: np.ndarray, p: np.ndarray) -> float:
    """One-vs-rest ROC-AUC weighted by class size, over the classes present (as ``roc_auc``)."""
    present = [k for k in range(p.shape[1]) if 0 < np.sum(y == k) < len(y)]
    weights = np.array([np.sum(y == k) for k in present], dtype=np.float64)
    aucs = np.array([roc_auc_score(y == k, p[:, k]) for k in present])
    return float(np.sum(aucs * weights) / weights.sum())


class OneClass:
    """One class of a fitted multi-class model seen as a binary model: P(that class) against the rest.

    What the SHAP step explains per class (``explain.build_explainer`` takes binary models): the
    permutation explainer on it gives each raw feature's contribution to that class's probability.
    """

    def __init__(self, model, k: int):
        self.model, self.k = model, int(k)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X):
        p = np.asarray(self.model.predict_proba(X), dtype=np.float64)[:, self.k]
        return np.column_stack([1.0 - p, p])
