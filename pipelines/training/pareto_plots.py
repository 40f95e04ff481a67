"""Plots of a ``pareto.Selection`` table: the Pareto front in 2-D and 3-D, gate failures and the
selected model marked. Import them from ``pipelines.training.pareto``, which re-exports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipelines.training.gate import Gate, ParetoError, _numbers, _require_columns
from pipelines.training.pareto import DEFAULT_OBJECTIVES, Objective

_SELECTION_COLUMNS = ("considered", "passed_gate", "on_front", "selected")


# (what, marker, colour, size): drawn in this order, each model in exactly one of them.
_KINDS = (
    ("failed gate", "x", "#c44e52", 40),
    ("dominated", "o", "#b0b0b0", 40),
    ("Pareto front", "o", "#4878a8", 60),
    ("selected", "*", "#dd8452", 260),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _objective(key: str, objectives: Sequence[Objective]) -> Objective:
    for o in objectives:
        if key in (o.name, o.column):
            return o
    raise ParetoError(f"{key!r} is not an objective; use one of {[o.name for o in objectives]}")


def _plot_rows(table: pd.DataFrame, axes: Sequence[Objective]) -> list[tuple[str, str, str, int, pd.DataFrame]]:
    """The considered rows with finite values on the plotted axes, split into the four kinds."""
    _require_columns(table, [*_SELECTION_COLUMNS, "algorithm"], "selection (pass select(...).table)")
    _require_columns(table, [o.column for o in axes], "plotted objective")
    finite = np.all([np.isfinite(_numbers(table, o.column)) for o in axes], axis=0)
    shown = table[table["considered"].to_numpy(dtype=bool) & finite]
    masks = (
        ~shown["passed_gate"],
        shown["passed_gate"] & ~shown["on_front"],
        shown["on_front"] & ~shown["selected"],
        shown["selected"],
    )
    return [(*kind, shown[mask.to_numpy(dtype=bool)]) for kind, mask in zip(_KINDS, masks, strict=True)]


def _label(o: Objective, better: tuple[str, str]) -> str:
    """Axis label saying which way is better, e.g. ``latency_p99_ms (← better)``; ``better`` is (max, min)."""
    return f"{o.column} ({better[0] if o.direction == 'max' else better[1]} better)"


def plot_front_2d(
    table: pd.DataFrame,
    x: str = "latency_p99_ms",
    y: str = "roc_auc",
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    *,
    gate: Gate | None = None,
    log_x: bool = False,
    title: str = "Pareto front",
):
    """Two objectives of a ``Selection.table`` against each other: front in blue, dominated in grey,
    gate failures as red crosses, the selected model as a star, each model labelled.

    ``x`` and ``y`` are objective names or columns. The front is the one over all objectives, so
    a front model can look dominated in two of them. Models missing either value are left out.
    ``gate`` draws its thresholds on these axes as dashed lines.
    """
    plt = _pyplot()
    ox, oy = _objective(x, objectives), _objective(y, objectives)
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, marker, colour, size, rows in _plot_rows(table, (ox, oy)):
        if len(rows):
            ax.scatter(rows[ox.column], rows[oy.column], marker=marker, c=colour, s=size, label=label, zorder=3)
            for name, vx, vy in zip(rows["algorithm"], rows[ox.column], rows[oy.column], strict=True):
                ax.annotate(str(name), (vx, vy), xytext=(6, 6), textcoords="offset points", fontsize=7)
    for rule in gate.rules if gate else ():
        if rule.column == ox.column:
            ax.axvline(rule.threshold, ls="--", c="grey", lw=1, label=f"gate {rule}")
        elif rule.column == oy.column:
            ax.axhline(rule.threshold, ls="--", c="grey", lw=1, label=f"gate {rule}")
    if log_x:
        ax.set_xscale("log")
    ax.set(xlabel=_label(ox, ("→", "←")), ylabel=_label(oy, ("↑", "↓")), title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def plot_front_3d(
    table: pd.DataFrame,
    x: str = "latency_p99_ms",
    y: str = "complexity",
    z: str = "roc_auc",
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    *,
    title: str = "Pareto front",
):
    """Three objectives of a ``Selection.table`` in 3-D, with the same marks as ``plot_front_2d``."""
    plt = _pyplot()
    axes = tuple(_objective(k, objectives) for k in (x, y, z))
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    for label, marker, colour, size, rows in _plot_rows(table, axes):
        if len(rows):
            ax.scatter(*(rows[o.column] for o in axes), marker=marker, c=colour, s=size, label=label, depthshade=False)
            for name, *point in zip(rows["algorithm"], *(rows[o.column] for o in axes), strict=True):
                ax.text(*point, f" {name}", fontsize=7)
    ax.set_xlabel(_label(axes[0], ("higher is", "lower is")))
    ax.set_ylabel(_label(axes[1], ("higher is", "lower is")))
    ax.set_zlabel(_label(axes[2], ("higher is", "lower is")))
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    return fig
