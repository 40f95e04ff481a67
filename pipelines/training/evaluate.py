"""Judge one algorithm on gold data: stratified k-fold CV on the train rows, a final fit on all
of them, the held-out test score, speed, size, complexity and interpretability.

A failing algorithm does not raise: its result says ``status: failed`` and why, so the
leaderboard shows it next to the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from pipelines.steps.leaderboard import Result
from pipelines.training import multiclass
from pipelines.training.data import TrainingData


@dataclass(frozen=True)
class EvalConfig:
    folds: int = 5
    fp_cost: float = 1.0
    fn_cost: float = 5.0
    time_budget_s: float = 900.0  # CV stops early (with fewer folds) once an algorithm passes this
    seed: int = 42
    latency_rows: int = 500  # single-row calls timed: 5 blocks of 100 (metrics.latency)

    def as_params(self) -> dict:
        return asdict(self)


@dataclass
class Evaluation(Result):
    KEY: ClassVar[str] = "algorithm"

    model: object | None = None
    test_proba: np.ndarray | None = None
    oof: np.ndarray | None = None  # out-of-fold P(class 1) (multi-class: a column per class); NaN past CV


def fold_ids(y, config: EvalConfig) -> np.ndarray:
    """The CV fold (0..folds-1) of every train row: the same split for every algorithm and ensemble."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    ids = np.empty(len(y), dtype=np.int16)
    for k, (_, valid) in enumerate(folds.split(np.zeros(len(y)), y)):
        ids[valid] = k
    return ids


@dataclass
class CrossValidation:
    aucs: list[float]  # ROC-AUC per fold done, in fold order (multi-class: one-vs-rest macro)
    oof: np.ndarray  # out-of-fold P(class 1) (multi-class: a column per class), NaN in folds not done
    seconds: float


def cross_validate(make: Callable[[], object], data: TrainingData, config: EvalConfig) -> CrossValidation:
    """Stratified k-fold CV ROC-AUC on the train rows; stops after the fold that passes the time budget."""
    X, y = data.X_train, data.y_train
    fold = fold_ids(y, config)
    cv, started = CrossValidation([], empty_oof(data), 0.0), time.perf_counter()
    for k in range(config.folds):
        _score_fold(cv, make().fit(X[fold != k], y[fold != k]), data, fold == k)
        if time.perf_counter() - started > config.time_budget_s:
            break
    cv.seconds = time.perf_counter() - started
    return cv


def empty_oof(data: TrainingData) -> np.ndarray:
    """NaN out-of-fold scores for the train rows: one column (binary) or one per class."""
    return multiclass.empty(len(data.y_train), len(data.classes) if data.multiclass else 2)


def scores(model, X, data: TrainingData) -> np.ndarray:
    """P(class 1), or every class's probability (a class the model never saw: 0)."""
    k = len(data.classes) if data.multiclass else 2
    return multiclass.scores(multiclass.full(model.predict_proba(X), getattr(model, "classes_", range(k)), k))


def _score_fold(cv: CrossValidation, model, data: TrainingData, valid: np.ndarray) -> None:
    cv.oof[valid] = scores(model, data.X_train[valid], data)
    cv.aucs.append(multiclass.roc_auc(data.y_train[valid], cv.oof[valid]))


def _timed_fit(make: Callable[[], object], X, y) -> tuple[object, float]:
    t0 = time.perf_counter()
    model = make().fit(X, y)
    return model, time.perf_counter() - t0


def _fit_all_in_parallel(make, data: TrainingData, config: EvalConfig, jobs: int):
    """The k fold fits and the final fit as one batch of ``jobs`` worker processes (no time budget cut).

    For a model that would otherwise run alone on one core (bagging, after the base stage of the
    training DAG): k + 1 independent fits spread over the cores instead of one after the other.
    """
    from joblib import Parallel, delayed, parallel_config

    X, y = data.X_train, data.y_train
    fold = fold_ids(y, config)
    started = time.perf_counter()
    parts = [(X[fold != k], y[fold != k]) for k in range(config.folds)] + [(X, y)]
    # Workers that outlive their work hold the Airflow task's log pipe open, and `airflow dags test`
    # then waited ~45 s at exit (loky keeps idle workers 300 s): let them go after 1 s idle.
    with parallel_config(backend="loky", idle_worker_timeout=1):
        fits = Parallel(n_jobs=jobs)(delayed(_timed_fit)(make, X_part, y_part) for X_part, y_part in parts)
    cv = CrossValidation([], empty_oof(data), 0.0)
    for k, (fold_model, _) in enumerate(fits[:-1]):
        _score_fold(cv, fold_model, data, fold == k)
    cv.seconds = time.perf_counter() - started
    model, fit_s = fits[-1]
    return cv, model, fit_s


def evaluate(
    name: str,
    family: str,
    make: Callable[[], object],
    data: TrainingData,
    config: EvalConfig,
    cv: Callable[[], CrossValidation] | None = None,
    jobs: int = 1,
) -> Evaluation:
    """Run the whole judgement for one estimator factory; never raises for model errors.

    ``cv`` replaces the k-fold refits when the CV figures can be had without them (ensembles of
    base models whose out-of-fold predictions are known, see ``pipelines.training.ensembles``).
    ``jobs`` > 1 runs the fold fits and the final fit side by side in that many processes.
    """
    try:
        return _evaluate(name, family, make, data, config, cv, jobs)
    except Exception as exc:  # noqa: BLE001 - any model error becomes a leaderboard row
        return Evaluation(name, family, "failed", {}, reason=f"{type(exc).__name__}: {exc}"[:500])


def _evaluate(name, family, make, data: TrainingData, config: EvalConfig, cv, jobs: int = 1) -> Evaluation:
    from pipelines.training import metrics as m

    if jobs > 1 and not cv:
        result, model, fit_s = _fit_all_in_parallel(make, data, config, jobs)
    else:
        result = cv() if cv else cross_validate(make, data, config)
        model, fit_s = _timed_fit(make, data.X_train, data.y_train)
    proba = scores(model, data.X_test, data)
    if data.multiclass:  # FP/FN costs are a binary notion: no cost metrics
        test = multiclass.multiclass_metrics(data.y_test.to_numpy(), proba, data.classes)
    else:
        test = m.classification_metrics(data.y_test.to_numpy(), proba, fp_cost=config.fp_cost, fn_cost=config.fn_cost)
    speed = m.latency(model.predict_proba, data.X_test, single_rows=config.latency_rows)
    n_params = m.count_parameters(model)
    metrics = {
        "cv_roc_auc": float(np.mean(result.aucs)),
        "cv_roc_auc_std": float(np.std(result.aucs)),
        "cv_folds_done": len(result.aucs),
        "cv_s": result.seconds,
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
    return Evaluation(name, family, "ok", metrics, model=model, test_proba=proba, oof=result.oof)
