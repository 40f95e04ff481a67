"""The run context through XCom (JSON) and back, and the date a run works on."""

import json

import pyarrow as pa
import pytest

from pipelines.constants import GOLD
from pipelines.errors import DataError
from pipelines.steps import RunContext, content_hash, resolve_ds


class NoGold(DataError):
    pass


def test_context_goes_through_xcom_as_json_and_back(settings):
    ctx = RunContext.create(
        "sales", "2026-01-02", settings, params={"models": ["naive"], "horizon": 7}, dag_id="forecasting",
        airflow_run_id="manual__1", run_key="abc",
    )  # fmt: skip
    assert ctx.seed == settings.seed and ctx.extra == {"run_key": "abc"}
    data = json.loads(json.dumps(ctx.to_xcom()))
    assert data["run_key"] == "abc" and data["params"]["horizon"] == 7 and "settings" not in data
    back = RunContext.from_xcom(data, settings)
    assert back == ctx and back["run_key"] == "abc" and back["ds"] == "2026-01-02"
    assert back.lake.uri("x") == ctx.lake.uri("x") and back.lake.uri("x").endswith("lake/x")
    assert RunContext.from_xcom(ctx) is ctx


def test_with_sets_fields_and_extra_keys_and_tags_name_the_run(settings):
    ctx = RunContext.create("d", "2026-01-01", settings, airflow_run_id="r1", dag_id="training")
    later = ctx.with_(parent_run_id="p" * 32, gold_content_hash="h", protocol={"k": 10})
    assert ctx.parent_run_id is None and later.parent_run_id == "p" * 32 and later.extra == {"protocol": {"k": 10}}
    assert later.run_tags(model="m") == {"airflow_run_id": "r1", "dataset": "d", "ds": "2026-01-01", "model": "m"}
    assert later.lineage_tags(model="m")["gold_content_hash"] == "h" and later.lineage_tags()["dag_id"] == "training"


def test_content_hash_ignores_the_order_of_partitions():
    assert (
        content_hash({"a": "1", "b": "2"}) == content_hash({"b": "2", "a": "1"}) != content_hash({"a": "2", "b": "1"})
    )


@pytest.fixture
def lake(settings):
    ctx = RunContext.create(settings=settings)
    for ds in ("2026-01-01", "2026-01-05"):
        ctx.lake.write_partition(GOLD, "sales", ds, pa.table({"x": [1]}), {})
    return ctx.lake


def test_date_is_the_form_then_our_event_then_logical_then_latest_gold(lake):
    events = [{"dataset": "sales", "ds": "2026-01-03"}, {"dataset": "other", "ds": "2026-02-01"}]
    assert resolve_ds(lake, "sales", "2026-01-04", events, "2026-01-09") == "2026-01-04"
    assert resolve_ds(lake, ["x", "sales"], "", events, "2026-01-09") == "2026-01-03"
    assert resolve_ds(lake, "sales", "", [{"dataset": "other", "ds": "2026-02-01"}], "2026-01-09") == "2026-01-09"
    assert resolve_ds(lake, "sales", None, [], None) == "2026-01-05"


def test_no_date_or_a_bad_one_fails_naming_the_dataset_or_the_value(lake):
    with pytest.raises(NoGold, match="no gold partitions for dataset 'nothing'; run it first"):
        resolve_ds(lake, "nothing", "", [], None, error=NoGold, hint="run it first")
    with pytest.raises(DataError, match="YYYY-MM-DD, got '2026-13-01'"):
        resolve_ds(lake, "sales", "2026-13-01")
    with pytest.raises(NoGold, match="no date for dataset 'reviews': set the `ds` Param"):
        resolve_ds(None, "reviews", "", [{"dataset": "other", "ds": "2026-01-01"}], None, error=NoGold)
    assert resolve_ds(None, "reviews", "", [{"dataset": "reviews", "ds": "2026-01-02"}], None) == "2026-01-02"
