"""Hyperparameter search: Bayesian (scikit-optimize's gp_minimize), random, or an exhaustive grid.

Every trial is scored the same way as the leaderboard: stratified k-fold CV ROC-AUC on the train
rows with the folds of ``evaluate.fold_ids`` (``evaluate.cross_validate``), so a tuned model's CV
figure is comparable with the untuned ones. Searches stop at ``n_calls`` trials, when the time
budget is spent, or when ``patience`` trials in a row brought no improvement.

Boosting models (``PREFIX_SCORED``) get their number of trees the way ``xgboost.cv`` picks a
number of rounds: every trial fits the most trees the space allows (``n_estimators``' upper bound)
and scores the first m trees of that fit for up to ``PREFIX_CHECKPOINTS`` values of m over the
space's range (a prefix of a boosted model is exactly the model fitted with m trees), keeping the
best m. The Bayesian and random searches explore the other dimensions; a trial's value is its best
prefix's.

Search spaces are keyed by ``Pipeline.set_params`` names (``model__...``) of the registry's
models. ``GRIDS`` are 27-point grids (3 values of n_estimators, max_depth and learning_rate) whose
box is the one the Bayesian and random searches explore in ``bench/tuning.py``.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipelines.training import multiclass
from pipelines.training.data import TrainingData
from pipelines.training.evaluate import EvalConfig, cross_validate

MODES = ("bayes", "random", "grid")
# Expected improvement's exploration margin, in ROC-AUC units. Good settings of a model differ by
# 1e-4..1e-3 of CV ROC-AUC; skopt's default (0.01) asks for more improvement than any point can
# give, which turns EI into blind exploration.
EI_XI = 1e-4
PREFIX_SCORED = ("xgboost", "lightgbm")
PREFIX_CHECKPOINTS = 16


def _spaces() -> dict[str, dict]:
    from skopt.space import Categorical, Integer, Real

    log = "log-uniform"
    return {
        "random_forest": {
            "model__n_estimators": Integer(100, 600),
            "model__max_depth": Integer(4, 40),
            "model__min_samples_split": Integer(2, 40),
            "model__min_samples_leaf": Integer(1, 20),
            "model__max_features": Real(0.1, 0.9),
        },
        "xgboost": {
            "model__n_estimators": Integer(100, 1000),
            "model__max_depth": Integer(2, 10),
            "model__learning_rate": Real(0.01, 0.3, prior=log),
            "model__min_child_weight": Real(0.5, 20.0, prior=log),
            "model__reg_lambda": Real(1e-3, 30.0, prior=log),
            "model__reg_alpha": Real(1e-3, 10.0, prior=log),
            "model__subsample": Real(0.5, 1.0),
            "model__colsample_bytree": Real(0.3, 1.0),
        },
        "lightgbm": {
            "model__n_estimators": Integer(100, 1000),
            "model__max_depth": Integer(3, 12),
            "model__learning_rate": Real(0.01, 0.3, prior=log),
            "model__num_leaves": Integer(8, 128),
            "model__min_child_samples": Integer(5, 200, prior=log),
            "model__reg_lambda": Real(1e-3, 30.0, prior=log),
            "model__reg_alpha": Real(1e-3, 10.0, prior=log),
            "model__colsample_bytree": Real(0.3, 1.0),
        },
        "hist_gb": {
            "model__learning_rate": Real(0.01, 0.3, prior=log),
            "model__max_leaf_nodes": Integer(8, 128),
            "model__max_depth": Categorical([None, 4, 6, 8, 12]),
            "model__min_samples_leaf": Integer(5, 200, prior=log),
            "model__l2_regularization": Real(1e-3, 30.0, prior=log),
        },
        "logreg": {"model__C": Real(1e-3, 100.0, prior=log)},
        "ridge": {"model__estimator__alpha": Real(1e-3, 100.0, prior=log)},
        "svm_rbf": {
            "kernel__gamma": Real(1e-3, 1.0, prior=log),
            "model__estimator__C": Real(1e-3, 10.0, prior=log),
        },
        "mlp_torch": {
            "model__lr": Real(1e-4, 1e-2, prior=log),
            "model__dropout": Real(0.0, 0.5),
            "model__weight_decay": Real(1e-6, 1e-2, prior=log),
            "model__batch_size": Categorical([128, 256, 512, 1024]),
        },
    }


GRIDS: dict[str, dict[str, list]] = {
    name: {
        "model__n_estimators": [100, 300, 500],
        "model__max_depth": [3, 6, 9],
        "model__learning_rate": [0.03, 0.1, 0.3],
    }
    for name in ("xgboost", "lightgbm")
} | {
    "random_forest": {
        "model__n_estimators": [100, 300, 500],
        "model__max_depth": [8, 16, None],
        "model__min_samples_split": [2, 10, 20],
    }
}


def search_space(algorithm: str) -> dict:
    """The Bayesian/random search space of ``algorithm`` (parameter name -> skopt dimension)."""
    spaces = _spaces()
    if algorithm not in spaces:
        raise ValueError(f"no search space for {algorithm!r}; tunable: {', '.join(sorted(spaces))}")
    return spaces[algorithm]


def grid_box(grid: dict[str, list]) -> dict:
    """The continuous box spanned by a grid: what a fair Bayesian/random search over the same ranges explores."""
    from skopt.space import Integer, Real

    box = {}
    for name, values in grid.items():
        lo, hi = min(values), max(values)
        if all(isinstance(v, int) for v in values):
            box[name] = Integer(lo, hi)
        else:
            box[name] = Real(lo, hi, prior="log-uniform" if lo > 0 and hi / lo >= 10 else "uniform")
    return box


@dataclass
class Trial:
    number: int  # 1-based, in the order the search ran them
    params: dict
    cv_roc_auc: float
    cv_folds_done: int
    seconds: float
    cv: object = field(
        default=None, repr=False, compare=False
    )  # the CrossValidation, to judge the best without refitting
    prefixes: dict[int, float] = field(default_factory=dict)  # trees -> CV ROC-AUC of that prefix of the fit

    @property
    def trees_fitted(self) -> int | None:
        """Trees the trial fitted (per fold), when its prefixes were scored."""
        return max(self.prefixes) if self.prefixes else None


@dataclass
class TuningResult:
    algorithm: str
    mode: str
    trials: list[Trial] = field(default_factory=list)
    stopped_because: str = ""

    @property
    def best(self) -> Trial:
        return max(self.trials, key=lambda t: t.cv_roc_auc)

    def best_so_far(self) -> list[float]:
        return np.maximum.accumulate([t.cv_roc_auc for t in self.trials]).tolist()

    def evals_to_reach(self, target: float, tol: float = 0.0) -> int | None:
        """1-based number of the first trial whose CV ROC-AUC is >= target - tol (None: never)."""
        return next((t.number for t in self.trials if t.cv_roc_auc >= target - tol), None)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _build(algorithm: str, data: TrainingData, seed: int, params: dict):
    from pipelines.training import algorithms

    return algorithms.build(algorithm, data.features, seed).set_params(**params)


def checkpoints(low: int, n: int, count: int = PREFIX_CHECKPOINTS) -> list[int]:
    """Tree counts scored for a fit of ``n`` trees: ``n`` and evenly spaced prefixes from ``low``."""
    if n <= low:
        return [n]
    step = -(-(n - low) // (count - 1))  # ceil
    return [*range(low, n, step), n]


def _margins(est, X, start: int, stop: int) -> np.ndarray:
    """Raw scores of trees [start, stop) of a fitted XGBoost or LightGBM classifier."""
    if hasattr(est, "booster_"):  # LightGBM
        return est.predict(X, raw_score=True, start_iteration=start, num_iteration=stop - start)
    return est.predict(X, output_margin=True, iteration_range=(start, stop))


def _prefix_proba(est, X, n: int) -> np.ndarray:
    """P(class 1) (multi-class: every class's) from the first ``n`` trees: the model fitted with ``n`` trees."""
    if hasattr(est, "booster_"):
        return multiclass.scores(est.predict_proba(X, num_iteration=n))
    return multiclass.scores(est.predict_proba(X, iteration_range=(0, n)))


def prefix_cross_validate(make, data: TrainingData, config: EvalConfig, counts: list[int]):
    """``cross_validate`` of a boosted pipeline for every tree count in ``counts``, from one fit per
    fold at ``max(counts)`` trees: ``(mean CV ROC-AUC per count, the best count, its CrossValidation)``."""
    from pipelines.training.evaluate import CrossValidation, empty_oof, fold_ids

    X, y = data.X_train, data.y_train
    fold = fold_ids(y, config)
    fits, aucs, started = [], {n: [] for n in counts}, time.perf_counter()
    for k in range(config.folds):
        valid = fold == k
        model = make().fit(X[~valid], y[~valid])
        Xt, est = model[:-1].transform(X[valid]), model[-1]
        margin = 0.0
        for start, stop in itertools.pairwise([0, *counts]):
            # Ranks rows as P(class 1) does (xgboost adds its base score once per slice: a constant).
            margin = margin + np.asarray(_margins(est, Xt, start, stop), dtype=np.float64)
            score = multiclass.softmax(margin) if margin.ndim == 2 else margin  # multi-class: per-class margins
            aucs[stop].append(multiclass.roc_auc(y[valid], score))
        fits.append((valid, Xt, est))
        if time.perf_counter() - started > config.time_budget_s:
            break
    means = {n: float(np.mean(a)) for n, a in aucs.items()}
    best = max(means, key=means.get)
    cv = CrossValidation([], empty_oof(data), 0.0)
    for valid, Xt, est in fits:  # the kept count's exact probabilities and fold AUCs
        cv.oof[valid] = _prefix_proba(est, Xt, best)
        cv.aucs.append(multiclass.roc_auc(y[valid], cv.oof[valid]))
    cv.seconds = time.perf_counter() - started
    means[best] = float(np.mean(cv.aucs))
    return means, best, cv


def tune(
    algorithm: str,
    data: TrainingData,
    config: EvalConfig,
    *,
    mode: str = "bayes",
    n_calls: int = 30,
    time_budget_s: float = 900.0,
    patience: int = 10,
    space: dict | None = None,
    grid: dict[str, list] | None = None,
    seed: int | None = None,
    target: float | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> TuningResult:
    """Search ``algorithm``'s hyperparameters by CV ROC-AUC; ``on_trial`` sees every finished trial.

    ``mode``: "bayes" (gp_minimize's Gaussian-process surrogate, 5 Latin-hypercube initial trials,
    then expected improvement with margin ``EI_XI``),
    "random" (points drawn from the same skopt space, log-uniform where the space says so) or "grid" (every point of
    ``grid``, default ``GRIDS[algorithm]``, like GridSearchCV). ``target`` stops a search as soon as
    a trial reaches it (used by the benchmark to count evaluations).
    """
    from pipelines.training import algorithms

    if mode not in MODES:
        raise ValueError(f"unknown tuning mode {mode!r}; use one of {', '.join(MODES)}")
    if n_calls < 1:
        raise ValueError(f"n_calls must be at least 1, got {n_calls}")
    seed = config.seed if seed is None else seed
    spec = algorithms.get(algorithm)
    if spec.ensemble:
        raise ValueError(f"{algorithm!r} is an ensemble: tune its base algorithms instead")
    result = TuningResult(algorithm, mode)
    started = time.perf_counter()

    space = dict(space or (search_space(algorithm) if mode != "grid" else {}))
    trees = space.get("model__n_estimators")
    counts = None
    if mode != "grid" and algorithm in PREFIX_SCORED and trees is not None and len(space) > 1:
        counts = checkpoints(trees.low, trees.high)  # the tree count is searched by prefixes, not by the optimizer
        del space["model__n_estimators"]

    def score(point: dict) -> Trial:
        t0 = time.perf_counter()
        params = {k: _plain(v) for k, v in point.items()}
        prefixes = {}
        if counts:  # one fit of the most trees; params keep the best prefix's count
            make = functools.partial(
                _build, algorithm, data, config.seed, {**params, "model__n_estimators": counts[-1]}
            )
            prefixes, params["model__n_estimators"], cv = prefix_cross_validate(make, data, config, counts)
        else:
            cv = cross_validate(functools.partial(_build, algorithm, data, config.seed, dict(params)), data, config)
        number = len(result.trials) + 1
        trial = Trial(number, params, float(np.mean(cv.aucs)), len(cv.aucs), time.perf_counter() - t0, cv, prefixes)
        result.trials.append(trial)
        if on_trial:
            on_trial(trial)
        return trial

    def stop() -> str:
        if target is not None and result.trials[-1].cv_roc_auc >= target:
            return f"reached the target {target:.5f}"
        if time.perf_counter() - started > time_budget_s:
            return f"time budget of {time_budget_s:g}s spent"
        best_at = result.best.number
        if len(result.trials) - best_at >= patience:
            return f"no improvement in the last {patience} trials"
        return ""

    if mode == "grid":
        from sklearn.model_selection import ParameterGrid

        grid = grid or GRIDS.get(algorithm)
        if not grid:
            raise ValueError(f"no grid for {algorithm!r}; pass grid= or use one of {', '.join(sorted(GRIDS))}")
        for point in list(ParameterGrid(grid))[:n_calls]:
            score(point)
            if (why := stop()) and not why.startswith("no improvement"):  # a grid is not cut for stalling
                result.stopped_because = why
                break
        result.stopped_because = result.stopped_because or "grid exhausted"
        return result

    names, dims = list(space), list(space.values())
    if mode == "random":  # skopt's dummy_minimize trips over scikit-learn >= 1.6 tags; sample the Space directly
        from skopt.space import Space

        for values in Space(dims).rvs(n_calls, random_state=seed):
            score(dict(zip(names, values, strict=True)))
            if why := stop():
                result.stopped_because = why
                break
        result.stopped_because = result.stopped_because or f"{n_calls} trials done"
        return result

    from skopt import gp_minimize

    def objective(values: list) -> float:
        return -score(dict(zip(names, values, strict=True))).cv_roc_auc

    def callback(_res) -> bool:
        result.stopped_because = stop()
        return bool(result.stopped_because)

    gp_minimize(
        objective,
        dims,
        n_calls=n_calls,
        n_initial_points=min(5, n_calls),
        initial_point_generator="lhs",  # the first points spread over the box, corners included
        acq_func="EI",
        xi=EI_XI,
        random_state=seed,
        callback=[callback],
    )
    result.stopped_because = result.stopped_because or f"{n_calls} trials done"
    return result


def convergence_figure(results: list[TuningResult], title: str = "Tuning convergence"):
    """Best CV ROC-AUC so far against the trial number, one line per search."""
    import matplotlib.pyplot as plt

    import pipelines.training.plots  # noqa: F401  (selects the Agg backend)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in results:
        best = r.best_so_far()
        ax.plot(range(1, len(best) + 1), best, marker="o", markersize=3, label=f"{r.algorithm} ({r.mode})")
    ax.set_xlabel("trial")
    ax.set_ylabel("best CV ROC-AUC so far")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
