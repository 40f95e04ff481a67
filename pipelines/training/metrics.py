"""Model metrics for the benchmark: quality, cost, speed, size and interpretability.

Every function is pure (numpy and scikit-learn only, no mlflow, no torch) so the benchmark,
tuning, Pareto selection and the tests all score models the same way. Binary classification
throughout: ``proba`` is P(class 1) and a row is flagged positive when ``proba >= threshold``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, roc_auc_score

# ---------------------------------------------------------------------------------------------
# Quality and cost
# ---------------------------------------------------------------------------------------------

_EPS = float(np.finfo(np.float64).eps)  # log loss clips probabilities to [eps, 1 - eps]
_MAX_BATCH_ROWS = 2_000  # rows/s settles well below this; bigger batches only cost task time


def _check_binary(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and probabilities; return them as int8 0/1 and float64 arrays."""
    y = np.asarray(y_true)
    p = np.asarray(proba)
    if p.ndim == 2 and p.shape[1] == 2:
        raise ValueError("proba has two columns: pass P(class 1) only, e.g. predict_proba(X)[:, 1]")
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and proba must be 1-D; got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"length mismatch: y_true has {len(y)} rows but proba has {len(p)}")
    if len(y) == 0:
        raise ValueError("empty input: y_true and proba hold no rows")
    try:
        p = p.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"proba must be numeric probabilities; got dtype {p.dtype}") from exc
    if np.isnan(p).any():
        raise ValueError(f"proba holds {int(np.isnan(p).sum())} NaN value(s): check the model's output")
    bad = (p < 0.0) | (p > 1.0)
    if bad.any():
        raise ValueError(
            f"proba must lie in [0, 1]; {int(bad.sum())} value(s) fall outside, range [{p.min():g}, {p.max():g}]"
        )
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:  # True/False compare equal to 1/0 and pass too
        raise ValueError(f"y_true must hold binary labels 0/1; found {sorted(labels, key=str)}")
    if len(labels) < 2:
        raise ValueError(
            f"y_true holds a single class ({labels.pop()}): ROC-AUC and PR-AUC are undefined; "
            "evaluate on a split that has both classes"
        )
    return y.astype(np.int8), p


def _check_costs(fp_cost: float, fn_cost: float) -> tuple[float, float]:
    costs = float(fp_cost), float(fn_cost)
    if not all(math.isfinite(c) and c >= 0 for c in costs):
        raise ValueError(f"fp_cost and fn_cost must be finite and >= 0; got {fp_cost!r} and {fn_cost!r}")
    return costs


def _ratio(num: float, den: float) -> float:
    """num / den, or 0.0 when den is 0 (scikit-learn's zero_division=0 convention)."""
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2.0 * precision * recall / (precision + recall) if precision + recall else 0.0


