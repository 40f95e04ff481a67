"""`make demo`: run every DAG end to end through Airflow on the embedded stack, then summarise.

Each DAG run is a real Airflow run, triggered through the REST API as from the UI, that a
scheduler started here (``scheduling``, or the one ``make up`` already runs) hands to the
LocalExecutor: mapped tasks, and runs of DAGs that do not depend on each other, run side by
side in their own processes. One scheduler for the whole demo instead of an ``airflow dags
test`` process per run saves that command's start-up and shutdown (10-15 s a run). Progress is
read from Airflow's REST API (``dagruns``); what each run left behind from the lake and MLflow
(``demo_outputs``); the monitoring part is ``demo_monitoring``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

from pipelines.cli import dagruns, stack
from pipelines.cli.demo_outputs import (  # noqa: F401 - re-exported (bench, tests)
    deep_outputs,
    experiment_urls,
    feature_outputs,
    forecasting_outputs,
    recommendation_outputs,
    registry_outputs,
    training_outputs,
)
from pipelines.config import Settings


@dataclass
class RunResult:
    dag_id: str
    ds: str
    state: str
    seconds: float
    run_id: str | None = None
    outputs: dict = field(default_factory=dict)
    log: Path | None = None


def consecutive_dates(first: str, days: int) -> list[str]:
    start = date.fromisoformat(first)
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


def demo_dates(settings: Settings, days: int | None = None) -> list[str]:
    return consecutive_dates(settings.demo.start, days or settings.demo.days)


SHUTDOWN_GRACE_S = 120  # how long `airflow dags test` may take to exit once its run has ended


def run_dag(
    settings: Settings,
    env: dict,
    dag_id: str,
    ds: str,
    conf: str | None = None,
    hour: int = 0,
    scheduled: bool = False,
) -> RunResult:
    """One DAG run through Airflow with the executor; prints a progress line as tasks finish. Runs of one
    DAG on one date (features of several datasets) take different ``hour``s: a run replaces the run of
    the same logical date, as `airflow dags test` does.

    ``scheduled``: triggered through the REST API (as from the UI) for the running scheduler of
    ``scheduling`` to run; otherwise `airflow dags test --use-executor` runs it without a scheduler.
    """
    if scheduled:
        return _run_scheduled(settings, dag_id, ds, conf, hour)
    api = dagruns.client(settings)
    log = settings.state_dir / "logs" / f"dagrun-{dag_id}-{ds}{f'-{hour:02d}' if hour else ''}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = dagruns.run_key(dagruns.run_of_date(api, dag_id, ds, hour))  # the run dags test replaces

    def ours() -> dict | None:
        run = dagruns.run_of_date(api, dag_id, ds, hour)
        return run if dagruns.run_key(run) != before else None

    logical = dagruns.logical_date(ds, hour) if hour else ds
    command = [*stack.airflow_tasks_command(), "dags", "test", dag_id, logical, "--use-executor"]
    if conf:
        command += ["--conf", conf]
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            shown, ended_at = None, None
            while proc.poll() is None:
                time.sleep(1)
                run = ours()
                status = run and dagruns.progress(api, dag_id, run["dag_run_id"])
                if status and status != shown:
                    print(f"  {dag_id} {ds}  {status}  ({time.monotonic() - t0:.0f}s)", flush=True)
                    shown = status
                ended_at = ended_at or (time.monotonic() if run and run["state"] in dagruns.TERMINAL else None)
                if ended_at and time.monotonic() - ended_at > SHUTDOWN_GRACE_S:
                    # The run is over in Airflow but `airflow dags test` hangs shutting its
                    # executor down (seen with a defunct worker): stop it rather than wait forever.
                    _stop(proc)
                    out.write(
                        f"\n[demo] run ended; airflow dags test did not exit within {SHUTDOWN_GRACE_S}s: stopped\n".encode()
                    )
        except BaseException:  # Ctrl-C or an error here: the run's own session must not outlive us
            _stop(proc)
            raise
    seconds = time.monotonic() - t0
    run = ours()
    state = run["state"] if run else f"failed (exit {proc.returncode}, no run recorded)"
    return RunResult(dag_id, ds, state, seconds, run["dag_run_id"] if run else None, log=log)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the process group of ``proc``: TERM, then KILL after 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def run_triggered(settings: Settings, env: dict, dag_id: str, run_id: str, ds: str, timeout_s: float) -> RunResult:
    """Let Airflow's scheduler run a DAG run that waits queued (``airflow dags test`` runs only its own run):
    unpause the DAG, run a scheduler (unless one runs already) until the run ends, then pause the DAG
    again if it was paused."""
    api = dagruns.client(settings)
    paused = dagruns.is_paused(api, dag_id)
    if paused:
        dagruns.set_paused(api, dag_id, False)
    try:
        with stack.scheduler(settings, env):
            [(state, seconds)] = _wait(settings, [(dag_id, run_id, None)], timeout_s)
    finally:
        if paused:
            dagruns.set_paused(api, dag_id, True)
    return RunResult(dag_id, ds, state, seconds, run_id, log=_task_logs(settings, dag_id, run_id))


SCHEDULED_RUN_TIMEOUT_S = 3600  # a triggered run not over by then is reported as still running


@dataclass
class Planned:
    """A run to ``trigger``: DAG, date, conf (JSON text) and the hour of its logical date."""

    dag_id: str
    ds: str
    conf: str | None = None
    hour: int = 0


@dataclass
class Started:
    planned: Planned
    run_id: str
    triggered_at: float  # epoch seconds


def trigger(settings: Settings, planned: list[Planned]) -> list[Started]:
    """Trigger runs through the REST API for the scheduler to run side by side (as far as the executor's
    slots allow), each replacing an earlier run of its logical date, as `airflow dags test` does."""
    api = dagruns.client(settings)
    started = []
    for p in planned:
        api.wait_for_dag(p.dag_id)
        if old := dagruns.run_of_date(api, p.dag_id, p.ds, p.hour):
            api.call("DELETE", f"dags/{p.dag_id}/dagRuns/{quote(old['dag_run_id'], safe='')}")
        body = {"logical_date": dagruns.logical_date(p.ds, p.hour), "conf": json.loads(p.conf) if p.conf else {}}
        started.append(Started(p, api.call("POST", f"dags/{p.dag_id}/dagRuns", body)["dag_run_id"], time.time()))
    return started


def finish(settings: Settings, started: list[Started]) -> list[RunResult]:
    """Wait until every started run has ended; each result's seconds run from its trigger to its end."""
    ended = _wait(settings, [(s.planned.dag_id, s.run_id, s.triggered_at) for s in started], SCHEDULED_RUN_TIMEOUT_S)
    return [
        RunResult(
            s.planned.dag_id,
            s.planned.ds,
            state,
            seconds,
            s.run_id,
            log=_task_logs(settings, s.planned.dag_id, s.run_id),
        )
        for s, (state, seconds) in zip(started, ended, strict=True)
    ]


