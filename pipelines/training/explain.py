"""SHAP explanations of any registry model, reported per RAW input feature.

Which explainer, chosen by the fitted model's final estimator (``Explainer.kind``):

- ``tree``: ``shap.TreeExplainer`` (path-dependent Tree SHAP: exact, no background needed) on the
  model step over the prep step's output, for random forests, XGBoost, LightGBM and
  HistGradientBoosting WITHOUT native categorical splits. Output space: log-odds (the boosters'
  raw margin); probability for random forests (their trees average class frequencies). Its cost
  grows with leaves x depth^2 per tree: the registry's random forest (300 deep trees) takes about
  0.1-0.2 s per row on Adult-sized data, the boosters a few ms.
- ``linear``: ``shap.LinearExplainer`` (interventional, the background's mean as reference) on a
  ``LogisticRegression`` over the prep step's output. Output space: log-odds.
- ``permutation``: permutation SHAP of ``predict_proba[:, 1]`` on the raw features (the estimator
  of ``shap.PermutationExplainer`` with an ``Independent`` masker: antithetic permutations,
  interventional masking over the background rows, vectorised over rows, see
  ``_permutation_values``) for everything else: the kernel SVM, the torch MLP, every ensemble, the
  calibrated ridge classifier (its probability is a mean of per-fold sigmoids of linear scores:
  not linear in the features, nor a monotone map of one linear score, so a LinearExplainer would
  explain another number than the one served), and HistGradientBoosting with native categorical
  splits (shap 0.51 reads those splits as numeric thresholds and gets them wrong). Output space:
  probability. Cost is capped: ``AGNOSTIC_BACKGROUND`` background rows and ``PERMUTATIONS``
  permutations, i.e. ``2 * PERMUTATIONS * (n_features - 1) * AGNOSTIC_BACKGROUND`` model rows per
  explained row (5,200 for UCI Adult's 14 features), and ``global_summary`` explains at most
  ``AGNOSTIC_SUMMARY_ROWS`` rows. Permutations are drawn from ``seed`` on every call, so the
  same row always gets the same values.

The output spaces differ (log-odds vs probability), so every result says which it is. In every
case ``base_value + sum(values) == output`` for each row, exactly (for the permutation explainer
too: each permutation walks from all-masked to the full row). The permutation explainer's values
are estimates: with the default 4 permutations they were within 0.015-0.045 (probability) of the
exact Shapley values on 6 features, values up to 0.6; the error shrinks like 1/sqrt(permutations).

Explainers that work on transformed columns (one-hot) report each raw column's contribution as
the sum of its one-hot columns' contributions; ordinal and native categorical columns map 1:1.
A tree or linear explainer must pass an additivity self-check against the model's own output on
background rows when built, or it falls back to the permutation explainer (``Explainer.note``).

An ``Explainer`` pickles without its shap object (rebuilt lazily on first use), but the cheaper
way for serving is to store ``Explainer.background`` (a few raw rows) next to the model and call
``build_explainer(model, background, seed=seed)`` at load: the same rows (and seed) give the
same explainer. ``Explainer.describe()`` holds what to log next to the values.

No mlflow, no airflow; shap and matplotlib are imported inside functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.training.explain_permutation import _permutation_values
from pipelines.training.explain_routes import (  # noqa: F401  (re-exported: the serving fast path reads _resolve)
    LINEAR,
    LOG_ODDS,
    PERMUTATION,
    PROBABILITY,
    TREE,
    _grouping,
    _raw_features,
    _resolve,
    _route,
    _tree_kind,
    _unwrap,
)
from pipelines.training.metrics import FAMILIES

log = logging.getLogger(__name__)


MAX_BACKGROUND = 100  # background rows kept (raw training rows, sampled)
AGNOSTIC_BACKGROUND = 50  # background rows for the permutation explainer (its cost grows with them)
PERMUTATIONS = 4  # antithetic permutations per row for the permutation explainer
SUMMARY_ROWS = 500  # rows global_summary explains by default (tree / linear)
AGNOSTIC_SUMMARY_ROWS = 200  # ... and with the permutation explainer
MAX_DISPLAY = 20  # features shown in the summary plots

_SELF_CHECK_ROWS = 20
_PROBE_ROWS = 20  # rows global_summary times before it decides how many fit a time budget
_LABELS = {LOG_ODDS: "log-odds", PROBABILITY: "probability"}


@dataclass(frozen=True)
class Explanation:
    """SHAP values of some rows, one column per raw feature, in ``output_space`` units."""

    values: pd.DataFrame  # rows x raw features
    base_value: float  # the expected output over the background (what contributions start from)
    output: np.ndarray  # the model's own output per row, in output_space: base_value + values.sum(axis=1)
    probability: np.ndarray  # P(class 1) per row (equals output when output_space is probability)
    data: pd.DataFrame  # the raw feature values explained
    explainer: str  # tree | linear | permutation
    output_space: str  # log_odds | probability


class Explainer:
    """A fitted model, its raw feature names, a background sample and the explainer kind chosen for it."""

    def __init__(self, model, background, kind, output_space, family=None, note="", permutations=PERMUTATIONS, seed=0):
        self.model = model
        self.background = background
        self.features = tuple(background.columns)
        self.kind = kind
        self.output_space = output_space
        self.family = family
        self.note = note
        self.seed = seed
        self.permutations = permutations  # permutation explainer only: more is slower and less noisy
        self._shap = None

    def describe(self) -> dict:
        """Small, JSON-able facts to log next to the explanations."""
        return {
            "explainer": self.kind,
            "output_space": self.output_space,
            "family": self.family,
            "background_rows": len(self.background),
            "permutations": self.permutations if self.kind == PERMUTATION else None,
            "features": list(self.features),
            "note": self.note,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return f"Explainer(kind={self.kind!r}, output_space={self.output_space!r}, features={len(self.features)})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_shap"] = None  # shap objects hold C extensions and closures: rebuilt on first use
        return state


# -- building -------------------------------------------------------------------------------


def build_explainer(
    model,
    X_background: pd.DataFrame,
    family: str | None = None,
    features: Sequence[str] | None = None,
    max_background: int | None = None,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Explainer:
    """An Explainer for a fitted binary classifier on raw features, from raw training rows.

    ``features`` are the raw feature names (default: the columns the model's preprocessing reads);
    ``family`` (one of metrics.FAMILIES) is only recorded: the final estimator decides the explainer.
    ``max_background`` rows are sampled from ``X_background`` (default MAX_BACKGROUND, or
    AGNOSTIC_BACKGROUND for the permutation explainer); ``permutations`` sets the permutation
    explainer's cost. Building again from ``Explainer.background`` gives the same explainer.
    """
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(X_background, pd.DataFrame):
        raise TypeError(f"X_background must be a DataFrame of raw training rows, got {type(X_background).__name__}")
    if len(X_background) == 0:
        raise ValueError("X_background holds no rows: pass a sample of the raw training rows")
    if (max_background is not None and max_background < 1) or permutations < 1:
        raise ValueError(f"max_background and permutations must be >= 1, got {max_background} and {permutations}")
    _check_binary(model)
    names = tuple(features) if features is not None else _raw_features(model, X_background)
    _check_columns(X_background, names, "X_background")
    background = X_background[list(names)]
    keep = max_background or MAX_BACKGROUND
    if len(background) > keep:
        background = background.sample(keep, random_state=seed)
    background = background.reset_index(drop=True)

    kind, space, note = _route(_unwrap(model), names)
    if kind != PERMUTATION:
        error = _self_check(Explainer(model, background, kind, space, seed=seed))
        if error is not None:
            note = (
                f"the {kind} explainer failed its additivity check against the model's output "
                f"(max error {error:.3g}); using the permutation explainer instead"
            )
            log.warning("SHAP: %s", note)
            kind, space = PERMUTATION, PROBABILITY
    if kind == PERMUTATION and max_background is None:
        background = background.head(AGNOSTIC_BACKGROUND)  # a random sample already
    return Explainer(model, background, kind, space, family, note, permutations, seed)


def _check_binary(model) -> None:
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(model).__name__} is not a fitted classifier (no classes_): fit it before explaining")
    if len(classes) != 2:
        raise ValueError(f"only binary classifiers are explained; the model has {len(classes)} classes")


def _self_check(explainer: Explainer) -> float | None:
    """None when base + sum(values) matches the model's own output on some background rows, else the max error."""
    rows = explainer.background.head(_SELF_CHECK_ROWS)
    try:
        result = explain_rows(explainer, rows)
    except Exception as exc:  # an explainer shap cannot build for this model is a failed check too
        log.warning("SHAP: %s explainer failed: %s", explainer.kind, exc)
        return float("inf")
    total = result.base_value + result.values.to_numpy().sum(axis=1)
    error = float(np.max(np.abs(total - result.output)))
    return None if error <= 1e-4 * max(1.0, float(np.max(np.abs(result.output)))) else error


# -- explaining -----------------------------------------------------------------------------


def explain_rows(explainer: Explainer, X: pd.DataFrame) -> Explanation:
    """SHAP values of every row of ``X`` (raw features; extra columns are ignored)."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a DataFrame of raw feature rows, got {type(X).__name__}")
    if len(X) == 0:
        raise ValueError("X holds no rows to explain")
    _check_columns(X, explainer.features, "X")
    X = X[list(explainer.features)]
    proba = np.asarray(explainer.model.predict_proba(X))[:, 1].astype(np.float64)
    if explainer.kind == PERMUTATION:
        values, base = _permutation_values(explainer, X)
        output = proba
    else:
        prep, est = _unwrap(explainer.model).steps[0][1], _unwrap(explainer.model).steps[-1][1]
        Xt = prep.transform(X)
        raw, base = _tree_values(explainer, Xt) if explainer.kind == TREE else _linear_values(explainer, Xt)
        values = raw @ _grouping(explainer)
        output = proba if explainer.output_space == PROBABILITY else _margin(est, Xt)
    return Explanation(
        values=pd.DataFrame(values, columns=list(explainer.features), index=X.index),
        base_value=float(base),
        output=np.asarray(output, dtype=np.float64),
        probability=proba,
        data=X,
        explainer=explainer.kind,
        output_space=explainer.output_space,
    )


def _margin(est, Xt) -> np.ndarray:
    """The raw score (log-odds) a tree booster or logistic regression outputs."""
    kind = _tree_kind(est)
    if kind == "xgboost":
        return np.asarray(est.predict(Xt, output_margin=True), dtype=np.float64)
    if kind == "lightgbm":
        return np.asarray(est.predict(Xt, raw_score=True), dtype=np.float64)
    return np.asarray(est.decision_function(Xt), dtype=np.float64)


def _tree_values(explainer: Explainer, Xt) -> tuple[np.ndarray, float]:
    import shap

    if explainer._shap is None:
        est = _unwrap(explainer.model).steps[-1][1]
        explainer._shap = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
    result = explainer._shap(Xt, check_additivity=False)  # checked against the model itself, see _self_check
    values, base = np.asarray(result.values, dtype=np.float64), np.asarray(result.base_values, dtype=np.float64)
    if values.ndim == 3:  # (rows, columns, classes): random forests give both classes' probabilities
        values, base = values[..., 1], base[..., 1]
    return values, float(np.ravel(base)[0])


def _linear_values(explainer: Explainer, Xt) -> tuple[np.ndarray, float]:
    import shap

    if explainer._shap is None:
        model = _unwrap(explainer.model)
        background = np.asarray(model.steps[0][1].transform(explainer.background), dtype=np.float64)
        masker = shap.maskers.Independent(background, max_samples=len(background))
        explainer._shap = shap.LinearExplainer(model.steps[-1][1], masker)
    result = explainer._shap(np.asarray(Xt, dtype=np.float64))
    return np.asarray(result.values, dtype=np.float64), float(np.ravel(result.base_values)[0])


def _check_columns(X: pd.DataFrame, features: Sequence[str], what: str) -> None:
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise ValueError(
            f"{what} is missing feature(s) {missing}: pass every raw feature the model was trained on "
            f"({len(features)}: {', '.join(features)})"
        )


# -- serving --------------------------------------------------------------------------------


def explain_one(explainer: Explainer, row: Mapping | pd.Series | pd.DataFrame) -> dict:
    """One row's explanation for the serving API: JSON-able, contributions sorted by |value|, largest first."""
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"explain_one takes one row, got {len(row)}; use explain_rows for several")
        frame = row
    elif isinstance(row, (Mapping, pd.Series)):
        frame = pd.DataFrame([dict(row)])
    else:
        raise TypeError(f"row must be a dict of feature -> value or a one-row DataFrame, got {type(row).__name__}")
    missing = [f for f in explainer.features if f not in frame.columns]
    if missing:
        raise ValueError(
            f"row is missing feature(s) {missing}: send every raw feature the model was trained on "
            f"({', '.join(explainer.features)})"
        )
    result = explain_rows(explainer, frame)
    values = result.values.iloc[0]
    order = values.abs().sort_values(ascending=False, kind="stable").index
    return {
        "base_value": result.base_value,
        "output": float(result.output[0]),
        "probability": float(result.probability[0]),
        "output_space": result.output_space,
        "explainer": result.explainer,
        "contributions": {str(f): float(values[f]) for f in order},
    }


