"""The contract every recommender keeps (scikit-learn's: ``fit`` returns self, learned attributes end in ``_``).

``fit(X, y)`` takes the rated (user, item) pairs as a DataFrame with columns ``user_id`` and
``item_id`` and the ratings as ``y`` (or a ``rating`` column; no ratings at all means implicit
feedback, every pair counts as 1). Ids may be any hashable values; they are mapped to dense
indices once, here, and every model works on the index space with scipy.sparse and numpy.

- ``predict(X)``: ratings for (user, item) pairs. A user or item the model never saw gets the
  regularised baseline (global mean + the bias of whichever of the two is known).
- ``recommend(users, n)``: the top-n items per user as a long DataFrame, items the user already
  rated excluded; users the model never saw (or with no history) get the most popular items.
- ``top_n(user_idx, n)``: the same on indices, for evaluation.

Subclasses implement ``_fit(R)`` on the user x item CSR matrix of ratings, ``_rating_block`` (dense
predicted ratings for a block of users) and ``_score_block`` (dense ranking scores; by default the
predicted ratings). Scoring runs over blocks of users, so memory stays bounded for any size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pipelines.constants import ITEM_ID, RATING, USER_ID

BLOCK_CELLS = 4_000_000  # users per scoring block = this / n_items (a 32 MB float64 block)
BASELINE_REG_ITEM, BASELINE_REG_USER, BASELINE_ITERS = 10.0, 15.0, 10


class NotFittedOrUnsupported(ValueError):
    """A call the model cannot serve (e.g. rating prediction from a ranking-only model)."""


def pairs(X, y=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(users, items, ratings or None) from a DataFrame with user_id/item_id (and maybe rating) columns."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a DataFrame with columns {USER_ID!r} and {ITEM_ID!r}, got {type(X).__name__}")
    missing = [c for c in (USER_ID, ITEM_ID) if c not in X.columns]
    if missing:
        raise ValueError(f"X lacks column(s) {missing}; it has {list(X.columns)}")
    ratings = y if y is not None else (X[RATING] if RATING in X.columns else None)
    if ratings is not None:
        ratings = np.asarray(ratings, dtype=np.float64)
        if ratings.shape != (len(X),):
            raise ValueError(f"ratings must be 1-D with one value per row of X ({len(X)}), got shape {ratings.shape}")
        if not np.isfinite(ratings).all():
            raise ValueError("ratings hold NaN or infinite values")
    return X[USER_ID].to_numpy(), X[ITEM_ID].to_numpy(), ratings


def lookup(ids: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Index of each id in the sorted array ``known``, -1 where it is unknown (vectorised)."""
    ids = np.asarray(ids)
    if len(known) == 0 or len(ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    try:
        pos = np.searchsorted(known, ids)
    except TypeError:  # ids of another type than the known ones (e.g. str vs int): none match
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(pos, len(known) - 1)
    hit = known[pos] == ids
    return np.where(hit, pos, -1).astype(np.int64)


def baseline_biases(
    u: np.ndarray, i: np.ndarray, r: np.ndarray, n_users: int, n_items: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean and regularised user and item biases by alternating least squares (Koren 2008)."""
    mu = float(r.mean()) if len(r) else 0.0
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    n_u = np.bincount(u, minlength=n_users)
    n_i = np.bincount(i, minlength=n_items)
    for _ in range(BASELINE_ITERS):
        bi = np.bincount(i, r - mu - bu[u], minlength=n_items) / (BASELINE_REG_ITEM + n_i)
        bu = np.bincount(u, r - mu - bi[i], minlength=n_users) / (BASELINE_REG_USER + n_u)
    return mu, bu, bi


class Recommender(BaseEstimator):
    """Base class: id mapping, seen items, popularity, baseline fallbacks, blocked top-n."""

    predicts_ratings = True  # False for ranking-only models (predict raises)
    family = "baseline"

    # -- the contract ------------------------------------------------------------------------

    def fit(self, X, y=None):
        users, items, ratings = pairs(X, y)
        if len(users) == 0:
            raise ValueError("cannot fit a recommender on an empty ratings table")
        self.implicit_ = ratings is None
        ratings = np.ones(len(users)) if ratings is None else ratings
        self.user_ids_, u = np.unique(users, return_inverse=True)
        self.item_ids_, i = np.unique(items, return_inverse=True)
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        R = sp.csr_matrix((ratings, (u, i)), shape=(n_users, n_items))
        R.sum_duplicates()
        if R.nnz != len(ratings):
            raise ValueError(
                f"{len(ratings) - R.nnz} (user, item) pair(s) appear more than once; keep one rating per pair"
            )
        self.seen_ = R.astype(bool)
        self.item_counts_ = np.bincount(i, minlength=n_items)
        # Most rated first; ties by the item's position, so the order is deterministic.
        self.popular_ = np.lexsort((np.arange(n_items), -self.item_counts_))
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))
        self.global_mean_, self.baseline_user_, self.baseline_item_ = baseline_biases(u, i, ratings, n_users, n_items)
        self._fit(R)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted ratings for the (user, item) pairs of X, clipped to the range seen in training."""
        self._check()
        if not self.predicts_ratings:
            raise NotFittedOrUnsupported(f"{type(self).__name__} ranks items; it does not predict ratings")
        users, items, _ = pairs(X)
        u, i = lookup(users, self.user_ids_), lookup(items, self.item_ids_)
        out = (
            self.global_mean_
            + np.where(u >= 0, self.baseline_user_[u], 0.0)
            + np.where(i >= 0, self.baseline_item_[i], 0.0)
        )
        both = (u >= 0) & (i >= 0)
        if both.any():
            out[both] = self._predict_pairs(u[both], i[both])
        return np.clip(out, *self.rating_range_)

    def top_n(self, user_idx: np.ndarray, n: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Item indices (len(user_idx) x n, best first, -1 padding) and their scores, for known user indices."""
        self._check()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        n_items = len(self.item_ids_)
        n = int(min(n, n_items))
        idx = np.full((len(user_idx), n), -1, dtype=np.int64)
        scores = np.full((len(user_idx), n), np.nan)
        if n == 0:
            return idx, scores
        block = max(1, BLOCK_CELLS // max(n_items, 1))
        for start in range(0, len(user_idx), block):
            rows = user_idx[start : start + block]
            s = np.asarray(self._score_block(rows), dtype=np.float64)
            if exclude_seen:
                seen = self.seen_[rows].tocoo()
                s[seen.row, seen.col] = -np.inf
            top = (
                np.argpartition(-s, n - 1, axis=1)[:, :n]
                if n < n_items
                else np.tile(np.arange(n_items), (len(rows), 1))
            )
            top_s = np.take_along_axis(s, top, axis=1)
            # Best first; ties go to the more popular item, then the lower index.
            order = np.lexsort((top, -self.item_counts_[top], -top_s), axis=1)
            top, top_s = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_s, order, axis=1)
            valid = np.isfinite(top_s)
            idx[start : start + len(rows)] = np.where(valid, top, -1)
            scores[start : start + len(rows)] = np.where(valid, top_s, np.nan)
        return idx, scores

    def recommend(self, users, n: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-n items per user: columns user_id, rank (1 = best), item_id, score, source ('model' or 'popular')."""
        self._check()
        users = np.asarray(users)
        u = lookup(users, self.user_ids_)
        known = u >= 0
        n = int(min(n, len(self.item_ids_)))
        idx = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), np.nan)
        if known.any():
            idx[known], scores[known] = self.top_n(u[known], n, exclude_seen)
        if (~known).any():  # unknown users, no history: the most popular items
            idx[~known] = self.popular_[:n]
            scores[~known] = self.item_counts_[self.popular_[:n]]
        rows, ranks = np.nonzero(idx >= 0)
        return pd.DataFrame(
            {
                USER_ID: users[rows],
                "rank": ranks + 1,
                ITEM_ID: self.item_ids_[idx[rows, ranks]],
                "score": scores[rows, ranks],
                "source": np.where(known[rows], "model", "popular"),
            }
        )

    # -- for subclasses ------------------------------------------------------------------------

    def _fit(self, R: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _rating_block(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return self._rating_block(rows)

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Ratings for known pairs, one block of users at a time (models with a cheaper way override it)."""
        out = np.empty(len(u))
        users, inverse = np.unique(u, return_inverse=True)
        block = max(1, BLOCK_CELLS // max(len(self.item_ids_), 1))
        for start in range(0, len(users), block):
            rows = users[start : start + block]
            sel = (inverse >= start) & (inverse < start + len(rows))
            out[sel] = self._rating_block(rows)[inverse[sel] - start, i[sel]]
        return out

    def _check(self) -> None:
        check_is_fitted(self, "seen_")

    @property
    def n_parameters_(self) -> int:
        """Learned numbers the model keeps for scoring (for the leaderboard)."""
        return 0