def _run_scheduled(settings: Settings, dag_id: str, ds: str, conf: str | None, hour: int) -> RunResult:
    return finish(settings, trigger(settings, [Planned(dag_id, ds, conf, hour)]))[0]


def _wait(settings: Settings, runs: list[tuple[str, str, float | None]], timeout_s: float) -> list[tuple[str, float]]:
    """Poll runs the scheduler runs, ``(dag_id, run_id, triggered at)`` each (epoch seconds; None: a run
    triggered by another DAG), until all have ended, printing a progress line as a run's tasks change.
    Per run: its final state (or why waiting stopped), and its seconds from its trigger (or else from its
    start) to its end, as Airflow recorded them."""
    api = dagruns.client(settings)
    shown: dict[str, str] = {}
    ended: dict[str, tuple[str, float]] = {}
    waiting_since = time.time()
    while len(ended) < len(runs):
        for dag_id, run_id, since in runs:
            if run_id in ended:
                continue
            run = dagruns.get_run(api, dag_id, run_id)
            state = run["state"] if run else None
            waited = time.time() - (since or waiting_since)
            if run and state in dagruns.TERMINAL:
                ended[run_id] = (str(state), dagruns.run_seconds(run, since))
            elif waited > timeout_s:
                ended[run_id] = (f"still {state} after {timeout_s:.0f}s", waited)
            elif not stack.running_pid(settings, "airflow-scheduler"):
                ended[run_id] = (f"still {state}: the scheduler stopped (log: {settings.state_dir / 'logs'})", waited)
            elif (status := dagruns.progress(api, dag_id, run_id)) and status != shown.get(run_id):
                print(f"  {dag_id} {run_id}  {status}  ({waited:.0f}s)", flush=True)
                shown[run_id] = status
        if len(ended) < len(runs):
            time.sleep(1)
    return [ended[run_id] for _, run_id, _ in runs]


def _task_logs(settings: Settings, dag_id: str, run_id: str) -> Path:
    return stack.airflow_home(settings) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"


