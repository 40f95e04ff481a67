import pyarrow as pa
import pytest

from pipelines.constants import REASON, ROW_ID, SILVER
from pipelines.features import bronze
from pipelines.features.contracts import ContractError
from pipelines.features.landing import EmptyBatchError
from pipelines.features.silver import QUARANTINE_SILVER, build_silver
from tests.unit.features.helpers import DS, land_csv


def _bronze(lake, text):
    src = land_csv(lake, text)
    bronze.commit_bronze(lake, "people", DS, [bronze.ingest_file(lake, "people", DS, src, "r")])


def _silver(lake, contract, text, max_fraction=1.0):
    _bronze(lake, text)
    return build_silver(lake, contract, "people", DS, max_fraction)


def test_rows_are_typed_normalised_and_reconciled(lake, contract):
    m = _silver(lake, contract, "Age,City,Score,Grade\n 30 , Paris ,1.5,a\n40,?,2,B\n")
    assert (m["rows_in"], m["rows"], m["rows_quarantined"]) == (2, 2, 0)
    t = lake.read_partition(SILVER, "people", DS).to_pydict()
    assert t["age"] == [30, 40]
    assert t["city"] == ["Paris", None]  # whitespace trimmed, '?' is a missing value
    assert t["score"] == [1.5, 2.0]
    assert t["grade"] == ["A", "B"]  # mapped to the canonical spelling
    assert len(set(t[ROW_ID])) == 2


def test_bad_values_go_to_quarantine_with_a_reason_naming_column_and_value(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade\nabc,x,1,A\n200,x,1,A\n5,x,-1,A\n6,x,1,Z\n,x,1,A\n7,x,1,A\n")
    assert (m["rows_in"], m["rows"], m["rows_quarantined"]) == (6, 1, 5)
    q = lake.read_partition(QUARANTINE_SILVER, "people", DS)
    reasons = q.column(REASON).to_pylist()
    assert reasons == [
        "age: not an integer ('abc')",
        "age: above maximum 120 ('200')",
        "score: below minimum 0 ('-1')",
        "grade: not an allowed value ('Z')",
        "age: missing value",
    ]
    assert q.column("age").to_pylist()[:2] == ["abc", "200"]  # raw values kept
    assert m["reasons"]["age: not an integer"] == 1


def test_duplicates_are_quarantined_not_dropped(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade\n1,x,1,A\n1, x ,1.0,a\n2,x,1,A\n")
    assert (m["rows"], m["rows_quarantined"], m["duplicates"]) == (2, 1, 1)
    q = lake.read_partition(QUARANTINE_SILVER, "people", DS)
    assert q.column(REASON).to_pylist()[0].startswith("duplicate")


def test_missing_column_fails_naming_it(lake, contract):
    with pytest.raises(ContractError, match=r"\['score'\] missing"):
        _silver(lake, contract, "age,city,grade\n1,x,A\n")


def test_extra_columns_are_dropped_and_reported(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade,note\n1,x,1,A,hello\n")
    assert m["extra_columns_dropped"] == ["note"]
    assert "note" not in lake.read_partition(SILVER, "people", DS).column_names


def test_empty_batch_is_refused_clearly(lake, contract):
    with pytest.raises(EmptyBatchError, match="no rows"):
        _silver(lake, contract, "age,city,score,grade\n")


def test_too_many_bad_rows_fail_the_batch_but_keep_the_quarantine(lake, contract):
    with pytest.raises(ContractError, match="max_quarantine_fraction"):
        _silver(lake, contract, "age,city,score,grade\nx,x,1,A\ny,x,1,A\n1,x,1,A\n", max_fraction=0.5)
    assert lake.read_partition(QUARANTINE_SILVER, "people", DS).num_rows == 2
    assert SILVER not in [p.split("/")[0] for p in lake.list_files(f"{SILVER}/people")]


def test_whole_column_of_wrong_type_is_all_quarantined(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade\n1,x,high,A\n2,x,low,A\n")
    assert m["rows"] == 0 and m["reasons"] == {"score: not a number": 2}


def test_corrupt_bronze_parquet_surfaces_a_clear_error(lake, contract):
    _bronze(lake, "age,city,score,grade\n1,x,1,A\n")
    part = lake.list_files(lake.partition("bronze", "people", DS), [".parquet"])[0]
    lake.write_bytes(part, b"garbage")
    with pytest.raises((pa.ArrowInvalid, OSError)):
        build_silver(lake, contract, "people", DS, 1.0)
