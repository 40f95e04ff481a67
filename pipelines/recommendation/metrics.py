"""Rating and top-k ranking metrics, by their standard definitions, vectorised over users.

Rating prediction, over the held-out ratings: RMSE = sqrt(mean((r - r_hat)^2)), MAE = mean(|r - r_hat|).

Ranking, for each user u with at least one relevant held-out item (R_u, |R_u| of them) and the
model's top-k list (rel_i = 1 when the item at rank i is in R_u):

- precision@k = hits / k
- recall@k    = hits / |R_u|
- NDCG@k      = DCG / IDCG, DCG = sum_i rel_i / log2(i + 1), IDCG = the DCG of a perfect list,
                sum_{i <= min(k, |R_u|)} 1 / log2(i + 1) (binary gains)
- AP@k        = sum_i P@i * rel_i / min(k, |R_u|); MAP@k is its mean over users
- coverage    = distinct items recommended to the evaluated users / items in the catalogue

Each is averaged over the users with a relevant item. A relevant item the model cannot know
(it has no training rating) still counts in |R_u|: the metrics say what users would have got.
"""

from __future__ import annotations

import numpy as np


def rmse(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    return float(np.mean(np.abs(y_true - y_pred)))


def hits(top: np.ndarray, rel_rows: np.ndarray, rel_items: np.ndarray, n_items: int) -> np.ndarray:
    """Bool (users x k): is the item at each rank among the row's relevant (row, item) pairs? -1 never hits."""
    top = np.asarray(top, dtype=np.int64)
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1]).reshape(top.shape)
    keys = rows * np.int64(n_items + 1) + np.where(top >= 0, top, n_items)
    relevant = np.unique(np.asarray(rel_rows, np.int64) * np.int64(n_items + 1) + np.asarray(rel_items, np.int64))
    return np.isin(keys, relevant) & (top >= 0)


def ranking_metrics(hit: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """Mean precision, recall, NDCG and MAP at k over the users (rows) with n_relevant > 0."""
    hit = np.asarray(hit, bool)[:, :k]
    n_relevant = np.asarray(n_relevant, np.int64)
    users = n_relevant > 0
    hit, n_rel = hit[users], n_relevant[users]
    if len(n_rel) == 0:
        return {
            "precision": float("nan"),
            "recall": float("nan"),
            "ndcg": float("nan"),
            "map": float("nan"),
            "users": 0,
        }
    width = hit.shape[1]
    if width < k:  # fewer candidates than k: the missing ranks are misses
        hit = np.hstack([hit, np.zeros((len(hit), k - width), bool)])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hit @ discount
    idcg = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    n_hits = hit.sum(axis=1)
    precision_at = np.cumsum(hit, axis=1) / np.arange(1, k + 1)
    ap = (precision_at * hit).sum(axis=1) / np.minimum(n_rel, k)
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / n_rel)),
        "ndcg": float(np.mean(dcg / idcg)),
        "map": float(np.mean(ap)),
        "users": int(len(n_rel)),
    }


def ndcg_curve(hit: np.ndarray, n_relevant: np.ndarray, ks) -> list[float]:
    """NDCG@k for each k in ks (ks <= the width of ``hit``)."""
    return [ranking_metrics(hit, n_relevant, int(k))["ndcg"] for k in ks]


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    top = np.asarray(top)
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else float("nan")