@contextlib.contextmanager
def scheduling(settings: Settings, env: dict):
    """A scheduler for a block, for ``run_dag(scheduled=True)``: every DAG parsed into the metadata DB and
    unpaused, and the scheduler's cron and asset schedules off, so it runs the runs triggered here and
    the runs they trigger, nothing else. The DAGs paused before are paused again afterwards."""
    stack.reserialize(settings, env)
    api = dagruns.client(settings)
    with stack.scheduler(settings, {**env, "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}):
        paused = [d["dag_id"] for d in api.call("GET", "dags", limit=dagruns.PAGE)["dags"] if d["is_paused"]]
        for dag_id in paused:
            dagruns.set_paused(api, dag_id, False)
        try:
            yield
        finally:
            for dag_id in paused:
                with contextlib.suppress(dagruns.ApiError, OSError):
                    dagruns.set_paused(api, dag_id, True)


SCHEDULER_RUNNING = (
    "A scheduler already runs on this state (`make up`'s, pid {pid}). The demo runs one of its own with the"
    " schedules off, so that unpausing the DAGs starts nothing but the demo's runs: stop it with `make down`,"
    " then run `make demo` again (and `make up` after it)."
)


def main(settings: Settings, days: int | None = None) -> int:
    from pipelines.cli import demo_monitoring

    if pid := stack.running_pid(settings, "airflow-scheduler"):
        print(SCHEDULER_RUNNING.format(pid=pid))
        return 2
    env = stack.airflow_env(settings)
    print(
        f"Preparing the embedded stack under {settings.state_dir} (Airflow on SQLite, LocalExecutor; MLflow on SQLite)"
    )
    stack.migrate(settings, env)
    results: list[RunResult] = []
    monitoring = None
    t0 = time.monotonic()
    with stack.services(settings, env), scheduling(settings, env):
        print(
            f"Airflow API on {settings.airflow.url}, MLflow on {settings.mlflow.server_url};"
            " a scheduler runs the DAG runs the demo triggers through the REST API"
        )
        dataset = settings.features.dataset
        for ds in demo_dates(settings, days):
            result = run_dag(settings, env, "features", ds, scheduled=True)
            result.outputs = feature_outputs(settings, dataset, ds)
            results.append(result)
            if result.state != "success":
                print(f"  features {ds} ended {result.state}; log: {result.log}")
                break
        else:
            ds = demo_dates(settings, days)[-1]
            result = run_dag(
                settings, env, "training", ds, conf=json.dumps(dict(settings.demo.training)), scheduled=True
            )
            result.outputs = {**training_outputs(settings, dataset, ds), **registry_outputs(settings, dataset)}
            results.append(result)
            parts = {
                "forecasting",
                "recommendation",
                *(["deep"] if settings.demo.deep and result.state == "success" else []),
            }
            first = start_others(settings, ds, parts)  # they need no training: side by side with monitoring
            if result.state == "success" and settings.demo.monitoring.days:
                monitoring = demo_monitoring.monitoring_demo(settings, env, ds)
                results += monitoring.results
            results += finish_others(settings, ds, first)
        experiments = experiment_urls(settings)  # while the MLflow server is up
        write_record(settings, results, time.monotonic() - t0)
    print_summary(settings, results, time.monotonic() - t0, experiments)
    if monitoring:
        demo_monitoring.print_monitoring_summary(settings, monitoring)
    return 0 if results and all(r.state == "success" for r in results) else 1


def start_others(settings: Settings, ds: str, parts: set[str]) -> list[Started]:
    """The first wave of the DAGs after training, on the demo's last date: the features DAG for each other
    dataset (``parts``: ``deep`` the reviews, ``forecasting`` the simulated sales, ``recommendation`` a day
    of MovieLens ratings; each at its own hour of that date) and, for ``deep``, the image DAG."""
    datasets = {"deep": "reviews", "forecasting": _sales(settings), "recommendation": settings.recommendation.ratings}
    hours = {"deep": 1, "forecasting": 2, "recommendation": 3}
    wave = [Planned("features", ds, json.dumps({"dataset": datasets[p]}), hours[p]) for p in sorted(parts)]
    if "deep" in parts:
        wave.append(Planned("image", ds, json.dumps(dict(settings.demo.image))))
    return trigger(settings, wave)


def finish_others(settings: Settings, ds: str, first: list[Started]) -> list[RunResult]:
    """Once a dataset's features run has succeeded, the DAG that reads it (the ``demo.*`` Params): sentiment
    on the reviews, forecasting on the sales, recommendation on the ratings (the item and user tables of
    every demo day land in this process: small lookup tables); then wait for every run. Each result
    carries its headline outputs from the lake and MLflow."""
    features = [s for s in first if s.planned.dag_id == "features"]
    results = finish(settings, features)
    landed = set()
    for s, r in zip(features, results, strict=True):
        dataset = json.loads(s.planned.conf or "{}")["dataset"]
        r.outputs = {"dataset": dataset, **feature_outputs(settings, dataset, ds)}
        if r.state == "success":
            landed.add(dataset)
        else:
            print(f"  features ({dataset}) {ds} ended {r.state}; log: {r.log}")
    cfg, sales, wave = settings.recommendation, _sales(settings), []
    if "reviews" in landed:
        wave.append(Planned("sentiment", ds, json.dumps({"ds": ds, **dict(settings.demo.sentiment)})))
    if sales in landed:
        wave.append(Planned("forecasting", ds, json.dumps({"dataset": sales, **settings.demo.forecasting})))
    if cfg.ratings in landed:
        from pipelines import features as feature_steps

        for table in (cfg.items, cfg.users):
            for day in demo_dates(settings) if table else []:
                feature_steps.run(table, day, settings=settings)
        wave.append(Planned("recommendation", ds, json.dumps(dict(settings.demo.recommendation))))
    others = finish(settings, [*(s for s in first if s.planned.dag_id != "features"), *trigger(settings, wave)])
    for r in others:
        if r.dag_id in ("sentiment", "image"):
            r.outputs = deep_outputs(settings, r.run_id)
        elif r.dag_id == "forecasting":
            r.outputs = forecasting_outputs(settings, sales, ds, r.run_id)
        else:
            r.outputs = recommendation_outputs(settings, cfg.ratings, ds, r.run_id)
    return [*results, *others]


def _sales(settings: Settings) -> str:
    return settings.demo.forecasting.get("dataset", settings.forecasting.dataset)


RECORD = "demo/summary.json"  # under the state folder: what bench/demo.py reads


def write_record(settings: Settings, results: list[RunResult], total: float) -> Path:
    """Every run of the demo with its state, seconds, outputs and task instances (start, end, try) as
    Airflow's REST API reports them, for bench/demo.py; written while the API server is still up."""
    api = dagruns.client(settings)
    runs = []
    for r in results:
        tasks = []
        if r.run_id:
            with contextlib.suppress(dagruns.ApiError, OSError):  # the record keeps the run without them
                tasks = api.task_instances(r.dag_id, r.run_id)
        keep = ("task_id", "map_index", "try_number", "state", "start_date", "end_date", "duration", "queued_when")
        runs.append(
            {
                "dag_id": r.dag_id,
                "ds": r.ds,
                "run_id": r.run_id,
                "state": r.state,
                "seconds": round(r.seconds, 1),
                "outputs": r.outputs,
                "task_instances": [{k: t.get(k) for k in keep} for t in tasks],
            }
        )
    path = settings.state_dir / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"total_s": round(total, 1), "runs": runs}, indent=1, default=str))
    return path


