"""Origins, scalers fitted on the training part only, and windows that never show the target they predict."""

import numpy as np
import pytest

from pipelines.forecasting.windows import Scaler, WindowSpec, calendar, origins
from tests.unit.forecasting.helpers import SPEC, history


def test_origins_roll_forward_and_the_last_fold_ends_at_the_last_day():
    assert origins(100, 10, 3, 10) == [69, 79, 89]
    assert origins(100, 10, 1, 10) == [89]


def test_scaler_is_fitted_once_and_constant_columns_keep_a_unit_scale():
    s = Scaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert s.mean.tolist() == [2.0, 5.0] and s.scale.tolist() == [1.0, 1.0]
    assert s.transform(np.array([[5.0, 5.0]])).tolist() == [[3.0, 0.0]]


def test_calendar_is_bounded():
    cal = calendar(history(30).index)
    assert cal.shape == (30, 11) and np.abs(cal).max() <= 1 and (cal[:, :7].sum(axis=1) == 1).all()


def test_scalers_come_from_the_training_part_only():
    h = history(160)
    on_train, on_all = WindowSpec.fit(h.iloc[:80], SPEC, 14, 7), WindowSpec.fit(h, SPEC, 14, 7)
    assert on_train.target_scale != pytest.approx(on_all.target_scale)
    # Later windows are read with the spreads fitted on the training part, never refitted on them.
    x, z, level = on_train.windows(h, np.array([120]))
    expected = (h["sales"].iloc[134:141].to_numpy() / h["sales"].iloc[120:134].mean() - 1) / on_train.target_scale
    assert np.allclose(z[0], expected, atol=1e-5)
    spend = h["spend"].iloc[120:141].to_numpy()
    assert np.allclose(x[0, :, 4], (spend / spend[:14].mean() - 1) / on_train.cov_scale[0], atol=1e-5)


def test_windows_hide_the_future_target_and_past_only_covariates():
    h = history(120)
    ws = WindowSpec.fit(h, SPEC, 14, 7)
    x, z, level = ws.windows(h, np.arange(5))
    assert x.shape == (5, 21, ws.n_features) and z.shape == (5, 7)
    assert (x[:, 14:, 0] == 0).all() and (x[:, 14:, 1] == 1).all() and (x[:, :14, 1] == 0).all()
    assert (x[:, 14:, 4 + len(SPEC.known)] == 0).all()  # clicks of future days are unknown
    assert (x[:, :, 3] == 0).all()  # 120 days: no window has last year's sales yet
    # Changing the target of the future days changes the targets, never the inputs.
    changed = h.copy()
    changed.iloc[14:21, 0] *= 10
    x2, z2, _ = ws.windows(changed, np.array([0]))
    assert np.array_equal(x2[0], x[0]) and not np.allclose(z2[0], z[0])
    assert level[0] == pytest.approx(h["sales"].iloc[:14].mean())
