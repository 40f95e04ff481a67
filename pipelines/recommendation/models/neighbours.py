"""Neighbourhood collaborative filtering, user-based and item-based, with sparse matrices only.

Similarity is the mean-centred cosine: ratings minus the user's mean (user-based) or the item's
mean (item-based), then the cosine of those sparse vectors (an unrated cell counts as 0). An
optional shrinkage multiplies it by ``n / (n + shrinkage)``, ``n`` = co-ratings, so a similarity
resting on a few shared ratings counts less. Each user (item) keeps its ``k`` most similar
neighbours with a positive similarity, found block by block with ``argpartition``: no loop over
users or items in Python.

Rating prediction (the classic mean-centred formula, e.g. user-based)::

    r_ui = mean_u + sum_v s_uv (r_vi - mean_v) / sum_v s_uv,  v in the k neighbours of u who rated i

falling back to ``mean_u`` when no neighbour rated the item. Item-based is the same with the
roles of users and items swapped. For top-n ranking the normalised prediction is a poor score (an
item backed by a single neighbour with a 5 comes first), so candidates are ranked by the
similarity-weighted count of neighbours behind them, ``sum_v s_uv [v rated i]``: the classic
neighbourhood top-n score (Sarwar et al. 2001, Karypis 2001). Both come out of the same two
sparse products per block of users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pipelines.estimators import hyperparameters
from pipelines.recommendation.models.base import BLOCK_CELLS, Recommender


def centred(R: sp.csr_matrix, means: np.ndarray, by_row: bool) -> sp.csr_matrix:
    """R with each stored rating minus its row's (or column's) mean; the sparsity pattern is kept."""
    R = R.tocsr()
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    shift = means[rows] if by_row else means[R.indices]
    return sp.csr_matrix((R.data - shift, R.indices.copy(), R.indptr.copy()), shape=R.shape)


def row_means(R: sp.csr_matrix) -> np.ndarray:
    counts = np.diff(R.indptr)
    return np.asarray(R.sum(axis=1)).ravel() / np.maximum(counts, 1)


def top_k_similarities(Rc: sp.csr_matrix, B: sp.csr_matrix, k: int, shrinkage: float) -> sp.csr_matrix:
    """Row x row mean-centred cosine similarities, keeping each row's k largest positive ones (CSR)."""
    n = Rc.shape[0]
    norms = np.sqrt(np.asarray(Rc.multiply(Rc).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    RcT, BT = Rc.T.tocsc(), B.T.tocsc()
    k = int(min(k, max(n - 1, 0)))
    data, cols, counts = [], [], []
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, block):
        stop = min(start + block, n)
        S = (Rc[start:stop] @ RcT).toarray()
        S *= inv[start:stop, None] * inv[None, :]
        if shrinkage:
            co = (B[start:stop] @ BT).toarray()
            S *= co / (co + shrinkage)
        S[np.arange(stop - start), np.arange(start, stop)] = 0.0  # not one's own neighbour
        S[S <= 0] = 0.0
        if k == 0:
            counts.append(np.zeros(stop - start, dtype=np.int64))
            continue
        top = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (stop - start, 1))
        vals = np.take_along_axis(S, top, axis=1)
        keep = vals > 0
        data.append(vals[keep])
        cols.append(top[keep])
        counts.append(keep.sum(axis=1))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1, np.int64)
    out = sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(cols) if cols else np.zeros(0, np.int64),
            indptr,
        ),
        shape=(n, n),
    )
    out.sort_indices()
    return out


@hyperparameters
class _Neighbourhood(Recommender):
    family = "neighbourhood"

    k: int = 200
    shrinkage: float = 10.0

    def _check_params(self) -> None:
        if int(self.k) < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage}")

    def _finish(self, num: np.ndarray, den: np.ndarray, base: np.ndarray) -> np.ndarray:
        ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return base + ratio

    @property
    def n_parameters_(self) -> int:
        return int(self.neighbours_.nnz + len(self.means_)) if hasattr(self, "neighbours_") else 0


class UserKNN(_Neighbourhood):
    """User-based CF. Learned: ``means_`` (per user), ``neighbours_`` (users x users CSR, k per row),
    ``centred_`` and ``rated_`` (the centred ratings and their 0/1 pattern, which scoring multiplies)."""

    def _fit(self, R: sp.csr_matrix) -> None:
        self._check_params()
        self.means_ = row_means(R)
        self.rated_ = R.astype(bool).astype(np.float64)
        self.centred_ = centred(R, self.means_, by_row=True)
        self.neighbours_ = top_k_similarities(self.centred_, self.rated_, int(self.k), float(self.shrinkage))

    def _products(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        W = self.neighbours_[rows]
        return (W @ self.centred_).toarray(), (W @ self.rated_).toarray()

    def _rating_block(self, rows: np.ndarray) -> np.ndarray:
        num, den = self._products(rows)
        return self._finish(num, den, self.means_[rows, None])

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return (self.neighbours_[rows] @ self.rated_).toarray()


class ItemKNN(_Neighbourhood):
    """Item-based CF. Learned: ``means_`` (per item), ``neighbours_`` (items x items CSR, k per row) and
    its transpose ``neighbours_t_``, ``centred_`` and ``rated_`` as in UserKNN."""

    def _fit(self, R: sp.csr_matrix) -> None:
        self._check_params()
        Rt = R.T.tocsr()
        self.means_ = row_means(Rt)
        self.rated_ = R.astype(bool).astype(np.float64)
        self.centred_ = centred(R, self.means_, by_row=False)
        self.neighbours_ = top_k_similarities(
            centred(Rt, self.means_, by_row=True), Rt.astype(bool).astype(np.float64), int(self.k), self.shrinkage
        )
        self.neighbours_t_ = self.neighbours_.T.tocsc()

    def _rating_block(self, rows: np.ndarray) -> np.ndarray:
        num = (self.centred_[rows] @ self.neighbours_t_).toarray()
        den = (self.rated_[rows] @ self.neighbours_t_).toarray()
        return self._finish(num, den, self.means_[None, :])

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return (self.rated_[rows] @ self.neighbours_t_).toarray()
