"""The Param ``effort``: less fixed work per model on small tables, the full behaviour one Param away."""

import pytest

from pipelines.training import effort
from pipelines.training.context import DEFAULTS, _config
from pipelines.training.data import TrainingDataError


def test_auto_cuts_latency_calls_and_tuning_time_on_a_small_table_and_says_so():
    got = effort.plan(dict(DEFAULTS), 488)
    assert got["latency_rows"] == effort.SMALL_LATENCY_ROWS < effort.FULL_LATENCY_ROWS
    assert got["tune_time_budget_s"] == effort.SMALL_TUNE_BUDGET_S < DEFAULTS["tune_time_budget_s"]
    assert "488 train rows" in got["effort_plan"] and "full" in got["effort_plan"]


def test_a_smaller_tuning_budget_asked_for_is_kept():
    assert effort.plan({**DEFAULTS, "tune_time_budget_s": 20}, 488)["tune_time_budget_s"] == 20


@pytest.mark.parametrize(("params", "rows"), [({"effort": "full"}, 488), ({}, 39_000), ({"effort": ""}, 10_000)])
def test_full_effort_and_large_tables_keep_the_params_as_given(params, rows):
    got = effort.plan({**DEFAULTS, **params}, rows)
    assert got["latency_rows"] == effort.FULL_LATENCY_ROWS
    assert got["tune_time_budget_s"] == DEFAULTS["tune_time_budget_s"]


def test_an_unknown_effort_is_refused_naming_the_choices():
    with pytest.raises(TrainingDataError, match="auto, full"):
        effort.plan({**DEFAULTS, "effort": "fast"}, 100)


def test_the_evaluation_config_takes_the_planned_latency_calls():
    params = {**DEFAULTS, **effort.plan(dict(DEFAULTS), 300)}
    assert _config({"params": params, "seed": 1}).latency_rows == effort.SMALL_LATENCY_ROWS
    assert _config({"params": dict(DEFAULTS), "seed": 1}).latency_rows == effort.FULL_LATENCY_ROWS  # an old context
