"""Biased matrix factorisation (the "SVD" model of the Netflix prize): ``r_ui = mu + b_u + b_i + p_u . q_i``.

Two ways to learn the same model, both vectorised over all users (items) at once:

- ``BiasedMF``: alternating least squares. With the items fixed, each user's ``[p_u, b_u]`` is a
  ridge regression on the items they rated, and vice versa. All users are solved together: their
  Gram matrices come from one sparse product (``pattern @ vec(y_i y_i^T)``) and one batched
  ``np.linalg.solve``. The ridge penalty grows with the number of ratings (``reg * n_u``, the
  weighted-lambda regularisation of Zhou et al. 2008).
- ``BayesianMF``: the same model with a prior instead of a hand-set penalty (Salakhutdinov and
  Mnih 2008, "BPMF"), plus biases and the noise level sampled too. A Gibbs sampler draws every
  user's and item's vector from its Gaussian conditional (the same Gram matrices as ALS, then a
  batched Cholesky), and the Normal-Wishart hyperparameters and the noise precision from theirs.
  The prediction is the average over the kept samples, which regularises far better than a
  point estimate. The kept samples are stacked side by side, so the average is again one
  factorisation (``P_all Q_all^T``) and scoring costs one matrix product.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from pipelines.estimators import hyperparameters
from pipelines.recommendation.models.base import BLOCK_CELLS, Recommender


def _row_ids(M: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))


def _grams(M: sp.csr_matrix, Y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Sum of y_j y_j^T over the columns j stored in rows start..stop of M (rows x d x d)."""
    d = Y.shape[1]
    Z = (Y[:, :, None] * Y[:, None, :]).reshape(len(Y), d * d)
    return np.asarray(M[start:stop] @ Z).reshape(stop - start, d, d)


