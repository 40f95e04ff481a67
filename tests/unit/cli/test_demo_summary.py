"""The demo's summary and record, and the step timing bench/demo.py reads back from task logs."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys

from pipelines.cli import dagruns, demo
from pipelines.constants import REPO_ROOT
from tests.unit.settings import tmp_settings

sys.path.insert(0, str(REPO_ROOT / "dags"))
from _steps import call  # noqa: E402 - dags/ is on sys.path in Airflow


def _bench():
    spec = importlib.util.spec_from_file_location("bench_demo", REPO_ROOT / "bench" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_of_one_dag_on_one_date_get_their_own_logical_dates():
    assert dagruns.logical_date("2026-01-04") == "2026-01-04T00:00:00+00:00"
    assert dagruns.logical_date("2026-01-04", 3) == "2026-01-04T03:00:00+00:00"
    url = dagruns.run_url("http://127.0.0.1:8080/", "features", "manual__2026-01-04T03:00:00+00:00")
    assert url == "http://127.0.0.1:8080/dags/features/runs/manual__2026-01-04T03%3A00%3A00%2B00%3A00"


def test_summary_totals_each_dag_and_says_where_each_run_and_experiment_is(tmp_path, capsys):
    settings = tmp_settings(tmp_path)
    results = [
        demo.RunResult("features", "2026-01-01", "success", 20.0, "manual__a", {"gold rows": 12139}),
        demo.RunResult("features", "2026-01-04", "success", 22.0, "manual__b"),
        demo.RunResult("forecasting", "2026-01-04", "failed", 61.0, "manual__c", {"best": "lightgbm"}),
    ]
    demo.print_summary(settings, results, 110.0, {"forecasting": "http://127.0.0.1:5000/#/experiments/3"})
    out = capsys.readouterr().out
    assert "Total 110s: features 42s, forecasting 61s" in out
    assert "forecasting    2026-01-04  failed      61s  best lightgbm" in out
    assert f"{settings.airflow.url}/dags/features/runs/manual__b" in out  # the latest run of each DAG
    assert "manual__a" not in out
    assert "http://127.0.0.1:5000/#/experiments/3" in out


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_step_timing_in_the_task_log_is_what_the_bench_reads():
    def step(x):
        return x + 1

    logger, lines = logging.getLogger("pipelines.step"), _Lines()
    logger.addHandler(lines)
    try:
        assert call(step, 1) == 2
    finally:
        logger.removeHandler(lines)
    line = lines.lines[-1]
    match = _bench().STEP_LINE.search(json.dumps({"event": line}))
    assert match and match.group(1).endswith(".step") and float(match.group(2)) >= 0


def test_overhead_is_task_wall_time_minus_step_time(tmp_path):
    bench = _bench()
    home = tmp_path / "airflow"
    tis = [
        {"task_id": "silver", "map_index": -1, "try_number": 1, "start_date": "2026-01-01T00:00:00+00:00",
         "end_date": "2026-01-01T00:00:02.5+00:00", "queued_when": "2026-01-01T00:00:00+00:00"},
        {"task_id": "train", "map_index": 0, "try_number": 2, "start_date": "2026-01-01T00:00:00+00:00",
         "end_date": "2026-01-01T00:00:10+00:00", "queued_when": None},
        {"task_id": "algorithms", "map_index": -1, "try_number": 1, "start_date": "2026-01-01T00:00:00+00:00",
         "end_date": "2026-01-01T00:00:01+00:00", "queued_when": None},  # no step: not measured
    ]  # fmt: skip
    record = {"runs": [{"dag_id": "training", "run_id": "r1", "task_instances": tis}]}
    for ti, seconds in ((tis[0], 2.0), (tis[1], 9.0)):
        log = bench.task_log(home, "training", "r1", ti)
        log.parent.mkdir(parents=True)
        log.write_text(json.dumps({"event": f"step pipelines.x.y took {seconds:.3f} s"}) + "\n")
    assert "map_index=0/attempt=2.log" in str(bench.task_log(home, "training", "r1", tis[1]))
    out = bench.overhead(record, home)
    assert out["tasks_measured"] == 2 and out["airflow_overhead_s_per_task"] == 0.75  # median of 0.5 and 1.0
    assert out["queue_wait_s_median"] == 0.0


def test_a_run_lasts_from_its_trigger_or_else_its_start_to_its_end():
    from datetime import datetime

    from pipelines.cli import dagruns

    run = {"start_date": "2026-01-01T00:00:10Z", "end_date": "2026-01-01T00:01:00.500000Z"}
    assert dagruns.run_seconds(run) == 50.5
    triggered = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    assert dagruns.run_seconds(run, since=triggered) == 60.5


def test_the_demo_refuses_to_start_beside_a_running_scheduler_and_says_what_to_do(tmp_path, capsys):
    import os

    settings = tmp_settings(tmp_path)
    pidfile = demo.stack._pidfile(settings, "airflow-scheduler")
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))  # a live process stands in for `make up`'s scheduler
    assert demo.main(settings) == 2
    out = capsys.readouterr().out
    assert f"pid {os.getpid()}" in out and "make down" in out
    assert not (settings.state_dir / "airflow").exists()  # nothing was started or migrated