def classification_metrics(
    y_true: Any,
    proba: Any,
    *,
    threshold: float = 0.5,
    fp_cost: float = 1.0,
    fn_cost: float = 5.0,
) -> dict[str, float]:
    """Quality and cost of binary predictions ``proba`` = P(class 1), flagged at ``proba >= threshold``.

    Keys (all plain floats):

    - threshold-free: ``roc_auc``, ``pr_auc`` (average precision), ``log_loss`` (probabilities
      clipped to [eps, 1 - eps]), ``brier`` (mean squared error of the probability);
    - at the threshold: ``accuracy``, ``precision``, ``recall``, ``f1`` (of class 1), the same
      per class as ``precision_0`` ... ``f1_1``, and the confusion counts ``tn, fp, fn, tp``.
      A ratio whose denominator is 0 (no row predicted in a class) is 0.0, as in scikit-learn;
    - cost: ``fp_cost`` = fp * fp_cost, ``fn_cost`` = fn * fn_cost, ``total_cost`` (their sum),
      ``cost_per_row`` (total / rows) and ``cost_ratio`` = total_cost / (positives * fn_cost),
      the cost relative to the trivial policy "flag nothing", which pays for every positive as
      a miss: below 1 the model beats doing nothing, above 1 it is worse than doing nothing.
      NaN when that baseline costs 0 (fn_cost = 0).

    Raises ValueError for mismatched lengths, empty input, labels other than 0/1, a single
    class in y_true (ROC-AUC is undefined), or probabilities that are NaN or outside [0, 1].
    """
    y, p = _check_binary(y_true, proba)
    c_fp, c_fn = _check_costs(fp_cost, fn_cost)
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number; got {threshold!r}")

    n = len(y)
    pred = p >= threshold
    pos = y == 1
    tp = int(np.count_nonzero(pred & pos))
    fp = int(np.count_nonzero(pred & ~pos))
    fn = int(np.count_nonzero(~pred & pos))
    tn = n - tp - fp - fn

    precision_1, recall_1 = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    precision_0, recall_0 = _ratio(tn, tn + fn), _ratio(tn, tn + fp)
    f1_1, f1_0 = _f1(precision_1, recall_1), _f1(precision_0, recall_0)

    clipped = np.clip(p, _EPS, 1.0 - _EPS)
    log_loss = -float(np.mean(np.where(pos, np.log(clipped), np.log1p(-clipped))))
    brier = float(np.mean((p - y) ** 2))

    cost_fp, cost_fn = fp * c_fp, fn * c_fn
    total = cost_fp + cost_fn
    baseline = (tp + fn) * c_fn  # "flag nothing" misses every positive
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision_1,
        "recall": recall_1,
        "f1": f1_1,
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": log_loss,
        "brier": brier,
        "precision_0": precision_0,
        "recall_0": recall_0,
        "f1_0": f1_0,
        "precision_1": precision_1,
        "recall_1": recall_1,
        "f1_1": f1_1,
        "tn": float(tn),
        "fp": float(fp),
        "fn": float(fn),
        "tp": float(tp),
        "fp_cost": float(cost_fp),
        "fn_cost": float(cost_fn),
        "total_cost": float(total),
        "cost_per_row": float(total) / n,
        "cost_ratio": float(total) / baseline if baseline else math.nan,
    }