def print_summary(settings: Settings, results: list[RunResult], total: float, experiments: dict[str, str]) -> None:
    print()
    print(f"{'DAG':<14} {'date':<11} {'state':<8} {'time':>6}  outputs")
    for r in results:
        outputs = ", ".join(f"{k} {v}" for k, v in r.outputs.items())
        print(f"{r.dag_id:<14} {r.ds:<11} {r.state:<8} {r.seconds:>5.0f}s  {outputs}")
    per_dag: dict[str, float] = {}
    for r in results:
        per_dag[r.dag_id] = per_dag.get(r.dag_id, 0.0) + r.seconds
    print(f"\nTotal {total:.0f}s: " + ", ".join(f"{dag} {s:.0f}s" for dag, s in per_dag.items()))
    print(
        f"\nWhere to look (`make up` serves both UIs; Airflow user {stack.ADMIN_USER}, {stack.password_hint(settings)}):"
    )
    latest = {r.dag_id: r for r in results if r.run_id}
    for dag_id, r in latest.items():
        print(f"  Airflow {dag_id:<14} {dagruns.run_url(settings.airflow.url, dag_id, r.run_id)}")
    for name, url in experiments.items():
        print(f"  MLflow  {name:<14} {url}")
    print(f"  Lake (Parquet + _manifest.json): {settings.lake_root}  (bronze/, silver/, gold/, quarantine/)")
    print(f"  Task logs: {settings.state_dir / 'logs'} and {stack.airflow_home(settings) / 'logs'}")
