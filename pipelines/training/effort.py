"""How much work a training run spends, in proportion to its data (the Param ``effort``).

A model's judgement has costs that do not shrink with the table: 500 timed single-row predictions
(``metrics.latency``) and each tuning search's trials. On Adult's 39k train rows they are a small
part of the fits; on a 500-row table they were most of a 3-minute run (latency alone 83 s of 166 s
for 13 models on breast-cancer, measured with ``python -m pipelines train`` on 2 cores).

- ``full``: the Params as given; 500 single-row latency calls per model.
- ``auto`` (default): the same for tables of ``SMALL_ROWS`` train rows or more (Adult is
  unchanged); below that, 100 single-row latency calls per model (still 5 blocks of 20 calls, the
  p99 the median of the blocks' p99s) and each tuning search stops after at most
  ``SMALL_TUNE_BUDGET_S`` seconds (its run's ``stopped_because`` tag says so).

``plan`` returns the values a run uses; ``prepare`` merges them into the run's params, so every
later step (and MLflow's params of the parent run, ``effort_plan`` in words) sees them.
"""

from __future__ import annotations

from pipelines.training.data import TrainingDataError

EFFORTS = ("auto", "full")
SMALL_ROWS = 10_000
FULL_LATENCY_ROWS = 500
SMALL_LATENCY_ROWS = 100
SMALL_TUNE_BUDGET_S = 60


def plan(params: dict, train_rows: int) -> dict:
    """The run's effective ``latency_rows``, ``tune_time_budget_s`` and ``effort_plan`` (a sentence)."""
    effort = params.get("effort") or "auto"
    if effort not in EFFORTS:
        raise TrainingDataError(f"effort must be one of {', '.join(EFFORTS)}, got {effort!r}")
    budget = float(params["tune_time_budget_s"])
    if effort == "full" or train_rows >= SMALL_ROWS:
        why = "full: as given" if effort == "full" else f"auto: {train_rows:,} train rows >= {SMALL_ROWS:,}, as given"
        return {"latency_rows": FULL_LATENCY_ROWS, "tune_time_budget_s": budget, "effort_plan": why}
    budget = min(budget, SMALL_TUNE_BUDGET_S)
    return {
        "latency_rows": SMALL_LATENCY_ROWS,
        "tune_time_budget_s": budget,
        "effort_plan": (
            f"auto: {train_rows:,} train rows < {SMALL_ROWS:,}: {SMALL_LATENCY_ROWS} single-row latency calls per "
            f"model, tuning at most {budget:g} s per algorithm (effort 'full': as given)"
        ),
    }
