"""The popularity baseline: everyone gets the most rated items they have not rated yet."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pipelines.estimators import hyperparameters
from pipelines.recommendation.models.base import Recommender


@hyperparameters
class Popularity(Recommender):
    """Ranks items by how many users rated them; predicts a rating as the item's damped mean.

    ``damping`` pulls the mean of a rarely rated item towards the global mean:
    ``(sum of its ratings + damping * global mean) / (count + damping)``.
    Learned: ``item_mean_`` (the damped means), plus the base class attributes.
    """

    family = "baseline"

    damping: float = 5.0

    def _fit(self, R: sp.csr_matrix) -> None:
        sums = np.asarray(R.sum(axis=0)).ravel()
        self.item_mean_ = (sums + self.damping * self.global_mean_) / (self.item_counts_ + self.damping)

    def _rating_block(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.item_mean_, (len(rows), 1))

    def _predict_pairs(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self.item_mean_[i]

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.item_counts_.astype(np.float64), (len(rows), 1))

    @property
    def n_parameters_(self) -> int:
        return int(len(getattr(self, "item_mean_", ())))
