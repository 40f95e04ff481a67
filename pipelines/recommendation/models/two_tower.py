"""A two-tower neural recommender in PyTorch, trained on implicit feedback with a softmax over the catalogue.

- user tower: the user's history (the items they rated, as an L2-normalised bag of items, with
  dropout on the input while training) -> a linear layer -> tanh: a ``dim``-sized user vector;
- item tower: an embedding and a bias per item;
- score(u, i) = user_vector(u) . item_embedding(i) + item_bias(i).

It learns by making each user's own items likely under a softmax over all items (the
multinomial likelihood of Liang et al. 2018, "Mult-DAE": this is that denoising autoencoder with
its decoder read as the item tower). The catalogue is small enough (thousands of items) for the
exact softmax: no negative sampling. Early stopping watches NDCG@10 on a held-out tenth of each
user's training items; the kept weights are the best epoch's. Because the user tower reads the
history, scoring uses everything the user rated, the held-out tenth included.

Ranking only: it does not predict rating values. torch is imported inside ``fit`` only; the
learned weights are kept as numpy arrays and scoring is numpy, so a fitted model needs no torch.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from pipelines.estimators import hyperparameters
from pipelines.recommendation import metrics
from pipelines.recommendation.models.base import Recommender
from pipelines.threads import one_torch_thread

VALIDATION_K = 10


@hyperparameters
class TwoTower(Recommender):
    """Learned: ``user_weights_`` (items x dim) and ``user_offset_`` (dim) of the user tower,
    ``item_embeddings_`` (items x dim) and ``item_offset_`` (items) of the item tower, ``history_``
    (per epoch: training loss and validation NDCG@10), ``best_epoch_`` and ``n_epochs_``."""

    predicts_ratings = False
    family = "neural"

    dim: int = 200
    max_epochs: int = 100
    patience: int = 5
    lr: float = 1e-3
    batch_size: int = 128
    dropout: float = 0.5
    validation_fraction: float = 0.1
    seed: int = 42

    def _fit(self, R: sp.csr_matrix) -> None:
        import torch

        if int(self.dim) < 1 or int(self.max_epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("dim, max_epochs and batch_size must be at least 1")
        X = _binary(R)
        train, val = _holdout(X, float(self.validation_fraction), np.random.default_rng(self.seed))
        val_users = np.flatnonzero(np.diff(val.indptr) > 0)
        n_users, n_items = X.shape
        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            user_tower = torch.nn.Linear(n_items, int(self.dim))
            item_tower = torch.nn.Linear(int(self.dim), n_items)  # rows of its weight: the item embeddings
            params = [*user_tower.parameters(), *item_tower.parameters()]
            optimiser = torch.optim.Adam(params, lr=float(self.lr))
            shuffler = torch.Generator().manual_seed(int(self.seed))
            history, best, best_state, best_epoch, waited = [], -np.inf, None, 0, 0
            for epoch in range(1, int(self.max_epochs) + 1):
                user_tower.train()
                total, order = 0.0, torch.randperm(n_users, generator=shuffler).numpy()
                for start in range(0, n_users, int(self.batch_size)):
                    xb = torch.from_numpy(train[order[start : start + int(self.batch_size)]].toarray())
                    h = torch.nn.functional.dropout(torch.nn.functional.normalize(xb, dim=1), float(self.dropout))
                    logits = item_tower(torch.tanh(user_tower(h)))
                    loss = -(torch.log_softmax(logits, dim=1) * xb).sum(dim=1).mean()
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(xb)
                state = _numpy_state(user_tower, item_tower)
                ndcg = self._validation_ndcg(state, train, val, val_users) if len(val_users) else float("nan")
                history.append({"epoch": epoch, "train_loss": total / n_users, "val_ndcg_at_10": ndcg})
                if not len(val_users) or ndcg > best + 1e-6:
                    best, best_state, best_epoch, waited = ndcg, copy.deepcopy(state), epoch, 0
                else:
                    waited += 1
                    if waited >= int(self.patience):
                        break
        self.user_weights_, self.user_offset_, self.item_embeddings_, self.item_offset_ = best_state
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.n_epochs_ = len(history)

    @staticmethod
    def _user_vectors(state, X: sp.csr_matrix) -> np.ndarray:
        W, b = state[0], state[1]
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return np.tanh(np.asarray(sp.diags(scale) @ X @ W) + b)

    @classmethod
    def _scores(cls, state, X: sp.csr_matrix) -> np.ndarray:
        return cls._user_vectors(state, X) @ state[2].T + state[3]

    def _validation_ndcg(self, state, train: sp.csr_matrix, val: sp.csr_matrix, users: np.ndarray) -> float:
        scores = self._scores(state, train[users])
        seen = train[users].tocoo()
        scores[seen.row, seen.col] = -np.inf
        k = min(VALIDATION_K, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        v = val[users].tocoo()
        hit = metrics.hits(top, v.row, v.col, scores.shape[1])
        return metrics.ranking_metrics(hit, np.diff(val[users].indptr), k)["ndcg"]

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        state = (self.user_weights_, self.user_offset_, self.item_embeddings_, self.item_offset_)
        return self._scores(state, _binary(self.seen_[rows]))

    @property
    def n_parameters_(self) -> int:
        if not hasattr(self, "user_weights_"):
            return 0
        return int(
            self.user_weights_.size + self.user_offset_.size + self.item_embeddings_.size + self.item_offset_.size
        )


def _binary(X: sp.csr_matrix) -> sp.csr_matrix:
    X = sp.csr_matrix(X)
    return sp.csr_matrix((np.ones(X.nnz, np.float32), X.indices, X.indptr), shape=X.shape)


def _holdout(X: sp.csr_matrix, fraction: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each user's items: about ``fraction`` held out (users with fewer than 2 items keep all)."""
    if fraction <= 0:
        return X, sp.csr_matrix(X.shape, dtype=np.float32)
    from pipelines.recommendation.split import per_user_holdout

    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    held = per_user_holdout(rows, fraction, rng)
    make = lambda mask: sp.csr_matrix(  # noqa: E731
        (X.data[mask], (rows[mask], X.indices[mask])), shape=X.shape, dtype=np.float32
    )
    return make(~held), make(held)


def _numpy_state(user_tower, item_tower) -> tuple[np.ndarray, ...]:
    """(user weights items x dim, user offset, item embeddings items x dim, item offset) as numpy."""
    return (
        user_tower.weight.detach().numpy().T.copy(),
        user_tower.bias.detach().numpy().copy(),
        item_tower.weight.detach().numpy().copy(),
        item_tower.bias.detach().numpy().copy(),
    )
