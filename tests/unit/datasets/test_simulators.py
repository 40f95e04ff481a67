"""The sales simulator: deterministic, documented drivers that cause sales, a plan, feed glitches."""

import numpy as np
import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.datasets import DatasetUnavailable, dataset_files, load_dataset
from pipelines.datasets.simulators import KNOWN_AHEAD, OBSERVED_ONLY, simulate, simulate_sales


def test_same_seed_same_rows_other_seed_other_rows():
    a, b, c = simulate_sales(seed=1, days=200), simulate_sales(seed=1, days=200), simulate_sales(seed=2, days=200)
    pd.testing.assert_frame_equal(a, b)
    assert not a["sales"].equals(c["sales"])


def test_history_plan_and_glitches():
    frame = simulate_sales(seed=3, days=400, plan_days=30, glitches=4)
    history, plan, glitches = frame.iloc[:400], frame.iloc[400:430], frame.iloc[430:]
    assert len(frame) == 434 and history["date"].is_unique
    assert pd.to_datetime(plan["date"]).min() == pd.to_datetime(history["date"]).max() + pd.Timedelta(days=1)
    assert plan[list(KNOWN_AHEAD)].notna().all().all()  # the plan has its drivers ...
    assert plan[[*OBSERVED_ONLY, "sales"]].isna().all().all()  # ... and no outcomes yet
    assert history.notna().all().all() and (history["sales"] > 0).all()
    assert glitches["date"].isin(history["date"]).all()  # re-sends of days already there
    assert (glitches["ctr"] > 1).sum() + (glitches["ad_spend"] < 0).sum() == 2


def test_drivers_move_sales_the_documented_way():
    f = simulate_sales(seed=0, days=1461, plan_days=0, glitches=0)
    f["date"] = pd.to_datetime(f["date"])
    sales = f["sales"].astype(float)
    assert sales[f["promotion"] == 1].mean() > 1.2 * sales[f["promotion"] == 0].mean()
    weekend = f["date"].dt.dayofweek >= 5
    assert sales[weekend].mean() > sales[~weekend].mean()
    yearly = sales.groupby(f["date"].dt.year).mean()
    assert (yearly.diff().dropna() > 0).all()  # trend: every year sells more
    assert np.corrcoef(f["conversions"].astype(float), sales)[0, 1] > 0.7
    assert f["ctr"].between(0, 1).all() and f["cvr"].between(0, 1).all()
    assert (f["clicks"] <= f["impressions"]).all() and (f["conversions"] <= f["clicks"]).all()


def test_unknown_options_and_simulators_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"no option\(s\) \['years'\]"):
        simulate("sales", 1, {"years": 3})
    settings = load_settings({"MLP_DATASETS__SALES__SOURCE": "sim:nope", "MLP_CACHE_DIR": str(tmp_path)})
    with pytest.raises(DatasetUnavailable, match="unknown simulator 'nope'.*MLP_DATASETS__SALES__SOURCE"):
        dataset_files("sales", settings)


def test_sim_source_is_cached_per_seed_and_options(tmp_path):
    env = {"MLP_CACHE_DIR": str(tmp_path), "MLP_DATASETS__SALES__OPTIONS__DAYS": "60"}
    files = dataset_files("sales", load_settings(env))
    assert files[0].parent == tmp_path / "datasets" / "sim" and files[0].exists()
    assert dataset_files("sales", load_settings(env)) == files
    assert dataset_files("sales", load_settings({**env, "MLP_SEED": "5"})) != files
    frame = load_dataset("sales", load_settings(env))
    assert frame["sales"].notna().sum() == 60 + 6  # 60 days of history and the 6 glitch re-sends
