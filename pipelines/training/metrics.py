"""Model metrics for the benchmark: quality, cost, speed and size (parameters, complexity and
interpretability are in ``pipelines.training.complexity``, re-exported here).

Every function is pure (numpy and scikit-learn only, no mlflow, no torch) so the benchmark,
tuning, Pareto selection and the tests all score models the same way. Binary classification
throughout: ``proba`` is P(class 1) and a row is flagged positive when ``proba >= threshold``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from pipelines.training.complexity import (  # noqa: F401  (re-exported: parameters, complexity, interpretability)
    FAMILIES,
    INTERPRETABILITY_BASE,
    complexity_score,
    count_parameters,
    interpretability_score,
)

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
