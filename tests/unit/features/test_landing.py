import pandas as pd
import pytest

from pipelines.features.landing import EmptyBatchError, demo_day, landing_files, simulate_feed
from tests.unit.features.helpers import land_csv


def test_demo_days_cover_the_configured_range_only():
    assert demo_day("2026-01-01", "2026-01-01", 4) == 0
    assert demo_day("2026-01-04", "2026-01-01", 4) == 3
    assert demo_day("2026-01-05", "2026-01-01", 4) is None
    assert demo_day("2025-12-31", "2026-01-01", 4) is None


def test_feed_splits_rows_across_days_without_overlap(lake):
    frame = pd.DataFrame({"a": range(1000), "b": ["x"] * 1000})
    seen = []
    for i in range(4):
        ds = f"2026-01-0{i + 1}"
        files = simulate_feed(lake, frame, "t", ds, "2026-01-01", 4, 3)
        assert len(files) == 3
        for f in files:
            seen.append(pd.read_csv(lake.path(f)))
    rows = pd.concat(seen)
    assert len(rows) == 1000 and rows["a"].is_unique
    assert simulate_feed(lake, frame, "t", "2026-01-09", "2026-01-01", 4, 3) == []


def test_exact_duplicates_land_on_the_same_day(lake):
    frame = pd.DataFrame({"a": [1, 1, 2, 3, 4, 5, 6, 7]})
    days = [
        sum(
            (pd.read_csv(lake.path(f))["a"] == 1).sum()
            for f in simulate_feed(lake, frame, "t", f"2026-01-0{i + 1}", "2026-01-01", 3, 1)
        )
        for i in range(3)
    ]
    assert sorted(days) == [0, 0, 2]


def test_user_files_are_picked_up_and_nothing_landed_is_a_clear_error(lake):
    with pytest.raises(EmptyBatchError, match="drop CSV or Parquet files into"):
        landing_files(lake, "people", "2026-01-01")
    land_csv(lake, "a\n1\n", "mine.csv")
    land_csv(lake, "ignored", "notes.txt")
    assert landing_files(lake, "people", "2026-01-01") == ["landing/people/ds=2026-01-01/mine.csv"]