# -- global summary -------------------------------------------------------------------------


def global_summary(
    explainer: Explainer,
    X_sample: pd.DataFrame,
    max_rows: int | None = None,
    seed: int = 0,
    time_budget_s: float | None = None,
):
    """(mean |SHAP| table sorted desc, {"beeswarm": Figure, "bar": Figure}) over at most ``max_rows`` rows.

    ``max_rows`` defaults to SUMMARY_ROWS, or AGNOSTIC_SUMMARY_ROWS for the permutation explainer.
    With ``time_budget_s``, rows stop being added once the budget would run out (after a first
    ``_PROBE_ROWS``, always done): the row count then depends on the machine's speed.
    """
    if max_rows is None:
        max_rows = AGNOSTIC_SUMMARY_ROWS if explainer.kind == PERMUTATION else SUMMARY_ROWS
    if len(X_sample) > max_rows:
        X_sample = X_sample.sample(max_rows, random_state=seed)
    if time_budget_s is None or len(X_sample) <= _PROBE_ROWS:
        result = explain_rows(explainer, X_sample)
    else:
        started = time.perf_counter()
        result = explain_rows(explainer, X_sample.iloc[:_PROBE_ROWS])
        spent = time.perf_counter() - started
        more = int(max(0.0, time_budget_s - spent) / (spent / _PROBE_ROWS))
        if more:
            result = _concat(result, explain_rows(explainer, X_sample.iloc[_PROBE_ROWS : _PROBE_ROWS + more]))
    return summary_table(result), summary_figures(result)


