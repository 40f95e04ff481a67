"""Judge one algorithm on gold data: stratified k-fold CV on the train rows, a final fit on all
of them, the held-out test score, speed, size, complexity and interpretability.

A failing algorithm does not raise: its result says ``status: failed`` and why, so the
leaderboard shows it next to the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from pipelines.training.data import TrainingData


@dataclass(frozen=True)
class EvalConfig:
    folds: int = 5
    fp_cost: float = 1.0
    fn_cost: float = 5.0
    time_budget_s: float = 900.0  # CV stops early (with fewer folds) once an algorithm passes this
    seed: int = 42
    latency_rows: int = 200

    def as_params(self) -> dict:
        return asdict(self)


@dataclass
class Evaluation:
    name: str
    family: str
    status: str  # "ok" or "failed"
    metrics: dict
    reason: str | None = None
    model: object | None = None
    test_proba: np.ndarray | None = None

    def record(self) -> dict:
        """The JSON-able part, for XCom and the leaderboard."""
        return {
            "algorithm": self.name,
            "family": self.family,
            "status": self.status,
            "reason": self.reason,
            **self.metrics,
        }


def evaluate(name: str, family: str, make: Callable[[], object], data: TrainingData, config: EvalConfig) -> Evaluation:
    """Run the whole judgement for one estimator factory; never raises for model errors."""
    try:
        return _evaluate(name, family, make, data, config)
    except Exception as exc:  # noqa: BLE001 - any model error becomes a leaderboard row
        return Evaluation(name, family, "failed", {}, reason=f"{type(exc).__name__}: {exc}"[:500])


def _evaluate(name: str, family: str, make: Callable[[], object], data: TrainingData, config: EvalConfig) -> Evaluation:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from pipelines.training import metrics as m

    X, y = data.X_train, data.y_train
    folds = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    aucs, started = [], time.perf_counter()
    for train_idx, valid_idx in folds.split(X, y):
        model = make()
        model.fit(X.iloc[train_idx], y.iloc[train_idx])
        aucs.append(roc_auc_score(y.iloc[valid_idx], model.predict_proba(X.iloc[valid_idx])[:, 1]))
        if time.perf_counter() - started > config.time_budget_s:
            break
    cv_s = time.perf_counter() - started

    model = make()
    t0 = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - t0
    proba = model.predict_proba(data.X_test)[:, 1]
    test = m.classification_metrics(data.y_test.to_numpy(), proba, fp_cost=config.fp_cost, fn_cost=config.fn_cost)
    speed = m.latency(model.predict_proba, data.X_test, single_rows=config.latency_rows)
    n_params = m.count_parameters(model)
    metrics = {
        "cv_roc_auc": float(np.mean(aucs)),
        "cv_roc_auc_std": float(np.std(aucs)),
        "cv_folds_done": len(aucs),
        "cv_s": cv_s,
        "fit_s": fit_s,
        **{f"test_{k}": v for k, v in test.items()},
        "latency_p50_ms": speed["p50_ms"],
        "latency_p99_ms": speed["p99_ms"],
        "batch_rows_per_s": speed["batch_rows_per_s"],
        "model_size_bytes": m.model_size_bytes(model),
        "n_parameters": n_params,
        "complexity": m.complexity_score(model),
        "interpretability": m.interpretability_score(family, n_params),
    }
    return Evaluation(name, family, "ok", metrics, model=model, test_proba=proba)
