"""Figures people would rather look at than read: ROC/PR, confusion matrix, calibration,
feature importances and the leaderboard comparison. Each returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def roc_pr(y: np.ndarray, proba: np.ndarray, title: str):
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    fpr, tpr, _ = roc_curve(y, proba)
    a.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, proba):.3f}")
    a.plot([0, 1], [0, 1], ls="--", c="grey")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC - {title}")
    a.legend(loc="lower right")
    precision, recall, _ = precision_recall_curve(y, proba)
    b.plot(recall, precision, label=f"AP {average_precision_score(y, proba):.3f}")
    b.axhline(y.mean(), ls="--", c="grey", label=f"base rate {y.mean():.2f}")
    b.set(xlabel="recall", ylabel="precision", title=f"Precision-recall - {title}")
    b.legend(loc="upper right")
    fig.tight_layout()
    return fig


def confusion(y: np.ndarray, proba: np.ndarray, title: str, threshold: float = 0.5):
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set(
        xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title=f"Confusion @ {threshold} - {title}"
    )
    fig.tight_layout()
    return fig


def calibration(y: np.ndarray, proba: np.ndarray, title: str):
    from sklearn.calibration import calibration_curve

    frac, mean = calibration_curve(y, proba, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(mean, frac, marker="o")
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title=f"Calibration - {title}")
    fig.tight_layout()
    return fig


def importances(table: pd.DataFrame, title: str):
    """Bar chart of a table with columns feature, importance, std (largest on top)."""
    table = table.sort_values("importance")
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(table) + 1.2))
    ax.barh(table["feature"], table["importance"], xerr=table["std"], color="#4878a8")
    ax.set(xlabel="drop in ROC-AUC when shuffled", title=f"Permutation importance - {title}")
    fig.tight_layout()
    return fig


def leaderboard(board: pd.DataFrame):
    """Test ROC-AUC, p99 latency and fit time side by side for the algorithms that finished."""
    ok = board[board["status"] == "ok"].sort_values("cv_roc_auc")
    fig, axes = plt.subplots(1, 3, figsize=(14, 0.35 * len(ok) + 1.8), sharey=True)
    for ax, col, label in zip(
        axes,
        ["cv_roc_auc", "latency_p99_ms", "fit_s"],
        ["CV ROC-AUC", "p99 single-row latency (ms)", "fit time (s)"],
        strict=True,
    ):
        ax.barh(ok["algorithm"], ok[col], color="#4878a8")
        ax.set(xlabel=label)
    lo = max(0.5, float(ok["cv_roc_auc"].min()) - 0.02) if len(ok) else 0.5
    axes[0].set_xlim(lo, 1.0)
    fig.suptitle("Leaderboard")
    fig.tight_layout()
    return fig


def model_figures(y: np.ndarray, score: np.ndarray, title: str, classes=None) -> list:
    """(figure, artifact path) of one model's test scores: ROC/PR, confusion and calibration for a binary
    model; for a multi-class one, one-vs-rest ROC per class and the class confusion matrix (no calibration)."""
    if np.ndim(score) == 1:
        return [
            (roc_pr(y, score, title), "plots/roc_pr.png"),
            (confusion(y, score, title), "plots/confusion_matrix.png"),
            (calibration(y, score, title), "plots/calibration.png"),
        ]
    return [
        (roc_per_class(y, score, title, classes), "plots/roc_pr.png"),
        (confusion_classes(y, score, title, classes), "plots/confusion_matrix.png"),
    ]


def roc_per_class(y: np.ndarray, proba: np.ndarray, title: str, classes):
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for k, name in enumerate(classes):
        hit = (np.asarray(y) == k).astype(int)
        if 0 < hit.sum() < len(hit):
            fpr, tpr, _ = roc_curve(hit, proba[:, k])
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(hit, proba[:, k]):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC one-vs-rest - {title}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_classes(y: np.ndarray, proba: np.ndarray, title: str, classes):
    from sklearn.metrics import confusion_matrix

    k = proba.shape[1]
    cm = confusion_matrix(y, proba.argmax(axis=1), labels=list(range(k)))
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k + 2, 1.0 + 0.6 * k + 1.5))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    names = [str(c) for c in classes]
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="actual", title=f"Confusion - {title}")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    fig.tight_layout()
    return fig
