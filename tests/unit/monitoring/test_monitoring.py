"""Monitoring's pure functions on synthetic data: PSI, KS / chi-square, the degradation window, GMM anomalies, alerts."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from pipelines.lake import Lake
from pipelines.monitoring import alerts, anomaly, drift, performance


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift(rng):
    ref = rng.normal(size=5000)
    assert drift.psi(ref, rng.normal(size=5000)) < 0.02
    assert 0.1 < drift.psi(ref, rng.normal(0.5, 1, 5000)) < 0.5
    assert drift.psi(ref, rng.normal(2, 1, 5000)) > 1.0
    assert drift.psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_psi_hand_computed_categorical_with_unseen_and_missing():
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 25 + ["b"] * 25 + ["z"] * 25 + [None] * 25
    # bins a, b, other, missing: ref (.5, .5, 0 -> 1e-4, 0 -> 1e-4), cur (.25, .25, .25, .25)
    expected = 2 * (0.25 - 0.5) * np.log(0.25 / 0.5) + 2 * (0.25 - 1e-4) * np.log(0.25 / 1e-4)
    assert drift.psi(pd.Series(ref), pd.Series(cur)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="rows on both sides"):
        drift.psi([], [1.0])


def test_numeric_bins_are_reference_quantiles():
    edges = drift.numeric_edges(np.arange(100), bins=4)
    assert edges.tolist() == [24, 49, 74]
    assert drift.numeric_edges([1, 1, 1, 2], bins=10).tolist() == [1, 2]  # duplicate edges merged


def test_ks_and_chi_square(rng):
    _, p_same = drift.ks_test(rng.normal(size=2000), rng.normal(size=2000))
    _, p_shift = drift.ks_test(rng.normal(size=2000), rng.normal(0.3, 1, 2000))
    assert p_same > 0.01 and p_shift < 1e-6
    a = rng.choice(["x", "y", "z"], 3000, p=[0.5, 0.3, 0.2])
    _, p_same = drift.chi_square_test(a, rng.choice(["x", "y", "z"], 3000, p=[0.5, 0.3, 0.2]))
    _, p_shift = drift.chi_square_test(a, rng.choice(["x", "y", "z"], 3000, p=[0.2, 0.3, 0.5]))
    assert p_same > 0.01 and p_shift < 1e-6


def test_feature_drift_table(rng):
    ref = pd.DataFrame({"num": rng.normal(size=3000), "cat": rng.choice(["a", "b"], 3000)})
    cur = pd.DataFrame({"num": rng.normal(1.5, 1, 1000), "cat": rng.choice(["a", "b"], 1000)})
    table = drift.feature_drift(ref, cur, psi_threshold=0.2).set_index("feature")
    assert table.loc["num", "drifted"] and table.loc["num", "test"] == "ks" and table.loc["num", "significant"]
    assert not table.loc["cat", "drifted"] and table.loc["cat", "test"] == "chi2"
    with pytest.raises(ValueError, match="missing"):
        drift.feature_drift(ref, cur, ["num", "nope"])


def _batches(aucs_signal: list[float], rng, n: int = 400) -> pd.DataFrame:
    frames = []
    for i, signal in enumerate(aucs_signal):
        y = rng.integers(0, 2, n)
        p = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
        frames.append(pd.DataFrame({"batch": f"{i:03d}", "label": y, "_probability": p}))
    return pd.concat(frames, ignore_index=True)


def test_degradation_window(rng):
    steady = performance.batch_metrics(_batches([1.0] * 20, rng))
    assert not performance.degradation(steady, window=10, max_drop=0.05)["degraded"]
    worse = performance.batch_metrics(_batches([1.0] * 10 + [0.3] * 10, rng))
    verdict = performance.degradation(worse, window=10, max_drop=0.05)
    assert verdict["degraded"] and verdict["drop"] > 0.05 and "down" in verdict["reason"]
    assert performance.degradation(worse, window=10, max_drop=0.5)["degraded"] is False
    short = performance.degradation(worse.head(15), window=10)
    assert not short["degraded"] and "need 20" in short["reason"]
    # Only the latest 2 windows count: an old bad stretch does not alert.
    recovered = performance.batch_metrics(_batches([0.3] * 5 + [1.0] * 20, rng))
    assert not performance.degradation(recovered, window=10)["degraded"]


def test_batches_by_date_or_by_rows():
    ts = pd.Series(pd.to_datetime(["2026-01-02 10:00", "2026-01-01 09:00", "2026-01-02 11:00"], utc=True))
    frame = pd.DataFrame({"_ts": ts})
    assert performance.batches(frame).tolist() == ["2026-01-02", "2026-01-01", "2026-01-02"]
    assert performance.batches(frame, batch_rows=2).tolist() == ["000000", "000000", "000001"]


def test_gmm_anomaly_scores_outliers_higher(rng):
    ref = pd.DataFrame(
        {
            "a": np.r_[rng.normal(0, 1, 1000), rng.normal(6, 1, 1000)],
            "b": rng.normal(size=2000),
            "c": rng.choice(["x", "y"], 2000),
        }
    )
    model = anomaly.fit(ref, max_components=4)
    assert model.n_components >= 2 and min(model.bics, key=model.bics.get) == model.n_components
    normal = ref.sample(200, random_state=1)
    outliers = pd.DataFrame({"a": rng.normal(3, 0.2, 200), "b": rng.normal(8, 1, 200), "c": ["zz"] * 200})
    assert model.score(outliers).min() > np.median(model.score(normal))
    assert anomaly.batch_anomaly(model, outliers)["anomalous"]
    assert not anomaly.batch_anomaly(model, normal, max_share=0.05)["anomalous"]


def test_alerts_are_stored_and_sent(tmp_path, caplog):
    lake = Lake(tmp_path.as_uri())
    found = [alerts.alert("2026-01-05", "m", alerts.FEATURE_DRIFT, "age", 0.4, 0.2, "age: PSI 0.4 > 0.2")]
    rel = alerts.store(lake, "m", "2026-01-05", found)
    assert lake.read_parquet(rel).to_pandas()["subject"].tolist() == ["age"]
    alerts.store(lake, "m", "2026-01-06", [])  # an empty day still gets its (empty) file
    with caplog.at_level(logging.WARNING):
        assert alerts.notify(found) == "logged 1 alert(s)"
    assert "age: PSI 0.4 > 0.2" in caplog.text
    with pytest.raises(ValueError, match="webhook_url"):
        alerts.notify(found, "webhook", "")
    with pytest.raises(ValueError, match="unknown monitoring.notifier"):
        alerts.notify(found, "pager")


def test_webhook_notifier_posts_the_alerts_and_survives_a_failure(monkeypatch):
    import httpx

    sent = []

    def fake_post(url, json, timeout):
        sent.append((url, json))
        return httpx.Response(200, request=httpx.Request("POST", url))

    found = [alerts.alert("2026-01-05", "m", alerts.DEGRADATION, "roc_auc", 0.08, 0.05, "down 8%")]
    monkeypatch.setattr(httpx, "post", fake_post)
    assert alerts.notify(found, "webhook", "http://127.0.0.1:9/hook") == "posted 1 alert(s) to the webhook"
    assert sent[0][0] == "http://127.0.0.1:9/hook" and sent[0][1]["alerts"][0]["kind"] == "degradation"

    def failing_post(url, json, timeout):
        return httpx.Response(500, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", failing_post)
    assert alerts.notify(found, "webhook", "http://127.0.0.1:9/hook").startswith("webhook failed")
