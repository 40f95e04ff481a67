"""Anomaly score of rows against the reference: negative log-likelihood under a GaussianMixture.

Rows are encoded with the reference's statistics: numeric columns standardised (missing -> the
mean), categorical columns one-hot over the reference's ``max_categories`` most frequent values
(others all zero). The mixture (diagonal covariances) is fitted on at most ``max_rows``
reference rows for 1..``max_components`` components and the lowest BIC wins. A batch is
anomalous when more than ``max_share`` of its rows score above the reference's own
``quantile`` of scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.monitoring.drift import is_numeric


@dataclass
class AnomalyModel:
    numeric: list[str]
    means: np.ndarray
    stds: np.ndarray
    categories: dict[str, list]
    gmm: object
    threshold: float
    bics: dict[int, float]

    @property
    def n_components(self) -> int:
        return int(self.gmm.n_components)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        if self.numeric:
            x = frame[self.numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            x = np.where(np.isnan(x), self.means, x)
            parts.append((x - self.means) / self.stds)
        for column, cats in self.categories.items():
            values = frame[column].astype(object).to_numpy()
            parts.append(np.stack([values == c for c in cats], axis=1).astype(float))
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Higher is more unusual (negative log-likelihood per row)."""
        return -self.gmm.score_samples(self.encode(frame))


def fit(
    reference: pd.DataFrame,
    features: Sequence[str] | None = None,
    max_components: int = 6,
    quantile: float = 0.99,
    max_categories: int = 20,
    max_rows: int = 5000,
    seed: int = 0,
) -> AnomalyModel:
    from sklearn.mixture import GaussianMixture

    features = list(features) if features is not None else list(reference.columns)
    if len(reference) < 2:
        raise ValueError(f"the anomaly model needs reference rows, got {len(reference)}")
    if len(reference) > max_rows:
        reference = reference.sample(max_rows, random_state=seed)
    numeric = [f for f in features if is_numeric(reference[f])]
    x = reference[numeric].to_numpy(dtype=float) if numeric else np.zeros((len(reference), 0))
    means = np.nanmean(x, axis=0) if numeric else np.zeros(0)
    stds = np.nanstd(x, axis=0) if numeric else np.zeros(0)
    stds = np.where(stds > 0, stds, 1.0)
    categories = {
        f: list(reference[f].astype(object).value_counts().index[:max_categories]) for f in features if f not in numeric
    }
    model = AnomalyModel(numeric, means, stds, categories, None, 0.0, {})
    encoded = model.encode(reference)
    best = None
    for k in range(1, max(1, min(max_components, len(reference) - 1)) + 1):
        gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-3, random_state=seed).fit(encoded)
        model.bics[k] = float(gmm.bic(encoded))
        if best is None or model.bics[k] < model.bics[best.n_components]:
            best = gmm
    model.gmm = best
    model.threshold = float(np.quantile(-best.score_samples(encoded), quantile))
    return model


def batch_anomaly(model: AnomalyModel, frame: pd.DataFrame, max_share: float = 0.05) -> dict:
    """Share of the batch's rows above the reference threshold, and whether it is over ``max_share``."""
    scores = model.score(frame)
    share = float((scores > model.threshold).mean()) if len(scores) else 0.0
    return {
        "rows": len(scores),
        "mean_score": float(scores.mean()) if len(scores) else float("nan"),
        "share_above": share,
        "threshold": model.threshold,
        "n_components": model.n_components,
        "anomalous": bool(share > max_share),
    }
