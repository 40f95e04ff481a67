"""A/B routing (stable, split as configured) and the analysis (z-test, bootstrap AUC interval, recommendation)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipelines.constants import REPO_ROOT
from pipelines.serving import ab


def test_bucket_is_sha256_based_and_stable_across_processes():
    # sha256("exp:user-42") -> first 16 hex digits / 2**64, computed once by hand and pinned.
    assert ab.bucket("exp", "user-42") == pytest.approx(0.6791751054275003, abs=1e-15)
    code = "from pipelines.serving import ab; print(repr(ab.bucket('exp', 'user-42')))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
        cwd=REPO_ROOT,
    )
    assert float(other.stdout) == ab.bucket("exp", "user-42")
    assert ab.assign("exp", "user-42", 0.5) == "champion" and ab.assign("exp", "user-42", 0.7) == "challenger"


def test_split_proportions_on_10k_ids():
    for fraction in (0.1, 0.5, 0.9):
        arms = [ab.assign("split-test", f"id-{i}", fraction) for i in range(10_000)]
        share = arms.count("challenger") / len(arms)
        assert abs(share - fraction) < 0.02, (fraction, share)
    assert {ab.assign("e", str(i), 0.0) for i in range(100)} == {"champion"}
    assert {ab.assign("e", str(i), 1.0) for i in range(100)} == {"challenger"}
    with pytest.raises(ValueError, match="challenger_fraction"):
        ab.assign("e", "1", 1.5)


def test_growing_the_share_only_moves_units_to_the_challenger():
    small = [ab.assign("grow", str(i), 0.2) for i in range(2000)]
    large = [ab.assign("grow", str(i), 0.4) for i in range(2000)]
    assert all(b == "challenger" for a, b in zip(small, large, strict=True) if a == "challenger")


def test_ztest_matches_a_hand_computed_example():
    # 200/1000 vs 250/1000: pooled p = 0.225, se = sqrt(0.225 * 0.775 * (2/1000)) = 0.0186748,
    # z = 0.05 / 0.0186748 = 2.67741, two-sided p = 2 * (1 - Phi(2.67741)) = 0.007420
    z = ab.two_proportion_ztest(200, 1000, 250, 1000)
    assert z.z == pytest.approx(2.67741, abs=1e-4)
    assert z.p_value == pytest.approx(0.007420, abs=2e-5)
    assert ab.two_proportion_ztest(250, 1000, 200, 1000).z == pytest.approx(-z.z)
    with pytest.raises(ValueError, match="n_a=0"):
        ab.two_proportion_ztest(0, 0, 1, 10)


def _arm(n, signal, rng):
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))


def test_bootstrap_ci_contains_the_true_auc_difference():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    # The true AUCs, from a very large sample of each score distribution.
    ya, pa = _arm(200_000, 0.5, rng)
    yb, pb = _arm(200_000, 1.0, rng)
    true = roc_auc_score(yb, pb) - roc_auc_score(ya, pa)
    ya, pa = _arm(1500, 0.5, rng)
    yb, pb = _arm(1500, 1.0, rng)
    diff, low, high = ab.bootstrap_auc_diff(ya, pa, yb, pb, n_boot=400, seed=1)
    assert low < true < high and low < diff < high and low > 0


def _frame(n, champion_signal, challenger_signal, seed=0):
    rng = np.random.default_rng(seed)
    ya, pa = _arm(n, champion_signal, rng)
    yb, pb = _arm(n, challenger_signal, rng)
    return pd.DataFrame(
        {"arm": ["champion"] * n + ["challenger"] * n, "label": np.r_[ya, yb], "probability": np.r_[pa, pb]}
    )


def test_recommendations():
    better = ab.analyse(_frame(3000, 0.3, 1.0), n_boot=200)
    assert better["recommendation"] == "promote", better["reason"]
    assert better["arms"]["challenger"]["roc_auc"] > better["arms"]["champion"]["roc_auc"]
    assert better["auc_diff"]["low"] > 0
    worse = ab.analyse(_frame(3000, 1.0, 0.3), n_boot=200)
    assert worse["recommendation"] == "keep", worse["reason"]
    same = ab.analyse(_frame(3000, 0.5, 0.5, seed=3), n_boot=200)
    assert same["recommendation"] == "continue", same["reason"]
    few = ab.analyse(_frame(50, 0.3, 1.0), n_boot=200)
    assert few["recommendation"] == "continue" and "not enough data" in few["reason"]
    with pytest.raises(ValueError, match="label"):
        ab.analyse(pd.DataFrame({"arm": [], "probability": []}))