def _blocks(n: int, d: int):
    step = max(1, BLOCK_CELLS // max(d * d, 1))
    for start in range(0, n, step):
        yield start, min(start + step, n)


def als_half_step(M: sp.csr_matrix, targets: np.ndarray, Y: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Ridge solutions x_r = argmin sum_j (t_rj - x . y_j)^2 + sum_f reg[r, f] x_f^2, for every row r of M.

    ``M`` is the rows x columns CSR pattern, ``targets`` its values in CSR order, ``Y`` the column
    vectors (columns x d) and ``reg`` the penalty per row and dimension (rows x d).
    """
    n, d = M.shape[0], Y.shape[1]
    T = sp.csr_matrix((targets, M.indices, M.indptr), shape=M.shape)
    rhs = np.asarray(T @ Y)
    out = np.zeros((n, d))
    eye = np.arange(d)
    for start, stop in _blocks(n, d):
        G = _grams(M, Y, start, stop)
        G[:, eye, eye] += reg[start:stop] + 1e-9
        out[start:stop] = np.linalg.solve(G, rhs[start:stop, :, None])[:, :, 0]
    return out


class _Factorisation(Recommender):
    family = "matrix_factorisation"

    def _rating_block(self, rows: np.ndarray) -> np.ndarray:
        return (
            self.global_mean_
            + self.user_bias_[rows, None]
            + self.item_bias_[None, :]
            + self.user_factors_[rows] @ self.item_factors_.T
        )

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        dots = np.einsum("nf,nf->n", self.user_factors_[u], self.item_factors_[i])
        return self.global_mean_ + self.user_bias_[u] + self.item_bias_[i] + dots

    def _train_rmse(self, R: sp.csr_matrix, rows: np.ndarray) -> float:
        pred = self._predict_pairs(rows, R.indices)
        return float(np.sqrt(np.mean((R.data - pred) ** 2)))

    @property
    def n_parameters_(self) -> int:
        if not hasattr(self, "user_factors_"):
            return 0
        return int(self.user_factors_.size + self.item_factors_.size + len(self.user_bias_) + len(self.item_bias_))


@hyperparameters
class BiasedMF(_Factorisation):
    """Biased MF by ALS. Learned: ``user_factors_``, ``item_factors_``, ``user_bias_``, ``item_bias_``
    and ``history_`` (training RMSE per iteration)."""

    n_factors: int = 30
    n_iters: int = 15
    reg: float = 0.15
    reg_bias: float = 0.05
    seed: int = 42

    def _fit(self, R: sp.csr_matrix) -> None:
        f = int(self.n_factors)
        if f < 1 or int(self.n_iters) < 1:
            raise ValueError(f"n_factors and n_iters must be at least 1, got {self.n_factors} and {self.n_iters}")
        rng = np.random.default_rng(self.seed)
        n_users, n_items = R.shape
        Rt = R.T.tocsr()
        u_rows = _row_ids(R)
        pattern, pattern_t = _pattern(R), _pattern(Rt)
        P, Q = rng.normal(0, 0.1, (n_users, f)), rng.normal(0, 0.1, (n_items, f))
        bu, bi = np.zeros(n_users), np.zeros(n_items)
        reg_u = _penalty(np.diff(R.indptr), f, self.reg, self.reg_bias)
        reg_i = _penalty(np.diff(Rt.indptr), f, self.reg, self.reg_bias)
        mu, history = self.global_mean_, []
        for it in range(int(self.n_iters)):
            X = als_half_step(pattern, R.data - mu - bi[R.indices], np.hstack([Q, np.ones((n_items, 1))]), reg_u)
            P, bu = X[:, :f], X[:, f]
            X = als_half_step(pattern_t, Rt.data - mu - bu[Rt.indices], np.hstack([P, np.ones((n_users, 1))]), reg_i)
            Q, bi = X[:, :f], X[:, f]
            self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_ = P, Q, bu, bi
            history.append({"iteration": it + 1, "train_rmse": self._train_rmse(R, u_rows)})
        self.history_ = history


@hyperparameters
class BayesianMF(_Factorisation):
    """Biased MF by Gibbs sampling (BPMF with biases and a sampled noise level).

    ``n_sweeps`` Gibbs sweeps, the first ``burn_in`` discarded, at most ``max_samples`` of the
    rest kept (evenly spaced). Learned: ``user_factors_`` / ``item_factors_`` (kept samples side
    by side, scaled so their product is the average prediction), ``user_bias_`` / ``item_bias_``
    (averaged), ``noise_precision_`` (average sampled 1/sigma^2), ``n_samples_`` and ``history_``
    (per sweep: training RMSE of that sample and the noise precision).
    """

    n_factors: int = 10
    n_sweeps: int = 200
    burn_in: int = 50
    max_samples: int = 50
    seed: int = 42

    def _fit(self, R: sp.csr_matrix) -> None:
        f, sweeps = int(self.n_factors), int(self.n_sweeps)
        if f < 1 or sweeps < 1 or int(self.max_samples) < 1:
            raise ValueError("n_factors, n_sweeps and max_samples must be at least 1")
        burn = min(int(self.burn_in), sweeps // 2)
        thin = max(1, math.ceil((sweeps - burn) / int(self.max_samples)))
        rng = np.random.default_rng(self.seed)
        n_users, n_items = R.shape
        Rt = R.T.tocsr()
        u_rows = _row_ids(R)
        pattern, pattern_t = _pattern(R), _pattern(Rt)
        mu, d = self.global_mean_, f + 1
        U, V = rng.normal(0, 0.1, (n_users, d)), rng.normal(0, 0.1, (n_items, d))  # last column: the bias
        alpha, history, kept = 1.0, [], []
        for sweep in range(sweeps):
            prior = _sample_normal_wishart(rng, V)
            V = _sample_side(rng, pattern_t, Rt.data - mu - U[Rt.indices, f], _with_ones(U[:, :f]), alpha, *prior)
            prior = _sample_normal_wishart(rng, U)
            U = _sample_side(rng, pattern, R.data - mu - V[R.indices, f], _with_ones(V[:, :f]), alpha, *prior)
            resid = R.data - (
                mu + U[u_rows, f] + V[R.indices, f] + np.einsum("nf,nf->n", U[u_rows, :f], V[R.indices, :f])
            )
            sse = float(resid @ resid)
            alpha = float(rng.gamma(1.0 + len(resid) / 2.0, 1.0 / (1.0 + sse / 2.0)))
            history.append({"sweep": sweep + 1, "train_rmse": math.sqrt(sse / len(resid)), "noise_precision": alpha})
            if sweep >= burn and (sweep - burn) % thin == 0:
                kept.append((U.copy(), V.copy(), alpha))
        s = len(kept)
        self.user_factors_ = np.hstack([k[0][:, :f] for k in kept]) / s
        self.item_factors_ = np.hstack([k[1][:, :f] for k in kept])
        self.user_bias_ = np.mean([k[0][:, f] for k in kept], axis=0)
        self.item_bias_ = np.mean([k[1][:, f] for k in kept], axis=0)
        self.noise_precision_ = float(np.mean([k[2] for k in kept]))
        self.n_samples_ = s
        self.history_ = history


def _pattern(R: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones_like(R.data), R.indices, R.indptr), shape=R.shape)


def _penalty(counts: np.ndarray, f: int, reg: float, reg_bias: float) -> np.ndarray:
    """Per row and dimension: reg * n for the factors, reg_bias * n for the bias (weighted lambda)."""
    n = np.maximum(counts, 1).astype(np.float64)[:, None]
    return n * np.concatenate([np.full(f, reg), [reg_bias]])[None, :]


def _with_ones(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))])


def _wishart(rng: np.random.Generator, dof: float, scale: np.ndarray) -> np.ndarray:
    """One draw from Wishart(dof, scale) by the Bartlett decomposition."""
    d = scale.shape[0]
    L = np.linalg.cholesky(scale)
    A = np.zeros((d, d))
    A[np.diag_indices(d)] = np.sqrt(rng.chisquare(dof - np.arange(d)))
    A[np.tril_indices(d, -1)] = rng.standard_normal(d * (d - 1) // 2)
    LA = L @ A
    return LA @ LA.T


def _sample_normal_wishart(
    rng: np.random.Generator, X: np.ndarray, beta0: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, precision) of the rows' Gaussian prior from its Normal-Wishart posterior (mu0=0, W0=I, nu0=d)."""
    n, d = X.shape
    xbar = X.mean(axis=0)
    S = np.cov(X.T, bias=True).reshape(d, d)
    beta_n, nu_n = beta0 + n, d + n
    w_inv = np.eye(d) + n * S + (beta0 * n / beta_n) * np.outer(xbar, xbar)
    w_inv = (w_inv + w_inv.T) / 2
    precision = _wishart(rng, nu_n, np.linalg.inv(w_inv))
    mean = rng.multivariate_normal(n * xbar / beta_n, np.linalg.inv(beta_n * precision))
    return mean, precision


def _sample_side(
    rng: np.random.Generator,
    M: sp.csr_matrix,
    targets: np.ndarray,
    Y: np.ndarray,
    alpha: float,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
) -> np.ndarray:
    """Draw every row's vector from N(G^-1 (alpha Y^T t + Lambda m), G^-1), G = alpha Y^T Y + Lambda."""
    n, d = M.shape[0], Y.shape[1]
    T = sp.csr_matrix((targets, M.indices, M.indptr), shape=M.shape)
    rhs = alpha * np.asarray(T @ Y) + (prior_precision @ prior_mean)[None, :]
    out = np.empty((n, d))
    for start, stop in _blocks(n, d):
        G = alpha * _grams(M, Y, start, stop) + prior_precision[None]
        L = np.linalg.cholesky(G)
        mean = np.linalg.solve(G, rhs[start:stop, :, None])[:, :, 0]
        z = rng.standard_normal((stop - start, d, 1))
        out[start:stop] = mean + np.linalg.solve(np.transpose(L, (0, 2, 1)), z)[:, :, 0]
    return out
