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
    t = lake.read_partition(SILVER, "people", DS, staged=True).to_pydict()
    assert t["age"] == [30, 40]
    assert t["city"] == ["Paris", None]  # whitespace trimmed, '?' is a missing value
    assert t["score"] == [1.5, 2.0]
    assert t["grade"] == ["A", "B"]  # mapped to the canonical spelling
    assert len(set(t[ROW_ID])) == 2


def test_bad_values_go_to_quarantine_with_a_reason_naming_column_and_value(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade\nabc,x,1,A\n200,x,1,A\n5,x,-1,A\n6,x,1,Z\n,x,1,A\n7,x,1,A\n")
    assert (m["rows_in"], m["rows"], m["rows_quarantined"]) == (6, 1, 5)
    q = lake.read_partition(QUARANTINE_SILVER, "people", DS, staged=True)
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
    q = lake.read_partition(QUARANTINE_SILVER, "people", DS, staged=True)
    assert q.column(REASON).to_pylist()[0].startswith("duplicate")


def test_missing_column_fails_naming_it(lake, contract):
    # Without a contract at ingest, silver is where the missing column shows: it names the file.
    with pytest.raises(ContractError, match=r"^landing/people/ds=2026-01-01/a.csv: column\(s\) \['score'\] .* missing"):
        _silver(lake, contract, "age,city,grade\n1,x,A\n")


def test_extra_columns_are_dropped_and_reported(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade,note\n1,x,1,A,hello\n")
    assert m["extra_columns_dropped"] == ["note"]
    assert "note" not in lake.read_partition(SILVER, "people", DS, staged=True).column_names


def test_empty_batch_is_refused_clearly(lake, contract):
    with pytest.raises(EmptyBatchError, match="no rows"):
        _silver(lake, contract, "age,city,score,grade\n")


def test_too_many_bad_rows_fail_the_batch_but_keep_the_quarantine(lake, contract):
    with pytest.raises(ContractError, match="max_quarantine_fraction"):
        _silver(lake, contract, "age,city,score,grade\nx,x,1,A\ny,x,1,A\n1,x,1,A\n", max_fraction=0.5)
    assert lake.read_partition(QUARANTINE_SILVER, "people", DS, staged=True).num_rows == 2
    assert not lake.has_staged(SILVER, "people", DS) and not lake.exists(lake.partition(SILVER, "people", DS))


def test_whole_column_of_wrong_type_is_all_quarantined(lake, contract):
    m = _silver(lake, contract, "age,city,score,grade\n1,x,high,A\n2,x,low,A\n")
    assert m["rows"] == 0 and m["reasons"] == {"score: not a number": 2}


def test_corrupt_bronze_parquet_surfaces_a_clear_error(lake, contract):
    _bronze(lake, "age,city,score,grade\n1,x,1,A\n")
    part = lake.list_files(lake.staging("bronze", "people", DS), [".parquet"])[0]
    lake.write_bytes(part, b"garbage")
    with pytest.raises((pa.ArrowInvalid, OSError)):
        build_silver(lake, contract, "people", DS, 1.0)


HEADER = "age,city,score,grade\n"


def _commit(lake, contract, files: dict[str, bytes]):
    parts = []
    for name, data in files.items():
        src = f"landing/people/ds={DS}/{name}"
        lake.write_bytes(src, data)
        parts.append(bronze.ingest_file(lake, "people", DS, src, "r", contract))
    return bronze.commit_bronze(lake, "people", DS, parts)


def test_rows_quarantined_in_bronze_count_against_the_fraction_and_each_file_is_named(lake, contract):
    good = HEADER + "".join(f"{i},x,1,A\n" for i in range(10))
    mostly_malformed = HEADER + "".join(f"{i},x,1,A\n" for i in range(10, 20)) + "".join(f"{i},x\n" for i in range(90))
    _commit(lake, contract, {"good.csv": good.encode(), "bad.csv": mostly_malformed.encode()})
    # Silver itself sees 20 clean rows: only bronze's 90 malformed lines push the batch over.
    with pytest.raises(ContractError) as caught:
        build_silver(lake, contract, "people", DS, 0.5)
    message = str(caught.value)
    assert "90 of 110 rows landed (81.8%) were quarantined" in message
    assert f"landing/people/ds={DS}/bad.csv: 90 of 100 rows (90 malformed in bronze, 0 in silver)" in message
    assert "good.csv" not in message  # a file with nothing quarantined is not listed


def test_rows_of_a_file_refused_whole_count_against_the_fraction(lake, contract):
    good = HEADER + "".join(f"{i},x,1,A\n" for i in range(10))
    latin1 = (HEADER + "".join(f"{i},Zürich,1,A\n" for i in range(30))).encode("latin-1")
    _commit(lake, contract, {"good.csv": good.encode(), "latin1.csv": latin1})
    with pytest.raises(ContractError, match=r"30 of 40 rows landed .*latin1.csv: 30 of 30 rows \(refused whole"):
        build_silver(lake, contract, "people", DS, 0.5)
    m = build_silver(lake, contract, "people", DS, 0.8)
    assert (m["rows_in"], m["rows"], m["quarantine_fraction"]) == (10, 10, 0.75)


def test_a_batch_of_only_refused_files_says_which_and_why(lake, contract):
    _commit(lake, contract, {"no-header.csv": b"1,a,1,A\n"})
    with pytest.raises(
        EmptyBatchError, match=r"quarantined whole: landing/people/ds=2026-01-01/no-header.csv: no header line"
    ):
        build_silver(lake, contract, "people", DS, 1.0)
