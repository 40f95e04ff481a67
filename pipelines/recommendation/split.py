"""The two evaluation splits, seeded and vectorised.

- ``kfold``: every rating in exactly one of k folds (a random permutation cut into k near-equal
  parts): rating prediction is scored on each fold with a model fitted on the other k - 1.
- ``per_user_holdout``: per user, a random ``round(fraction * n_u)`` of their ratings held out
  (at least one kept for training), so every user is in both parts in the same proportion: the
  ranking protocol (75/25 by default), and the early-stopping split of the neural model.
"""

from __future__ import annotations

import numpy as np


def kfold(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold id (0..folds-1) of each of n ratings."""
    if folds < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"{n} ratings cannot be cut into {folds} folds")
    out = np.empty(n, dtype=np.int64)
    out[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return out


def per_user_holdout(users: np.ndarray, fraction: float, rng: np.random.Generator | int) -> np.ndarray:
    """Bool mask of held-out rows: per user, round(fraction * n_u) rows at random, at most n_u - 1."""
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    users = np.asarray(users)
    if len(users) == 0:
        return np.zeros(0, dtype=bool)
    _, codes = np.unique(users, return_inverse=True)
    counts = np.bincount(codes)
    order = np.lexsort((rng.random(len(codes)), codes))  # by user, random within a user
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts
    n_out = np.minimum(np.floor(counts * fraction + 0.5).astype(np.int64), counts - 1)
    return rank < n_out[codes]
