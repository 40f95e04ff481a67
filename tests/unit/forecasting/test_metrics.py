"""Metrics against hand-computed values, the aggregation levels and MASE's in-sample seasonal scale."""

import numpy as np
import pytest

from pipelines.forecasting import metrics


def test_point_errors_by_hand():
    a, f = np.array([10.0, 20.0, 0.0, 40.0]), np.array([12.0, 18.0, 0.0, 30.0])
    assert metrics.mae(a, f) == pytest.approx((2 + 2 + 0 + 10) / 4)
    assert metrics.rmse(a, f) == pytest.approx(np.sqrt((4 + 4 + 0 + 100) / 4))
    assert metrics.mape(a, f) == pytest.approx((0.2 + 0.1 + 0.25) / 3 * 100)  # the zero actual is left out
    assert metrics.smape(a, f) == pytest.approx((4 / 22 + 4 / 38 + 0 + 20 / 70) / 4 * 100)


def test_mase_uses_the_in_sample_seasonal_naive_error():
    insample = np.array([1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9], float)  # lag-7 differences are all 2
    assert metrics.seasonal_scale(insample, 7) == pytest.approx(2.0)
    assert metrics.mase([10, 10], [11, 13], insample, 7) == pytest.approx(2.0 / 2.0)
    assert metrics.seasonal_scale([5, 6], 7) == pytest.approx(1.0)  # too short for the season: m = 1
    assert np.isnan(metrics.seasonal_scale(np.full(20, 3.0), 7))  # constant: MASE undefined


def test_blocks_from_the_origin_and_aligned_to_its_end():
    assert metrics.blocks(np.arange(10), 3).tolist() == [3, 12, 21]
    assert metrics.blocks(np.arange(10), 3, align_end=True).tolist() == [6, 15, 24]


def test_score_has_every_metric_per_level_and_skips_levels_the_horizon_cannot_fill():
    rng = np.random.default_rng(0)
    train = 100 + rng.normal(0, 5, 400)
    folds = [(train, 100 + rng.normal(0, 5, 14), np.full(14, 100.0)) for _ in range(3)]
    scores = metrics.score(folds)
    assert {f"{m}_{lvl}" for m in metrics.METRICS for lvl in ("daily", "weekly")} == set(scores)
    assert all(np.isfinite(v) for v in scores.values())
    perfect = metrics.score([(train, np.arange(28.0), np.arange(28.0))])
    assert perfect["mase_monthly"] == 0 and perfect["mae_daily"] == 0 and perfect["smape_weekly"] == 0
