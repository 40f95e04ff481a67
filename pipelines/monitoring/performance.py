"""Labelled predictions per batch, and the degradation rule.

A batch is one logical date (``batch_rows=0``) or ``batch_rows`` consecutive labelled
predictions in time order. Degradation compares the mean ROC-AUC of the latest ``window``
batches with the mean of the ``window`` batches before them: an alert when the relative drop
``(before - latest) / before`` is more than ``max_drop``. Batches without both classes have no
ROC-AUC and are left out of the means; with fewer than ``2 * window`` scored batches there is no
verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def batches(joined: pd.DataFrame, ts: str = "_ts", batch_rows: int = 0) -> pd.Series:
    """The batch key of each labelled prediction: its UTC date, or its chunk number in time order."""
    if batch_rows <= 0:
        return pd.to_datetime(joined[ts], utc=True).dt.strftime("%Y-%m-%d")
    order = pd.to_datetime(joined[ts], utc=True).rank(method="first").astype(int) - 1
    return (order // batch_rows).map(lambda i: f"{i:06d}")


def batch_metrics(
    joined: pd.DataFrame, batch: str = "batch", label: str = "label", probability: str = "_probability"
) -> pd.DataFrame:
    """Per batch: rows, positive rate, mean probability, accuracy at 0.5, ROC-AUC (NaN with one class), log loss."""
    from sklearn.metrics import log_loss, roc_auc_score

    missing = [c for c in (batch, label, probability) if c not in joined.columns]
    if missing:
        raise ValueError(f"batch metrics need column(s) {missing}; got {list(joined.columns)}")
    rows = []
    for key, part in joined.groupby(batch, sort=True):
        y, p = part[label].astype(int).to_numpy(), part[probability].astype(float).to_numpy()
        two = len(np.unique(y)) == 2
        rows.append(
            {
                "batch": key,
                "rows": len(part),
                "positive_rate": float(y.mean()),
                "mean_probability": float(p.mean()),
                "accuracy": float(((p >= 0.5).astype(int) == y).mean()),
                "roc_auc": float(roc_auc_score(y, p)) if two else float("nan"),
                "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
            }
        )
    return pd.DataFrame(
        rows, columns=["batch", "rows", "positive_rate", "mean_probability", "accuracy", "roc_auc", "log_loss"]
    )


def degradation(metrics: pd.DataFrame, window: int = 10, max_drop: float = 0.05, column: str = "roc_auc") -> dict:
    """The window rule (module doc) on per-batch metrics in batch order."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    scored = metrics.dropna(subset=[column]).sort_values("batch")[column].to_numpy(dtype=float)
    out = {"window": window, "max_drop": max_drop, "batches": len(scored), "degraded": False}
    if len(scored) < 2 * window:
        out.update(latest=None, before=None, drop=None, reason=f"{len(scored)} scored batches, need {2 * window}")
        return out
    latest, before = float(scored[-window:].mean()), float(scored[-2 * window : -window].mean())
    drop = (before - latest) / before if before > 0 else 0.0
    out.update(latest=latest, before=before, drop=drop, degraded=bool(drop > max_drop))
    out["reason"] = (
        f"mean {column} of the latest {window} batches {latest:.4f} vs {before:.4f} before: "
        f"{'down' if drop > 0 else 'up'} {abs(drop):.1%} ({'over' if drop > max_drop else 'within'} {max_drop:.0%})"
    )
    return out
