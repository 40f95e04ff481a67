"""Landing a user's file: whole for one date, or split by its own time column (``ingest --split-by-time``),
values as they came, a re-run replacing what each date held and never adding a copy."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.config import load_settings
from pipelines.constants import GOLD, LANDING
from pipelines.datasets.land import TimeSplitError, land_by_time, land_source, to_dates
from pipelines.lake import Lake

DAY = 86_400
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_USER_DIR", str(tmp_path / "user"))
    monkeypatch.setenv("MLP_LAKE_ROOT", str(tmp_path / "lake"))
    return tmp_path


def ratings_csv(path, n=60) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "userId": [f"{i % 7:03d}" for i in range(n)],  # leading zeros: must land as they came
            "movieId": [i % 11 + 1 for i in range(n)],
            "rating": [1 + i % 5 for i in range(n)],
            "timestamp": [T0 + (i % 3) * DAY + i for i in range(n)],
            "title": [f"Film {i % 11 + 1}" if i % 13 else "" for i in range(n)],  # blanks kept blank
        }
    )
    frame.to_csv(path, index=False)
    return frame


def landed_text(lake: Lake, rel: str) -> pd.DataFrame:
    import io

    return pd.read_csv(io.BytesIO(lake.read_bytes(rel)), dtype=str, keep_default_na=False)


def test_split_by_time_lands_one_date_per_day_as_it_came_and_reruns_replace(env, capsys):
    source = env / "ratings.csv"
    frame = ratings_csv(source)
    assert main(["dataset", "add", "r", "--source", str(source), "--kind", "ratings"]) == 0
    settings = load_settings()
    landed = land_by_time("r", settings)
    assert list(landed) == ["2023-11-14", "2023-11-15", "2023-11-16"]
    lake = Lake(settings.lake_root)
    parts = [landed_text(lake, paths[0]) for paths in landed.values()]
    assert sum(map(len, parts)) == len(frame)
    assert parts[0]["userId"].iloc[0] == "000" and "" in set(pd.concat(parts)["title"])
    again = land_by_time("r", settings)  # same dates, same files: a replacement, not a second copy
    assert again == landed and all(len(lake.list_files(f"{LANDING}/r/ds={d}")) == 1 for d in landed)

    capsys.readouterr()
    assert main(["ingest", "r", "--split-by-time"]) == 0
    out = capsys.readouterr().out
    assert "Landed 3 date(s) by day, 2023-11-14 .. 2023-11-16" in out and out.count("quarantined 0") == 3
    assert sum(lake.read_manifest(GOLD, "r", d)["rows"] for d in landed) == len(frame)


def test_the_period_and_the_time_formats():
    seconds = pd.Series([str(T0), str(T0 + 40 * DAY)])
    assert list(to_dates(seconds, "t", "f")) == ["2023-11-14", "2023-12-24"]
    assert list(to_dates(seconds, "t", "f", "week")) == ["2023-11-13", "2023-12-18"]  # Mondays
    assert list(to_dates(seconds, "t", "f", "month")) == ["2023-11-01", "2023-12-01"]
    millis = pd.Series([str(T0 * 1000)])
    assert list(to_dates(millis, "t", "f")) == ["2023-11-14"]
    text = pd.Series(["2024-02-29", "2024-03-01 23:59:00"])
    assert list(to_dates(text, "t", "f")) == ["2024-02-29", "2024-03-01"]


def test_unreadable_times_fail_naming_the_column_and_the_row(env):
    source = env / "ratings.csv"
    ratings_csv(source)
    assert main(["dataset", "add", "r", "--source", str(source), "--kind", "ratings"]) == 0
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    frame.loc[4, "timestamp"] = "soon"
    frame.to_csv(source, index=False)
    settings = load_settings()
    with pytest.raises(TimeSplitError, match=r"1 row\(s\) have no readable time in column 'timestamp' .*row 5: 'soon'"):
        land_by_time("r", settings)
    with pytest.raises(TimeSplitError, match="no column 'when'"):
        land_by_time("r", settings, "when")
    assert not Lake(settings.lake_root).list_partitions(LANDING, "r")  # nothing half-landed


def test_a_dataset_without_a_time_column_says_how_to_name_one(env, capsys):
    source = env / "t.csv"
    pd.DataFrame({"x": range(30), "label": ["a", "b", "c"] * 10}).to_csv(source, index=False)
    assert main(["dataset", "add", "t", "--source", str(source)]) == 0
    capsys.readouterr()
    assert main(["ingest", "t", "--split-by-time"]) == 2
    assert "give one: --split-by-time COLUMN" in capsys.readouterr().err
    assert main(["ingest", "t", "--split-by-time", "--ds", "2026-01-01"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_land_source_copies_the_file_whole(env):
    source = env / "ratings.csv"
    ratings_csv(source)
    assert main(["dataset", "add", "r", "--source", str(source), "--kind", "ratings"]) == 0
    paths = land_source("r", "2026-01-02")  # settings loaded when not given (the features DAG's land task)
    assert paths == ["landing/r/ds=2026-01-02/ratings.csv"]
    assert Lake(load_settings().lake_root).read_bytes(paths[0]) == source.read_bytes()


def test_the_features_dag_lands_a_user_file_whole_and_never_cuts_it_into_demo_dates(env):
    from pipelines.datasets.land import land_for_run
    from pipelines.errors import DataError

    source = env / "ratings.csv"
    ratings_csv(source)
    assert main(["dataset", "add", "r", "--source", str(source), "--kind", "ratings"]) == 0
    demo_day = load_settings().demo.start  # a date the demo feed would write a slice for
    with pytest.raises(DataError, match="no landing files"):
        land_for_run("r", demo_day, simulate_feed=True, land_source_file=False)
    files = land_for_run("r", demo_day, simulate_feed=True, land_source_file=True)
    assert [f.rsplit("/", 1)[-1] for f in files] == ["ratings.csv"]
