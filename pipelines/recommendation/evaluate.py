"""Judge one recommender the way the field does, with no test data in any fit.

Rating prediction: k-fold cross-validation over all ratings (5 by default, as in the published
MovieLens figures): fit on k - 1 folds, predict the held-out fold, RMSE and MAE; mean and spread
over the folds. A held-out pair whose user or item is not in the training folds gets the model's
baseline fallback, and counts.

Ranking: per user, 25% of the ratings held out at random (``split.per_user_holdout``), the model
fitted on the other 75%. For every user with a held-out rating, the top-k list is drawn from all
training items the user did not rate in training; **every held-out item is relevant** (whatever
its rating: the user chose to watch it), which is the protocol of the published BPR 0.442 figure
(Microsoft Recommenders' MovieLens 100k benchmark). precision, recall, NDCG and MAP at k and
catalogue coverage follow ``metrics``. The same metrics with only held-out ratings >=
``liked_min_rating`` as relevant are reported too, as ``*_liked``.

``evaluate`` never raises for a model error: the result says ``failed`` and why, and the
leaderboard shows it next to the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipelines.constants import ITEM_ID, RATING, USER_ID
from pipelines.recommendation import metrics
from pipelines.recommendation.models.base import Recommender, lookup
from pipelines.recommendation.split import kfold, per_user_holdout
from pipelines.steps.leaderboard import Result

CURVE_KS = tuple(range(1, 21))


@dataclass(frozen=True)
class Protocol:
    folds: int = 5
    test_fraction: float = 0.25
    k: int = 10
    liked_min_rating: float = 4.0
    seed: int = 42

    def as_params(self) -> dict:
        return asdict(self)


@dataclass
class Evaluation(Result):
    model: Recommender | None = None  # fitted on the ranking protocol's training part
    curve: dict = field(default_factory=dict)  # {"k": [...], "ndcg": [...]}


def evaluate_rating(make: Callable[[], Recommender], ratings: pd.DataFrame, protocol: Protocol) -> dict:
    """k-fold RMSE and MAE (mean and standard deviation over folds) and the time it took."""
    folds = kfold(len(ratings), protocol.folds, protocol.seed)
    X, y = ratings[[USER_ID, ITEM_ID]], ratings[RATING].to_numpy(np.float64)
    rmses, maes, started = [], [], time.perf_counter()
    for k in range(protocol.folds):
        test = folds == k
        model = make().fit(X[~test], y[~test])
        pred = model.predict(X[test])
        rmses.append(metrics.rmse(y[test], pred))
        maes.append(metrics.mae(y[test], pred))
    out = {
        "rmse": float(np.mean(rmses)),
        "rmse_std": float(np.std(rmses)),
        "mae": float(np.mean(maes)),
        "mae_std": float(np.std(maes)),
        "cv_s": time.perf_counter() - started,
    }
    out.update({f"rmse_fold_{k + 1}": v for k, v in enumerate(rmses)})
    return out


def ranking_split(ratings: pd.DataFrame, protocol: Protocol) -> np.ndarray:
    """Bool mask of the held-out ratings of the ranking protocol (the same for every model)."""
    return per_user_holdout(ratings[USER_ID].to_numpy(), protocol.test_fraction, protocol.seed)


def evaluate_ranking(
    make: Callable[[], Recommender], ratings: pd.DataFrame, protocol: Protocol
) -> tuple[dict, Recommender, dict]:
    """Top-k metrics on the per-user hold-out; returns (metrics, the fitted model, the NDCG@k curve)."""
    test = ranking_split(ratings, protocol)
    train, held = ratings[~test], ratings[test]
    t0 = time.perf_counter()
    model = make().fit(train[[USER_ID, ITEM_ID]], train[RATING].to_numpy(np.float64))
    fit_s = time.perf_counter() - t0

    users = np.unique(held[USER_ID].to_numpy())
    user_idx = lookup(users, model.user_ids_)
    if (user_idx < 0).any():  # cannot happen: the hold-out keeps a training rating for every user
        raise RuntimeError("a user with held-out ratings has no training rating")
    width = max(protocol.k, max(CURVE_KS))
    t0 = time.perf_counter()
    top, _ = model.top_n(user_idx, width)
    topn_s = time.perf_counter() - t0

    row = np.searchsorted(users, held[USER_ID].to_numpy())
    item = lookup(held[ITEM_ID].to_numpy(), model.item_ids_)
    n_items = len(model.item_ids_)
    out = {"fit_s": fit_s, "topn_s": topn_s, "topn_users": len(users)}
    for suffix, relevant in (
        ("", np.ones(len(held), bool)),
        ("_liked", held[RATING].to_numpy() >= protocol.liked_min_rating),
    ):
        n_rel = np.bincount(row[relevant], minlength=len(users))
        known = relevant & (item >= 0)
        hit = metrics.hits(top, row[known], item[known], n_items)
        scores = metrics.ranking_metrics(hit, n_rel, protocol.k)
        for name in ("precision", "recall", "ndcg", "map"):
            out[f"{name}_at_{protocol.k}{suffix}"] = scores[name]
        out[f"ranking_users{suffix}"] = scores["users"]
        if not suffix:
            curve = {"k": list(CURVE_KS), "ndcg": metrics.ndcg_curve(hit, n_rel, CURVE_KS)}
    out["coverage"] = metrics.coverage(top[:, : protocol.k], n_items)
    return out, model, curve


def evaluate(
    name: str,
    family: str,
    tasks: tuple[str, ...],
    make: Callable[[], Recommender],
    ratings: pd.DataFrame,
    protocol: Protocol,
) -> Evaluation:
    """Both protocols for one model factory (rating prediction only when the model predicts ratings)."""
    try:
        result: dict = {}
        if "rating" in tasks:
            result.update(evaluate_rating(make, ratings, protocol))
        ranking, model, curve = evaluate_ranking(make, ratings, protocol)
        result.update(ranking)
        result["n_parameters"] = model.n_parameters_
        return Evaluation(name, family, "ok", result, model=model, curve=curve)
    except Exception as exc:  # noqa: BLE001 - any model error becomes a leaderboard row
        return Evaluation(name, family, "failed", {}, reason=f"{type(exc).__name__}: {exc}"[:500])
