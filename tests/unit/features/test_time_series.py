"""Time series through the feature layers: date columns, numeric labels, time-ordered gold, the snapshot feed."""

import datetime

import pandas as pd
import pyarrow as pa
import pytest

from pipelines.config import SplitSettings
from pipelines.constants import GOLD, LABEL, SPLIT
from pipelines.errors import DataError
from pipelines.features import bronze, publish
from pipelines.features.contracts import ContractError, apply_contract, parse_contract
from pipelines.features.gold import build_gold
from pipelines.features.landing import snapshot_feed
from pipelines.features.silver import QUARANTINE_SILVER, build_silver
from tests.unit.features.helpers import DS, land_csv

SERIES = {
    "name": "daily",
    "key": ["day"],
    "columns": {
        "Day": {"type": "date"},
        "spend": {"type": "float", "min": 0},
        "sales": {"type": "float", "min": 0, "nullable": True},
    },
    "gold": {"label": {"column": "sales"}, "time": "Day"},
}


def _gold(lake, contract, text):
    src = land_csv(lake, text, dataset="daily")
    publish.clear_staging(lake, "daily", DS)
    bronze.commit_bronze(lake, "daily", DS, [bronze.ingest_file(lake, "daily", DS, src, "b")])
    build_silver(lake, contract, "daily", DS, 1.0)
    return build_gold(lake, contract, "daily", DS, SplitSettings(0.5, 0.25, 0.25), seed=1)


def test_date_type_parses_text_and_names_bad_dates():
    contract = parse_contract(SERIES)
    table = pa.table(
        {
            "Day": ["2024-01-02", "2023-02-30", "02/01/2024", "", "2024-01-03"],
            "spend": ["1", "2", "3", "4", "5"],
            "sales": ["1", "", "3", "4", "5"],
        }
    )
    result = apply_contract(contract, table)
    assert result.typed.column("day").type == pa.date32()
    assert result.typed.column("day").to_pylist()[0] == datetime.date(2024, 1, 2)
    assert result.reason.to_pylist() == [
        None,
        "day: not a date (YYYY-MM-DD) ('2023-02-30')",  # no silent roll-over to March 2
        "day: not a date (YYYY-MM-DD) ('02/01/2024')",
        "day: missing value",
        None,
    ]


def test_date_type_takes_parquet_timestamps_and_dates():
    contract = parse_contract(SERIES)
    stamps = pa.array(pd.to_datetime(["2024-01-02 13:00", "2024-01-03 00:00"]))
    for values in (stamps, pa.array([datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)])):
        result = apply_contract(contract, pa.table({"Day": values, "spend": [1.0, 2.0], "sales": [1.0, None]}))
        assert result.typed.column("day").to_pylist() == [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)]
        assert result.reason.null_count == 2


@pytest.mark.parametrize(
    "gold, match",
    [
        ({"label": {"column": "sales"}, "time": "spend"}, "must have type date"),
        ({"label": {"column": "sales"}, "time": "nope"}, "'nope' is used as key/label/time/drop"),
    ],
)
def test_bad_time_settings_are_refused(gold, match):
    with pytest.raises(ContractError, match=match):
        parse_contract({**SERIES, "gold": gold})


def test_a_text_label_without_positive_is_refused():
    spec = {"columns": {"day": {"type": "date"}, "y": {"type": "string"}}, "gold": {"label": {"column": "y"}}}
    with pytest.raises(ContractError, match="no `positive` class, so it must be numeric"):
        parse_contract(spec)


def test_time_series_gold_is_ordered_and_split_in_time(lake):
    contract = parse_contract(SERIES)
    days = pd.date_range("2024-01-01", periods=10, freq="D").strftime("%Y-%m-%d")
    rows = [f"{d},{i},{i * 10}" for i, d in enumerate(days[:8])] + [f"{d},{i + 8}," for i, d in enumerate(days[8:])]
    rows = rows[::-1] + [rows[0]]  # newest first, and one repeated day
    manifest = _gold(lake, contract, "Day,spend,sales\n" + "\n".join(rows) + "\n")
    gold = lake.read_partition(GOLD, "daily", DS).to_pandas()
    assert list(gold["day"].astype(str)) == list(days)  # sorted by time, the repeat quarantined
    assert gold[LABEL].tolist()[:8] == [i * 10.0 for i in range(8)]  # numeric label kept as its value
    assert gold[LABEL].isna().tolist() == [False] * 8 + [True] * 2
    # The oldest half of the labelled rows train, then valid, then test; the plan rows have no split.
    assert gold[SPLIT].tolist()[:8] == ["train"] * 4 + ["valid"] * 2 + ["test"] * 2
    assert gold[SPLIT].isna().tolist()[8:] == [True, True]
    assert manifest["time"] == "day" and manifest["split_by"] == "time" and manifest["label_kind"] == "numeric"
    assert manifest["time_range"] == ["2024-01-01", "2024-01-10"] and manifest["unlabelled_rows"] == 2
    assert manifest["features"] == ["spend"] and manifest["numeric"] == ["spend"]
    assert "positives" not in manifest["splits"]["train"]
    quarantine = lake.read_partition(QUARANTINE_SILVER, "daily", DS).to_pandas()
    assert quarantine["_reason"].str.startswith("duplicate: same day").all()


def test_snapshot_feed_lands_what_was_known_on_the_date(lake):
    frame = pd.DataFrame(
        {
            "Day": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
            "spend": [1, 2, 3, 4, 5],
            "Sales": [10.0, 20.0, 30.0, None, None],  # the last two days are a plan
        }
    )
    written = snapshot_feed(lake, frame, "daily", "2024-01-02", "day", "sales")
    landed = pd.read_csv(lake.path(written[0]))
    # Up to the date, plus later rows with no label yet; the outcome of Jan 3 was not known on Jan 2.
    assert landed["Day"].tolist() == ["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"]
    assert snapshot_feed(lake, frame, "daily", "2023-12-31", "day", "sales") == []


def test_snapshot_feed_refuses_a_time_column_it_cannot_read(lake):
    frame = pd.DataFrame({"day": ["01/02/2024", "02/02/2024"], "sales": [1.0, 2.0]})
    with pytest.raises(DataError, match="time column 'day' holds no ISO dates.*'01/02/2024'"):
        snapshot_feed(lake, frame, "daily", "2024-03-01", "day", "sales")
