"""Sentiment figures: ROC curves of every model on the test rows (one-vs-rest of the first class when multi-class)."""

from __future__ import annotations

import numpy as np


def roc_figure(y, probs: dict, class_names: list[str] | None = None):
    """``probs``: model -> probability matrix (or P(class 1)). Two classes: the positive class's ROC;
    more: each model's macro-average is in the legend and the curve is of the commonest class vs the rest."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    from pipelines.deep.text.models import scores

    y = np.asarray(y)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for name, p in probs.items():
        p = np.asarray(p)
        p1 = p[:, 1] if p.ndim == 2 and p.shape[1] == 2 else p
        k = 1 if p1.ndim == 1 else int(np.bincount(y).argmax())
        fpr, tpr, _ = roc_curve(y == k, p1 if p1.ndim == 1 else p1[:, k])
        ax.plot(fpr, tpr, label=f"{name} (AUC {scores(y, p)['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.5)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    if class_names and len(class_names) > 2:
        ax.set_title(f"{class_names[int(np.bincount(y).argmax())]} vs rest; AUC: macro one-vs-rest")
    ax.legend()
    fig.tight_layout()
    return fig
