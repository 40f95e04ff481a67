"""A/B testing of the challenger against the champion: stable routing and the analysis of outcomes.

Routing: ``bucket = int(sha256(f"{experiment}:{unit_id}")[:16 hex], 16) / 2**64`` in [0, 1), the
same in every process and on every machine (never Python's ``hash()``, which is salted per
process). A unit goes to the challenger when its bucket is below the challenger's share, so
growing the share only moves units from the champion to the challenger, never back.

Analysis (``analyse``): per-arm metrics once outcomes are known, a two-proportion z-test on a
binary outcome (by default: the prediction at 0.5 was correct), a bootstrap confidence interval
of the ROC-AUC difference (challenger - champion), and a recommendation:

- ``promote``: enough data, the z-test is significant and the challenger is better, and the AUC
  interval does not say it is worse (its upper end is > 0);
- ``keep``: enough data and the challenger is significantly worse (z-test), or the whole AUC
  interval is below 0;
- ``continue``: anything else (too few rows per arm, or no significant difference yet).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHAMPION_ARM, CHALLENGER_ARM = "champion", "challenger"
PROMOTE, KEEP, CONTINUE = "promote", "keep", "continue"


def bucket(experiment: str, unit_id: str) -> float:
    """The unit's stable position in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment}:{unit_id}".encode()).hexdigest()
    return int(digest[:16], 16) / 2**64


def assign(experiment: str, unit_id: str, challenger_fraction: float) -> str:
    """The arm ("champion" or "challenger") of a unit; the same unit always gets the same arm."""
    if not 0 <= challenger_fraction <= 1:
        raise ValueError(f"challenger_fraction must be in [0, 1], got {challenger_fraction}")
    return CHALLENGER_ARM if bucket(experiment, str(unit_id)) < challenger_fraction else CHAMPION_ARM


@dataclass(frozen=True)
class ZTest:
    p_a: float
    p_b: float
    n_a: int
    n_b: int
    z: float
    p_value: float  # two-sided


def two_proportion_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int) -> ZTest:
    """Two-sided z-test of p_b - p_a with the pooled proportion (a: champion, b: challenger)."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError(f"both arms need rows for a z-test, got n_a={n_a}, n_b={n_b}")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (p_b - p_a) / se if se > 0 else 0.0  # se is 0 only when every row of both arms has the same outcome
    p_value = math.erfc(abs(z) / math.sqrt(2))  # 2 * (1 - Phi(|z|))
    return ZTest(p_a, p_b, n_a, n_b, z, p_value)


def bootstrap_auc_diff(
    y_a, p_a, y_b, p_b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(difference, low, high): ROC-AUC of arm b minus arm a and its percentile bootstrap interval.

    Each arm is resampled with replacement on its own (the arms hold different units); resamples
    with a single class are drawn again.
    """
    from sklearn.metrics import roc_auc_score

    y_a, p_a, y_b, p_b = (np.asarray(v) for v in (y_a, p_a, y_b, p_b))
    for name, y in (("a", y_a), ("b", y_b)):
        if len(np.unique(y)) < 2:
            raise ValueError(f"arm {name} needs both outcomes (0 and 1) for a ROC-AUC, got {np.unique(y).tolist()}")
    diff = roc_auc_score(y_b, p_b) - roc_auc_score(y_a, p_a)
    rng = np.random.default_rng(seed)
    diffs = []
    while len(diffs) < n_boot:
        ia, ib = rng.integers(0, len(y_a), len(y_a)), rng.integers(0, len(y_b), len(y_b))
        if y_a[ia].min() == y_a[ia].max() or y_b[ib].min() == y_b[ib].max():
            continue
        diffs.append(roc_auc_score(y_b[ib], p_b[ib]) - roc_auc_score(y_a[ia], p_a[ia]))
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(diff), float(low), float(high)


def analyse(
    frame: pd.DataFrame,
    *,
    arm: str = "arm",
    label: str = "label",
    probability: str = "probability",
    outcome: str | None = None,
    threshold: float = 0.5,
    alpha: float = 0.05,
    min_rows_per_arm: int = 200,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Per-arm metrics, the z-test, the AUC-difference interval and a recommendation (see the module doc).

    ``frame`` holds one row per prediction with a known outcome: the arm, the label and the
    predicted probability. ``outcome`` names a binary column to test (e.g. conversion); default:
    whether the prediction at ``threshold`` was correct.
    """
    from sklearn.metrics import roc_auc_score

    missing = [c for c in (arm, label, probability, outcome) if c and c not in frame.columns]
    if missing:
        raise ValueError(f"A/B analysis needs column(s) {missing}; got {list(frame.columns)}")
    frame = frame.dropna(subset=[label, probability])
    y = frame[label].astype(int)
    success = (
        frame[outcome].astype(int) if outcome else ((frame[probability] >= threshold).astype(int) == y).astype(int)
    )
    per_arm = {}
    for name in (CHAMPION_ARM, CHALLENGER_ARM):
        m = (frame[arm] == name).to_numpy()
        n = int(m.sum())
        yy = y[m]
        per_arm[name] = {
            "rows": n,
            "success_rate": float(success[m].mean()) if n else None,
            "positive_rate": float(yy.mean()) if n else None,
            "roc_auc": float(roc_auc_score(yy, frame[probability][m])) if n and yy.nunique() == 2 else None,
        }
    out = {"arms": per_arm, "ztest": None, "auc_diff": None, "alpha": alpha, "min_rows_per_arm": min_rows_per_arm}
    n_a, n_b = per_arm[CHAMPION_ARM]["rows"], per_arm[CHALLENGER_ARM]["rows"]
    if min(n_a, n_b) < min_rows_per_arm:
        out.update(recommendation=CONTINUE, reason=f"not enough data: {n_a} / {n_b} rows, need {min_rows_per_arm}")
        return out
    a, b = (frame[arm] == CHAMPION_ARM).to_numpy(), (frame[arm] == CHALLENGER_ARM).to_numpy()
    z = two_proportion_ztest(int(success[a].sum()), n_a, int(success[b].sum()), n_b)
    out["ztest"] = z.__dict__
    try:
        diff, low, high = bootstrap_auc_diff(
            y[a], frame[probability][a], y[b], frame[probability][b], n_boot=n_boot, alpha=alpha, seed=seed
        )
        out["auc_diff"] = {"diff": diff, "low": low, "high": high}
    except ValueError:
        low = high = None
    significant = z.p_value < alpha
    if (significant and z.z < 0) or (high is not None and high < 0):
        out.update(recommendation=KEEP, reason=f"challenger is worse (z={z.z:.2f}, p={z.p_value:.3g})")
    elif significant and z.z > 0 and (high is None or high > 0):
        out.update(recommendation=PROMOTE, reason=f"challenger is better (z={z.z:.2f}, p={z.p_value:.3g})")
    else:
        out.update(recommendation=CONTINUE, reason=f"no significant difference yet (p={z.p_value:.3g} >= {alpha})")
    return out
