"""Data and prediction drift of one batch against a reference sample.

PSI (population stability index), binning:

- numeric: the reference's quantiles (values it holds) at 1/bins, 2/bins, ... (duplicates merged, so a column
  with few distinct values gets fewer bins), outer edges -inf/+inf so every value falls in a bin;
- categorical: one bin per category seen in the reference, plus one bin for categories the
  reference never had;
- missing values get a bin of their own in both cases.

``PSI = sum((cur - ref) * ln(cur / ref))`` over bins of the two proportions, each proportion
floored at ``EPS`` so an empty bin does not give infinity. Rule of thumb: < 0.1 stable,
0.1-0.2 moderate, > 0.2 significant drift.

Tests: two-sample Kolmogorov-Smirnov on numeric columns, chi-square on the reference/current
count table of categorical ones. With thousands of rows these flag tiny, harmless shifts, so
a feature ``drifted`` only when its PSI is over the threshold; the p-values are reported next to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EPS = 1e-4
_MISSING = "__missing__"
_OTHER = "__other__"


def is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def numeric_edges(reference, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the reference's quantiles (unique)."""
    values = pd.to_numeric(pd.Series(reference), errors="coerce").dropna().to_numpy(dtype=float)
    if len(values) == 0:
        raise ValueError("the reference column holds no numbers to bin")
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"))


def _numeric_shares(values, edges: np.ndarray) -> np.ndarray:
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    missing = np.isnan(x)
    counts = np.bincount(np.searchsorted(edges, x[~missing], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum())
    return counts / max(len(x), 1)


def _categorical_shares(values, categories: Sequence) -> np.ndarray:
    s = pd.Series(values).astype(object)
    s = s.where(s.notna(), _MISSING)
    s = s.where(s.isin(list(categories) + [_MISSING]), _OTHER)
    counts = s.value_counts()
    return np.array([counts.get(c, 0) for c in [*categories, _OTHER, _MISSING]], dtype=float) / max(len(s), 1)


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.maximum(ref, EPS), np.maximum(cur, EPS)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(reference, current, bins: int = 10, categorical: bool | None = None) -> float:
    """PSI of ``current`` against ``reference`` (binning in the module doc)."""
    reference, current = pd.Series(reference), pd.Series(current)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(f"PSI needs rows on both sides, got {len(reference)} reference and {len(current)} current")
    if categorical is None:
        categorical = not is_numeric(reference)
    if categorical:
        categories = sorted(reference.dropna().astype(object).unique(), key=str)
        return _psi(_categorical_shares(reference, categories), _categorical_shares(current, categories))
    edges = numeric_edges(reference, bins)
    return _psi(_numeric_shares(reference, edges), _numeric_shares(current, edges))


def ks_test(reference, current) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov-Smirnov test, missing values left out."""
    from scipy.stats import ks_2samp

    a = pd.to_numeric(pd.Series(reference), errors="coerce").dropna()
    b = pd.to_numeric(pd.Series(current), errors="coerce").dropna()
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan")
    result = ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def chi_square_test(reference, current) -> tuple[float, float]:
    """(statistic, p-value) of the chi-square test of the 2 x categories count table (missing is a category)."""
    from scipy.stats import chi2_contingency

    a = pd.Series(reference).astype(object).fillna(_MISSING).value_counts()
    b = pd.Series(current).astype(object).fillna(_MISSING).value_counts()
    table = pd.concat([a, b], axis=1).fillna(0).to_numpy().T
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(table)
    return float(stat), float(p)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str] | None = None,
    bins: int = 10,
    psi_threshold: float = 0.2,
    p_value: float = 0.01,
) -> pd.DataFrame:
    """One row per feature: kind, PSI, test, statistic, p-value, significant (p < p_value), drifted (PSI > threshold)."""
    features = list(features) if features is not None else [c for c in reference.columns if c in current.columns]
    missing = [f for f in features if f not in reference.columns or f not in current.columns]
    if missing:
        raise ValueError(f"feature(s) {missing} are missing from the reference or the current batch")
    rows = []
    for f in features:
        numeric = is_numeric(reference[f])
        value = psi(reference[f], current[f], bins=bins, categorical=not numeric)
        stat, p = ks_test(reference[f], current[f]) if numeric else chi_square_test(reference[f], current[f])
        rows.append(
            {
                "feature": f,
                "kind": "numeric" if numeric else "categorical",
                "psi": value,
                "test": "ks" if numeric else "chi2",
                "statistic": stat,
                "p_value": p,
                "significant": bool(p < p_value) if p == p else False,
                "drifted": bool(value > psi_threshold),
            }
        )
    return pd.DataFrame(rows)
