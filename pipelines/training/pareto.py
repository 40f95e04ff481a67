"""Pick the model to promote: a rule-based gate, the Pareto front, then a weighted score.

Objectives have explicit directions (``DEFAULT_OBJECTIVES``, definitions in
``pipelines.training.metrics``): CV ROC-AUC (max), p99 single-row latency in ms (min),
complexity = log10(1 + parameters) (min) and interpretability in [0, 1] (max). Selection reads
the CV ROC-AUC so the test split stays an honest final check of the chosen model; pass
``default_objectives("test_roc_auc")`` to change that.

``select`` runs the spec's steps in this order:

1. candidates: leaderboard rows with ``status == "ok"``; the others are listed as not considered;
2. gate: every rule must hold (``DEFAULT_GATE``: ``cv_roc_auc > 0.85`` and ``latency_p99_ms < 100``;
   the training DAG passes its own, by default beating a baseline: ``pipelines.training.baseline``).
   A candidate with a missing (NaN) or infinite objective fails the gate too, so it is
   excluded by name rather than ranked;
3. near the best (``near_best_se``, the one-standard-error rule): a model whose CV ROC-AUC is more
   than that many standard errors of the best one's CV mean (fold spread / sqrt(folds)) behind the
   best model that passed the gate is dropped, so speed, size and readability are bought only with
   differences the folds cannot tell apart (None: no such rule);
4. the Pareto front among the models still in;
5. a weighted score over the front, on objectives min-max normalised over the front (1 = best
   in its direction); the highest score is selected.

No model passes the gate: nothing is selected and the reason says which rule failed for which
model. Pure: numpy and pandas, plus matplotlib (imported lazily) for the plots.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from pipelines.training.gate import (  # noqa: F401  (re-exported: the gate is part of selection)
    _MISSING,
    DEFAULT_GATE,
    DEFAULT_GATE_CONFIG,
    Gate,
    ParetoError,
    Rule,
    _as_gate,
    _failures,
    _numbers,
    _require_columns,
    apply_gate,
)

# ---------------------------------------------------------------------------------------------
# Objectives and dominance
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """One thing to optimise: ``name`` (the weights' key), the leaderboard ``column``, ``direction``."""

    name: str
    column: str
    direction: str  # "max" or "min"

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ParetoError(f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")

    @property
    def sign(self) -> float:
        """+1 for max, -1 for min: multiplying by it turns every objective into 'higher is better'."""
        return 1.0 if self.direction == "max" else -1.0


def default_objectives(roc_auc_column: str = "cv_roc_auc") -> tuple[Objective, ...]:
    """The spec's four objectives, reading ROC-AUC from ``roc_auc_column``."""
    return (
        Objective("roc_auc", roc_auc_column, "max"),
        Objective("latency_p99_ms", "latency_p99_ms", "min"),
        Objective("complexity", "complexity", "min"),
        Objective("interpretability", "interpretability", "max"),
    )


DEFAULT_OBJECTIVES = default_objectives()
DEFAULT_WEIGHTS = MappingProxyType({"roc_auc": 0.4, "latency_p99_ms": 0.3, "complexity": 0.2, "interpretability": 0.1})


def _check_objectives(objectives: Sequence[Objective]) -> tuple[Objective, ...]:
    objectives = tuple(objectives)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise ParetoError(f"objectives must be a non-empty sequence of Objective; got {objectives!r}")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ParetoError(f"objective names must be unique; got {names}")
    return objectives


def _names(frame: pd.DataFrame) -> list[str]:
    """How to call each row in messages: its algorithm, else its index label."""
    if "algorithm" in frame.columns:
        return frame["algorithm"].astype(str).tolist()
    return [str(i) for i in frame.index]


def _goodness(frame: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """(rows, objectives) matrix where higher is better for every column: value * sign.

    Refuses NaN or infinite values, naming each model and column, since such a model can be
    neither ranked nor fairly dropped here; ``select`` excludes those models before this point.
    """
    objectives = _check_objectives(objectives)
    _require_columns(frame, [o.column for o in objectives], "objective")
    values = np.column_stack([_numbers(frame, o.column) for o in objectives]).reshape(len(frame), len(objectives))
    bad = ~np.isfinite(values)
    if bad.any():
        names = _names(frame)
        where = ", ".join(f"{names[i]!r} {objectives[j].column}={values[i, j]}" for i, j in np.argwhere(bad))
        raise ParetoError(
            f"objective values must be finite numbers; missing or not finite: {where}. "
            "Fix or drop those rows (select() excludes them for you)"
        )
    return values * np.array([o.sign for o in objectives])


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective, in that objective's
    direction, and strictly better on at least one. ``a`` and ``b`` map columns to values."""
    good = _goodness(pd.DataFrame([dict(a), dict(b)]), objectives)
    return bool(np.all(good[0] >= good[1]) and np.any(good[0] > good[1]))


def pareto_front(frame: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> np.ndarray:
    """Boolean mask over the rows of ``frame``: True for rows no other row dominates.

    Identical rows do not dominate each other, so duplicates are on the front together (or off
    it together). Raises ParetoError naming the model and column for a NaN or infinite value.
    All pairs at once: n x n x objectives booleans, fine for the hundreds of models a run has.
    """
    good = _goodness(frame, objectives)
    at_least = (good[:, None, :] >= good[None, :, :]).all(axis=2)  # [i, j]: i >= j everywhere
    better = (good[:, None, :] > good[None, :, :]).any(axis=2)  # [i, j]: i > j somewhere
    return ~(at_least & better).any(axis=0)  # j is on the front when no i dominates it


# ---------------------------------------------------------------------------------------------
# Normalisation and weights
# ---------------------------------------------------------------------------------------------


def normalise(frame: pd.DataFrame, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """Each objective min-max scaled over the rows of ``frame`` so that 1 is the best row in its
    direction and 0 the worst. A column where every row is equal is 1 for all: it cannot tell
    the rows apart, so it adds the same amount to every score. Columns are the objective names."""
    objectives = _check_objectives(objectives)
    good = _goodness(frame, objectives)
    if len(frame) == 0:
        return pd.DataFrame(index=frame.index, columns=[o.name for o in objectives], dtype=np.float64)
    low, span = good.min(axis=0), np.ptp(good, axis=0)
    scaled = np.where(span > 0, (good - low) / np.where(span > 0, span, 1.0), 1.0)
    return pd.DataFrame(scaled, index=frame.index, columns=[o.name for o in objectives])


def check_weights(
    weights: Mapping[str, float] | None = None, objectives: Sequence[Objective] = DEFAULT_OBJECTIVES
) -> dict[str, float]:
    """Weights per objective name, validated and scaled to sum to 1.

    ``None`` means ``DEFAULT_WEIGHTS`` (for the objectives present). An objective left out gets
    weight 0. Raises ParetoError for a key that is no objective's name, a weight that is negative
    or not a finite number, or weights that are all zero.
    """
    names = [o.name for o in _check_objectives(objectives)]
    if weights is None:
        weights = {n: DEFAULT_WEIGHTS[n] for n in names if n in DEFAULT_WEIGHTS}
    if not isinstance(weights, Mapping):
        raise ParetoError(f"weights must map objective names to numbers, e.g. {dict(DEFAULT_WEIGHTS)}; got {weights!r}")
    unknown = [k for k in weights if k not in names]
    if unknown:
        raise ParetoError(f"weights name unknown objective(s) {unknown}; the objectives are {names}")
    checked = {}
    for name in names:
        value = weights.get(name, 0.0)
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
        if not math.isfinite(number) or number < 0:
            raise ParetoError(f"weight of {name!r} must be a finite number >= 0; got {value!r}")
        checked[name] = number
    total = math.fsum(checked.values())
    if total == 0:
        raise ParetoError(f"weights are all zero ({dict(weights)}): give at least one objective a positive weight")
    return {name: w / total for name, w in checked.items()}


def weighted_scores(
    frame: pd.DataFrame,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    weights: Mapping[str, float] | None = None,
) -> pd.Series:
    """Score in [0, 1] per row: the weighted sum of its objectives normalised over ``frame``
    (``normalise``), with ``check_weights(weights)``. Pass the Pareto front, not the whole board:
    the normalisation depends on which rows are compared."""
    w = check_weights(weights, objectives)
    scaled = normalise(frame, objectives)
    return pd.Series(scaled.to_numpy() @ np.array([w[c] for c in scaled.columns]), index=frame.index, name="score")


# ---------------------------------------------------------------------------------------------
# Gate
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Selection:
    """The outcome of ``select``.

    ``table``: the leaderboard rows (same order) plus ``considered`` (status ok), ``passed_gate``,
    ``failed_rules``, ``on_front`` (front among the models that passed), ``score`` (NaN off the
    front) and ``selected``. ``selected`` is the chosen algorithm or None; ``reason`` says why,
    in a few lines a person can read.
    """

    table: pd.DataFrame
    selected: str | None
    reason: str
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    weights: dict[str, float] = field(default_factory=dict)
    gate: Gate = DEFAULT_GATE
    near_best_se: float | None = None

    def record(self) -> dict:
        """The JSON-able summary, for XCom and MLflow params/tags."""
        t = self.table
        chosen = t[t["selected"]]
        return {
            "selected": self.selected,
            "score": float(chosen["score"].iloc[0]) if len(chosen) else None,
            "reason": self.reason,
            "front": t.loc[t["on_front"], "algorithm"].tolist(),
            "passed_gate": t.loc[t["passed_gate"], "algorithm"].tolist(),
            "failed_gate": dict(_pairs(t[t["considered"] & ~t["passed_gate"]], "failed_rules")),
            "not_considered": t.loc[~t["considered"], "algorithm"].tolist(),
            "weights": dict(self.weights),
            "gate": str(self.gate),
            "near_best_se": self.near_best_se,
            "objectives": {o.name: f"{o.direction} {o.column}" for o in self.objectives},
        }


def select(
    leaderboard: pd.DataFrame,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    weights: Mapping[str, float] | None = None,
    gate: Gate | Mapping[str, str | Sequence[str]] | None = None,
    near_best_se: float | None = None,
) -> Selection:
    """Gate, then (``near_best_se``) the models near the best, then the Pareto front of those, then the
    best weighted score on it.

    ``leaderboard`` needs an ``algorithm`` column (unique names) and, for the rows to rank, the
    objective and gate columns; rows whose ``status`` is not "ok" are not considered (a board
    without ``status`` counts every row as ok). A candidate with a missing objective value fails
    the gate with that as its reason. Equal scores go to the better model on the objectives in
    order (ROC-AUC first by default), then to the algorithm name, so the choice is repeatable.
    Config errors (objectives, weights, gate) raise ParetoError before anything is ranked.
    """
    objectives = _check_objectives(objectives)
    w = check_weights(weights, objectives)
    gate = _as_gate(gate)
    _require_columns(leaderboard, ["algorithm"], "model name")
    table = leaderboard.reset_index(drop=True)
    names = table["algorithm"].astype(str)
    if names.duplicated().any():
        raise ParetoError(f"algorithm names must be unique; repeated: {sorted(set(names[names.duplicated()]))}")
    status = table["status"].astype(str) if "status" in table.columns else pd.Series("ok", index=table.index)
    considered = (status == "ok").to_numpy()

    failed_rules = [f"not considered: status {s!r}" for s in status]
    passed = np.zeros(len(table), dtype=bool)
    rows = np.flatnonzero(considered)
    if len(rows):
        for i, failed in zip(rows, _failures(table.iloc[rows], gate, objectives), strict=True):
            failed_rules[i] = "; ".join(failed)
            passed[i] = not failed
    if near_best_se is not None:
        for i, why in _behind_best(table, np.flatnonzero(passed), objectives, near_best_se).items():
            passed[i], failed_rules[i] = False, why
    on_front = np.zeros(len(table), dtype=bool)
    score = np.full(len(table), np.nan)
    chosen = None
    if passed.any():
        passing = np.flatnonzero(passed)
        on_front[passing] = pareto_front(table.iloc[passing], objectives)
        front = np.flatnonzero(on_front)
        score[front] = weighted_scores(table.iloc[front], objectives, w).to_numpy()
        good = _goodness(table.iloc[front], objectives)
        best = min(range(len(front)), key=lambda k: (-score[front[k]], *(-good[k]), names[front[k]]))
        chosen = int(front[best])
    table = table.assign(
        considered=considered,
        passed_gate=passed,
        failed_rules=pd.Series(failed_rules, index=table.index, dtype=object),
        on_front=on_front,
        score=score,
        selected=np.arange(len(table)) == chosen,
    )
    rules = f"{gate}" + (f"; near the best: within {near_best_se:g} SE" if near_best_se is not None else "")
    reason = _reason(table, chosen, objectives, w, rules)
    return Selection(table, None if chosen is None else names[chosen], reason, objectives, w, gate, near_best_se)


def _behind_best(table: pd.DataFrame, rows: np.ndarray, objectives, ses: float) -> dict[int, str]:
    """Row -> why, for the ``rows`` whose ROC-AUC objective (the first objective without one) is more than
    ``ses`` standard errors of the best row's CV mean behind it. Nothing when the table has no fold
    spread (``<column>_std``, ``cv_folds_done``) for the best row."""
    auc = next((o for o in objectives if o.name == "roc_auc"), objectives[0])
    spread = f"{auc.column}_std"
    if len(rows) < 2 or spread not in table.columns or "cv_folds_done" not in table.columns:
        return {}
    values = _numbers(table, auc.column)[rows] * auc.sign
    best = int(rows[int(np.argmax(values))])
    se = _numbers(table, spread)[best] / math.sqrt(_numbers(table, "cv_folds_done")[best])
    if not math.isfinite(se):
        return {}
    top, name = values.max(), table["algorithm"].iloc[best]
    return {
        int(i): f"{auc.column} {v * auc.sign:.4g} is {top - v:.2g} behind the best that passed ({name} "
        f"{top * auc.sign:.4g}): more than {ses:g} standard error(s) of its CV mean ({se:.2g})"
        for i, v in zip(rows, values, strict=True)
        if top - v > ses * se + 1e-12
    }


def _reason(table: pd.DataFrame, chosen: int | None, objectives, weights: dict[str, float], gate: str) -> str:
    """Which model was chosen and why, or why none was; then, one line each, the models that
    failed the gate (with every rule they failed) and those not considered (with their status)."""
    n_considered, n_passed, n_front = (int(table[c].sum()) for c in ("considered", "passed_gate", "on_front"))
    if chosen is not None:
        row = table.iloc[chosen]
        figures = ", ".join(f"{o.column} {row[o.column]:.4g}" for o in objectives)
        weights_text = ", ".join(f"{k} {v:.2f}" for k, v in weights.items() if v)
        lines = [
            f"selected {row['algorithm']}: highest weighted score {row['score']:.3f} among the {n_front} model(s) "
            f"on the Pareto front of the {n_passed} that passed the gate ({gate}); {figures}.",
            f"score: weighted sum of the objectives min-max normalised over the front (1 = best); {weights_text}.",
        ]
        others = table[table["on_front"] & ~table["selected"]].sort_values("score", ascending=False)
        if len(others):
            lines.append("also on the front: " + ", ".join(f"{a} {s:.3f}" for a, s in _pairs(others, "score")) + ".")
    elif n_considered == 0:
        lines = ["nothing selected: no model has status ok."]
    else:
        lines = [f"nothing selected: none of the {n_considered} model(s) passed the gate ({gate})."]
    failed = table[table["considered"] & ~table["passed_gate"]]
    if len(failed):
        lines.append("failed the gate:")
        lines += [f"  {a}: {r}" for a, r in _pairs(failed, "failed_rules")]
    skipped = table[~table["considered"]]
    if len(skipped):
        lines.append("not considered (status not ok):")
        why = skipped["reason"] if "reason" in skipped.columns else pd.Series(None, index=skipped.index)
        for (a, status), r in zip(_pairs(skipped, "status"), why, strict=True):
            lines.append(f"  {a}: {status}" + (f" ({str(r)[:150]})" if isinstance(r, str) and r else ""))
    return "\n".join(lines)


def _pairs(frame: pd.DataFrame, column: str) -> list[tuple[str, Any]]:
    return list(zip(frame["algorithm"].astype(str), frame[column], strict=True))


# Plots: pipelines/training/pareto_plots.py (imported last: it reads the objectives defined above)
from pipelines.training.pareto_plots import plot_front_2d, plot_front_3d  # noqa: E402, F401
