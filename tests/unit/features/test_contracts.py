import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from pipelines.features.contracts import (
    ContractError,
    apply_contract,
    load_contract,
    parse_contract,
    snake_case,
)
from pipelines.features.rowids import row_ids


def test_snake_case():
    assert snake_case(" Educational-Num ") == "educational_num"
    assert snake_case("Review Text") == "review_text"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"columns": {}}, "at least one column"),
        ({"columns": {"a": {"type": "decimal"}}}, "type 'decimal'"),
        ({"columns": {"a": {"typo": 1}}}, "unknown rule"),
        ({"columns": {"a": {}}, "key": ["b"]}, "'b' is used as key"),
        ({"columns": {"a": {}}, "gold": {"label": {"column": "z"}}}, "'z' is used as key/label"),
    ],
)
def test_bad_contracts_name_the_problem(spec, message):
    with pytest.raises(ContractError, match=message):
        parse_contract(spec)


def test_unknown_contract_lists_known_ones():
    with pytest.raises(ContractError, match="known contracts: .*adult"):
        load_contract("nope")


def test_adult_contract_loads():
    c = load_contract("adult")
    assert c.label == "income" and c.positive == ">50K"
    assert "educational_num" in c.features and "income" not in c.features


def test_dictionary_and_plain_columns_type_the_same():
    c = parse_contract({"columns": {"a": {"type": "string"}, "n": {"type": "int"}}})
    plain = pa.table({"a": ["x", "y", "x"], "n": ["1", "2", "3"]})
    encoded = pa.table({"a": pa.array(["x", "y", "x"]).dictionary_encode(), "n": ["1", "2", "3"]})
    r1, r2 = apply_contract(c, plain), apply_contract(c, encoded)
    assert r1.typed.column("a").to_pylist() == r2.typed.column("a").to_pylist()
    assert (row_ids(r1.typed, ["a", "n"]) == row_ids(r2.typed, ["a", "n"])).all()


def test_row_ids_are_stable_across_processes():
    code = (
        "import pyarrow as pa; from pipelines.features.rowids import row_ids;"
        "print(list(row_ids(pa.table({'a': pa.array(['x', None]).dictionary_encode(), 'n': [1, 2]}), ['a', 'n'])))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(outs) == 1
    here = row_ids(pa.table({"a": pa.array(["x", None]).dictionary_encode(), "n": [1, 2]}), ["a", "n"])
    assert outs.pop().strip() == str([np.uint64(v) for v in here])


def test_null_and_value_differ_in_row_id():
    t = pa.table({"a": pa.array(["", None]).dictionary_encode()})
    ids = row_ids(t, ["a"])
    assert ids[0] != ids[1]


def test_camel_case_names_match_when_plain_snake_case_does_not():
    from pipelines.features.contracts import match_columns

    c = parse_contract({"columns": {"user_id": {"type": "int"}, "movieid": {"type": "int"}}})
    renamed, extra = match_columns(c, ["userId", "movieId", "Title"])
    assert renamed == {"user_id": "userId", "movieid": "movieId"} and extra == ["title"]  # movieid: snake_case first
    renamed, extra = match_columns(c, ["userId", "user_id", "movieId"])
    assert renamed["user_id"] == "user_id" and extra == ["userid"]  # an exact match wins over a camelCase one