def _concat(a: Explanation, b: Explanation) -> Explanation:
    """Two Explanations of the same explainer as one (the base value depends on the explainer only)."""
    return Explanation(
        values=pd.concat([a.values, b.values]),
        base_value=a.base_value,
        output=np.concatenate([a.output, b.output]),
        probability=np.concatenate([a.probability, b.probability]),
        data=pd.concat([a.data, b.data]),
        explainer=a.explainer,
        output_space=a.output_space,
    )


def summary_table(result: Explanation) -> pd.DataFrame:
    """feature, mean_abs_shap: the mean |SHAP value| per raw feature, largest first."""
    mean_abs = result.values.abs().mean(axis=0)
    table = pd.DataFrame({"feature": list(mean_abs.index), "mean_abs_shap": mean_abs.to_numpy(dtype=np.float64)})
    return table.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)


def summary_figures(result: Explanation, max_display: int = MAX_DISPLAY) -> dict:
    """The beeswarm and bar plots (shap's own) of an Explanation, as matplotlib Figures (Agg, never shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    numeric = result.data.apply(lambda c: pd.to_numeric(c, errors="coerce") if _is_number(c) else np.nan)
    exp = shap.Explanation(
        values=result.values.to_numpy(),
        base_values=np.full(len(result.values), result.base_value),
        data=numeric.to_numpy(dtype=np.float64),  # colours the beeswarm; categorical columns are grey
        display_data=result.data.astype(object).to_numpy(),
        feature_names=list(result.values.columns),
    )
    shown = min(max_display, result.values.shape[1])
    space = _LABELS[result.output_space]
    title = f"SHAP ({result.explainer} explainer, {space}, {len(result.values):,} rows)"
    figures = {}
    for name, draw in (("beeswarm", shap.plots.beeswarm), ("bar", shap.plots.bar)):
        fig, ax = plt.subplots(figsize=(8, 0.4 * shown + 1.8))
        if name == "beeswarm":
            draw(exp, max_display=shown, ax=ax, show=False, plot_size=None)
            ax.set_xlabel(f"SHAP value (impact on {space})")
        else:
            draw(exp, max_display=shown, ax=ax, show=False)
            ax.set_xlabel(f"mean |SHAP value| ({space})")
        ax.set_title(title)
        fig.tight_layout()
        figures[name] = fig
    return figures


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(column.dtype, pd.CategoricalDtype)