def best_threshold_for_cost(y_true: Any, proba: Any, fp_cost: float, fn_cost: float) -> float:
    """The threshold that minimises fp * fp_cost + fn * fn_cost on these rows.

    Candidates are the distinct values of ``proba`` (rows with ``proba >= t`` are flagged) plus
    "flag nothing", returned as the next float above the largest probability (so it may exceed
    1.0 by one ulp when a probability is exactly 1). Ties go to the highest threshold, i.e. the
    fewest rows flagged. Computed in one pass over the rows sorted by probability.
    """
    y, p = _check_binary(y_true, proba)
    c_fp, c_fn = _check_costs(fp_cost, fn_cost)
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # Last index of each run of equal probabilities: flagging at that value flags the whole run.
    ends = np.flatnonzero(np.r_[p_sorted[1:] != p_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[ends]
    fp = (ends + 1) - tp
    fn = tp[-1] - tp
    costs = np.r_[tp[-1] * c_fn, fp * c_fp + fn * c_fn]  # index 0: flag nothing
    thresholds = np.r_[np.nextafter(p_sorted[0], np.inf), p_sorted[ends]]
    return float(thresholds[int(np.argmin(costs))])  # argmin keeps the first: the highest threshold


# ---------------------------------------------------------------------------------------------
# Speed and size
# ---------------------------------------------------------------------------------------------


def _rows(X: Any, start: int, stop: int) -> Any:
    return X.iloc[start:stop] if hasattr(X, "iloc") else X[start:stop]


def latency(
    predict_proba: Callable[[Any], Any],
    X: Any,
    *,
    single_rows: int = 200,
    warmup: int = 20,
    batch_rows: int | None = None,
    blocks: int = 5,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> dict[str, float]:
    """Single-row latency and batch throughput of ``predict_proba`` on rows of ``X`` (a DataFrame).

    Single rows: ``warmup`` untimed calls, then ``single_rows`` calls of one row each (rows of X
    in order, cycled when X is shorter), each timed with ``time.perf_counter_ns``; the one-row
    frames are sliced beforehand so slicing is not timed. Reports ``p50_ms`` and ``mean_ms`` over
    all calls, and ``p99_ms`` as the median of the p99s of ``blocks`` consecutive blocks of calls
    (of at least 20 calls each): a burst of load on a shared machine (another process taking the core for a while) lands in one
    block and moves that block's p99 only, so a model does not flip across a latency gate from one
    run to the next. ``clock`` (nanoseconds) is for tests.

    Batch: the first ``batch_rows`` rows of X (default all of X, capped at 2,000; never more
    than X has), one warm-up call, then the best of 3 timed calls, as ``batch_rows_per_s``.
    Also returns ``single_rows`` and ``batch_rows``, the number of rows actually used.
    """
    n = len(X)
    if n == 0:
        raise ValueError("latency needs at least one row in X; got an empty frame")
    if single_rows < 1 or warmup < 0:
        raise ValueError(f"single_rows must be >= 1 and warmup >= 0; got {single_rows} and {warmup}")
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1 or None for all of X; got {batch_rows}")

    frames = [_rows(X, i, i + 1) for i in range(min(n, max(single_rows, warmup, 1)))]
    for i in range(warmup):
        predict_proba(frames[i % len(frames)])
    elapsed = np.empty(single_rows, dtype=np.int64)
    for i in range(single_rows):
        row = frames[i % len(frames)]
        start = clock()
        predict_proba(row)
        elapsed[i] = clock() - start
    ms = elapsed / 1e6
    n_blocks = max(1, min(blocks, single_rows // 20))  # a block's p99 needs some calls to mean anything

    size = min(n, batch_rows if batch_rows is not None else _MAX_BATCH_ROWS)
    batch = _rows(X, 0, size)
    predict_proba(batch)
    best = None
    for _ in range(3):
        start = clock()
        predict_proba(batch)
        took = clock() - start
        best = took if best is None else min(best, took)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.median([np.percentile(b, 99) for b in np.array_split(ms, n_blocks)])),
        "mean_ms": float(ms.mean()),
        "batch_rows_per_s": size / (max(best, 1) / 1e9),
        "single_rows": float(single_rows),
        "batch_rows": float(size),
    }


def model_size_bytes(model: Any) -> int:
    """Bytes of ``model`` serialised with cloudpickle: what MLflow stores for a pickled model."""
    import cloudpickle  # installed with mlflow; imported here to keep this module light

    return len(cloudpickle.dumps(model))


# Top-level modules a pickled model may reference -> the distributions that provide them.
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
}
# Our own estimator modules that need a library their pickle does not reference (torch weights are
# pickled as numpy arrays and turned back into a torch module at predict time).
_IMPLIED = {"pipelines.training.torch_mlp": "torch"}


def requirements(model: Any) -> list[str]:
    """Pinned pip requirements of ``model`` pickled with cloudpickle: every listed library its pickle references.

    Reads the module names out of the pickle's opcodes instead of importing the model in a
    subprocess the way MLflow's inference does (seconds per model). Always includes cloudpickle.
    """
    import pickletools
    from importlib.metadata import version

    import cloudpickle

    roots = {"cloudpickle"}
    for _, arg, _ in pickletools.genops(cloudpickle.dumps(model)):
        if isinstance(arg, str):
            module = arg.partition(" ")[0]
            root = _IMPLIED.get(module, module.partition(".")[0])
            if root in _DISTRIBUTIONS:
                roots.add(root)
    # "2.13.0+cpu" -> "==2.13.0", which PEP 440 matches with any local build of that version
    return sorted(f"{_DISTRIBUTIONS.get(r, r)}=={version(_DISTRIBUTIONS.get(r, r)).partition('+')[0]}" for r in roots)


# ---------------------------------------------------------------------------------------------
# Parameters, complexity, interpretability
# ---------------------------------------------------------------------------------------------

# Fitted attributes that describe the data or the fit, not what the model learned.
_NOT_PARAMETERS = frozenset(
    {
        "classes_",
        "feature_names_in_",
        "n_features_in_",
        "n_iter_",
        "n_samples_seen_",
        "n_outputs_",
        "labels_",
        "estimators_samples_",
        "estimators_features_",
    }
)
_SCALER_ATTRS = ("mean_", "scale_", "min_", "center_")


def _size(value: Any) -> int:
    return int(np.size(value)) if value is not None else 0


def _is_estimator(obj: Any) -> bool:
    return hasattr(obj, "fit") and hasattr(obj, "get_params")


def _sum(items: Iterable[Any]) -> int:
    return sum(_count(item) for item in items)


def _xgboost_nodes(model: Any) -> int:
    """Nodes over all trees from the booster's JSON model (one parse; gblinear: its weights)."""
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    gb = json.loads(bytes(booster.save_raw(raw_format="json")))["learner"]["gradient_booster"]
    if gb["name"] == "gblinear":
        return len(gb["model"]["weights"])
    trees = (gb["gbtree"] if gb["name"] == "dart" else gb)["model"]["trees"]
    return sum(int(t["tree_param"]["num_nodes"]) - int(t["tree_param"].get("num_deleted", 0)) for t in trees)


def _lightgbm_nodes(model: Any) -> int:
    """Nodes over all trees: a tree with L leaves has 2L - 1 nodes.

    Reads ``num_leaves=`` from the model text, which is several times faster than ``dump_model()``.
    """
    booster = model.booster_ if hasattr(model, "booster_") else model
    lines = booster.model_to_string().splitlines()
    return sum(2 * int(line.partition("=")[2]) - 1 for line in lines if line.startswith("num_leaves="))


def _calibrator(cal: Any) -> int:
    if hasattr(cal, "a_") and hasattr(cal, "b_"):  # sigmoid (Platt): two scalars
        return 2
    return _count(cal)


def _fallback(est: Any) -> int:
    """Sizes of the public fitted attributes (ending in ``_``) that hold arrays or estimators."""
    total = 0
    for name, value in getattr(est, "__dict__", {}).items():
        if name.startswith("_") or not name.endswith("_") or name in _NOT_PARAMETERS or name.startswith("oob_"):
            continue
        total += _value_count(value)
    return total


def _value_count(value: Any) -> int:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return sum(_value_count(v) for v in value.ravel())
        return int(value.size) if np.issubdtype(value.dtype, np.number) or value.dtype == bool else 0
    if isinstance(value, list | tuple):
        return sum(_value_count(v) for v in value)
    if _is_estimator(value):
        return _count(value)
    return 0


def _count(est: Any) -> int:
    """Dispatch on what the estimator exposes, most specific first (see count_parameters)."""
    if est is None or isinstance(est, str):  # "drop" / "passthrough"
        return 0
    if isinstance(getattr(est, "n_parameters_", None), int | np.integer):  # torch wrappers
        return int(est.n_parameters_)
    module = type(est).__module__ or ""
    if module.startswith("xgboost"):
        return _xgboost_nodes(est)
    if module.startswith("lightgbm"):
        return _lightgbm_nodes(est)
    if hasattr(est, "steps"):  # Pipeline
        return _sum(step for _, step in est.steps)
    if hasattr(est, "transformers_"):  # ColumnTransformer (fitted)
        return _sum(t for _, t, _ in est.transformers_)
    if hasattr(est, "transformer_list"):  # FeatureUnion
        return _sum(t for _, t in est.transformer_list)
    if hasattr(est, "_predictors"):  # HistGradientBoosting*
        return sum(len(p.nodes) for iteration in est._predictors for p in iteration)
    if hasattr(getattr(est, "tree_", None), "node_count"):  # single sklearn tree
        return int(est.tree_.node_count)
    if hasattr(est, "calibrated_classifiers_"):  # CalibratedClassifierCV
        return sum(
            _count(cc.estimator) + sum(_calibrator(c) for c in cc.calibrators) for cc in est.calibrated_classifiers_
        )
    if type(est).__name__ == "FrozenEstimator":
        return _count(est.estimator)
    if hasattr(est, "estimators_"):  # forests, bagging, boosting, voting, stacking, one-vs-rest
        members = est.estimators_
        members = members.ravel() if isinstance(members, np.ndarray) else members  # GradientBoosting: 2-D
        return _sum(members) + _count(getattr(est, "final_estimator_", None))
    if hasattr(est, "support_vectors_"):  # SVMs: support vectors, their weights, intercepts
        return _size(est.support_vectors_) + _size(est.dual_coef_) + _size(est.intercept_)
    if hasattr(est, "coefs_") and hasattr(est, "intercepts_"):  # sklearn MLP
        return sum(_size(w) for w in est.coefs_) + sum(_size(b) for b in est.intercepts_)
    if type(est).__name__ == "Nystroem":
        return _size(est.components_)
    if isinstance(getattr(est, "coef_", None), np.ndarray):  # linear models
        intercept = _size(getattr(est, "intercept_", None)) if getattr(est, "fit_intercept", True) else 0
        return _size(est.coef_) + intercept
    if hasattr(est, "categories_"):  # OneHotEncoder, OrdinalEncoder
        return sum(_size(c) for c in est.categories_)
    if hasattr(est, "scale_") and any(isinstance(getattr(est, a, None), np.ndarray) for a in _SCALER_ATTRS):
        return sum(_size(getattr(est, a, None)) for a in _SCALER_ATTRS)
    return _fallback(est)


def count_parameters(model: Any) -> int:
    """Number of learned parameters of a fitted estimator or Pipeline, walked recursively.

    What counts as a parameter, by kind:

    - Pipeline, ColumnTransformer, FeatureUnion: the sum over their fitted steps;
    - linear models: ``coef_`` size + ``intercept_`` size (0 without an intercept);
    - scikit-learn trees: ``tree_.node_count``; forests, bagging, gradient boosting, voting,
      stacking and one-vs-rest: the sum over ``estimators_`` (+ ``final_estimator_``);
    - HistGradientBoosting: nodes over all ``_predictors``; XGBoost: nodes over all trees of the
      booster (gblinear: its weights); LightGBM: 2 * num_leaves - 1 per tree (no linear-tree terms);
    - SVMs: support vectors + dual coefficients + intercepts; Nystroem: ``components_`` size;
      scikit-learn MLP: the sizes of ``coefs_`` and ``intercepts_``;
    - anything exposing an integer ``n_parameters_`` (the torch wrappers): that number;
    - CalibratedClassifierCV: each calibrated copy's estimator + its calibrator (sigmoid: 2);
    - encoders: number of categories; scalers: sizes of ``mean_``/``scale_``/``min_``/``center_``.

    Fallback for any other type: the total size of public fitted attributes (names ending in
    ``_``) holding numeric arrays, recursing into estimators held in such attributes or in
    lists/object arrays. Data descriptions such as ``classes_``, ``feature_names_in_`` and
    ``labels_`` are not counted. An unfitted scikit-learn estimator raises ValueError.
    """
    if _is_estimator(model):
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except NotFittedError as exc:
            raise ValueError(f"{type(model).__name__} is not fitted: fit it before counting its parameters") from exc
        except (TypeError, AttributeError):
            pass  # not a scikit-learn estimator after all: count what it has
    return int(_count(model))


def complexity_score(model: Any) -> float:
    """``log10(1 + count_parameters(model))``: roughly the number of digits of the parameter count.

    Parameter counts span six orders of magnitude across families (a logistic regression has
    tens, a boosted ensemble hundreds of thousands), so the log keeps the axis readable on a
    Pareto plot and makes a 10x larger model cost one unit; the ``1 +`` keeps it 0 for 0.
    """
    return math.log10(1 + count_parameters(model))


INTERPRETABILITY_BASE = MappingProxyType(
    {
        "linear": 1.0,
        "tree": 0.6,
        "tree_ensemble": 0.4,
        "boosting": 0.35,
        "kernel": 0.2,
        "neural": 0.15,
        "ensemble": 0.1,
    }
)
FAMILIES: tuple[str, ...] = tuple(INTERPRETABILITY_BASE)


def interpretability_score(family: str, n_parameters: int) -> float:
    """How easily a person can read the model, in [0, 1]: a base score per family times a size penalty.

    ==============  ==========  ===========================================
    family          base score  examples
    ==============  ==========  ===========================================
    linear          1.0         logistic regression, linear SVM
    tree            0.6         a single decision tree
    tree_ensemble   0.4         random forest, extra trees
    boosting        0.35        XGBoost, LightGBM, HistGradientBoosting
    kernel          0.2         RBF SVM, Nystroem + linear model
    neural          0.15        MLP, torch networks
    ensemble        0.1         voting, stacking of other models
    ==============  ==========  ===========================================

    ``score = base * 1 / (1 + log10(1 + n_parameters) / 10)``

    The penalty is 1 for an empty model and halves the base score only at 10^10 parameters, so
    the family dominates and size separates models within a family (a 10-coefficient linear
    model scores 0.91, a 1,000-node tree 0.46). Raises ValueError for an unknown family.
    """
    if family not in INTERPRETABILITY_BASE:
        raise ValueError(f"unknown model family {family!r}; known families: {', '.join(FAMILIES)}")
    if isinstance(n_parameters, bool) or not isinstance(n_parameters, int | np.integer) or n_parameters < 0:
        raise ValueError(f"n_parameters must be an integer >= 0; got {n_parameters!r}")
    return INTERPRETABILITY_BASE[family] / (1.0 + math.log10(1 + int(n_parameters)) / 10.0)
