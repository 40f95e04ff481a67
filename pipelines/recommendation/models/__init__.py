"""The recommender registry: every model by name, with the defaults the leaderboard uses.

Importing this package loads neither torch nor any model's heavy dependency.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pipelines.recommendation.models.base import Recommender


@dataclass(frozen=True)
class ModelSpec:
    target: str  # "module:Class"
    family: str
    tasks: tuple[str, ...]  # "rating" and/or "ranking"
    epochs_param: str | None = None  # the iteration count a max_epochs cap lowers
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(
        "pipelines.recommendation.models.popularity:Popularity",
        "baseline",
        ("rating", "ranking"),
        description="most rated items; damped item mean for ratings",
    ),
    "user_knn": ModelSpec(
        "pipelines.recommendation.models.neighbours:UserKNN",
        "neighbourhood",
        ("rating", "ranking"),
        description="user-based CF, mean-centred cosine, top-200 neighbours, shrinkage 10",
    ),
    "item_knn": ModelSpec(
        "pipelines.recommendation.models.neighbours:ItemKNN",
        "neighbourhood",
        ("rating", "ranking"),
        description="item-based CF, mean-centred cosine, top-200 neighbours, shrinkage 10",
    ),
    "biased_mf": ModelSpec(
        "pipelines.recommendation.models.mf:BiasedMF",
        "matrix_factorisation",
        ("rating", "ranking"),
        epochs_param="n_iters",
        description="biased MF (SVD-style), 30 factors, ALS with weighted-lambda regularisation",
    ),
    "bayesian_mf": ModelSpec(
        "pipelines.recommendation.models.mf:BayesianMF",
        "matrix_factorisation",
        ("rating", "ranking"),
        epochs_param="n_sweeps",
        description="biased MF, 10 factors, Gibbs sampling (BPMF), predictions averaged over samples",
    ),
    "two_tower": ModelSpec(
        "pipelines.recommendation.models.two_tower:TwoTower",
        "neural",
        ("ranking",),
        epochs_param="max_epochs",
        description="PyTorch two-tower (history tower x item embeddings), softmax over all items",
    ),
}


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown recommender {name!r}; known: {', '.join(MODELS)}") from None


def build(name: str, seed: int = 42, max_epochs: int = 0) -> Recommender:
    """A fresh, unfitted model with its defaults; ``max_epochs`` > 0 caps its iterations (quick runs)."""
    spec = get(name)
    module, _, cls_name = spec.target.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    model = cls()
    params = model.get_params()
    if "seed" in params:
        model.set_params(seed=seed)
    if max_epochs and spec.epochs_param:
        model.set_params(**{spec.epochs_param: min(int(max_epochs), int(params[spec.epochs_param]))})
    return model
