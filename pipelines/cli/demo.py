"""`make demo`: run every DAG end to end through Airflow on the embedded stack, then summarise.

Each DAG run is a real Airflow run (``airflow dags test --use-executor``): the LocalExecutor
runs mapped tasks side by side in their own processes, talking to the API server started
here (or the one ``make up`` already runs). Progress is read from Airflow's REST API
(``dagruns``); what each run left behind from the lake and MLflow (``demo_outputs``); the
monitoring part is ``demo_monitoring``.
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


def run_dag(settings: Settings, env: dict, dag_id: str, ds: str, conf: str | None = None, hour: int = 0) -> RunResult:
    """One DAG run through Airflow with the executor; prints a progress line as tasks finish. Runs of one
    DAG on one date (features of several datasets) take different ``hour``s: `dags test` replaces a run
    of the same logical date."""
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
    unpause the DAG, run a scheduler until the run ends, then pause the DAG again if it was paused."""
    api = dagruns.client(settings)
    paused = dagruns.is_paused(api, dag_id)
    t0 = time.monotonic()
    state = None
    if paused:
        dagruns.set_paused(api, dag_id, False)
    try:
        with stack.scheduler(settings, env):
            shown = None
            while (state := dagruns.run_state(api, dag_id, run_id)) not in dagruns.TERMINAL:
                if time.monotonic() - t0 > timeout_s:
                    state = f"still {state} after {timeout_s:.0f}s"
                    break
                status = dagruns.progress(api, dag_id, run_id)
                if status and status != shown:
                    print(f"  {dag_id} {run_id}  {status}  ({time.monotonic() - t0:.0f}s)", flush=True)
                    shown = status
                time.sleep(1)
    finally:
        if paused:
            dagruns.set_paused(api, dag_id, True)
    log = stack.airflow_home(settings) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    return RunResult(dag_id, ds, state or "not found", time.monotonic() - t0, run_id, log=log)


def main(settings: Settings, days: int | None = None) -> int:
    from pipelines.cli import demo_monitoring

    env = stack.airflow_env(settings)
    print(
        f"Preparing the embedded stack under {settings.state_dir} (Airflow on SQLite, LocalExecutor; MLflow on SQLite)"
    )
    stack.migrate(settings, env)
    results: list[RunResult] = []
    monitoring = None
    t0 = time.monotonic()
    with stack.services(settings, env):
        print(f"Airflow API on {settings.airflow.url}, MLflow on {settings.mlflow.server_url}")
        dataset = settings.features.dataset
        for ds in demo_dates(settings, days):
            result = run_dag(settings, env, "features", ds)
            result.outputs = feature_outputs(settings, dataset, ds)
            results.append(result)
            if result.state != "success":
                print(f"  features {ds} ended {result.state}; log: {result.log}")
                break
        else:
            ds = demo_dates(settings, days)[-1]
            result = run_dag(settings, env, "training", ds, conf=json.dumps(dict(settings.demo.training)))
            result.outputs = {**training_outputs(settings, dataset, ds), **registry_outputs(settings, dataset)}
            results.append(result)
            if result.state == "success" and settings.demo.monitoring.days:
                monitoring = demo_monitoring.monitoring_demo(settings, env, ds)
                results += monitoring.results
            if settings.demo.deep and result.state == "success":
                results += _deep_demo(settings, env, ds)
            results += _forecasting_demo(settings, env, ds)
            results += _recommendation_demo(settings, env, ds)
        experiments = experiment_urls(settings)  # while the MLflow server is up
        write_record(settings, results, time.monotonic() - t0)
    print_summary(settings, results, time.monotonic() - t0, experiments)
    if monitoring:
        demo_monitoring.print_monitoring_summary(settings, monitoring)
    return 0 if results and all(r.state == "success" for r in results) else 1


def _deep_demo(settings: Settings, env: dict, ds: str) -> list[RunResult]:
    """Reviews through features (one day), then the sentiment and image DAGs with the small Params of
    ``demo.sentiment`` / ``demo.image``; each result carries its headline metrics from MLflow."""
    results = []
    features = _features(settings, env, "reviews", ds, hour=1)
    results.append(features)
    if features.state == "success":
        conf = {"ds": ds, **dict(settings.demo.sentiment)}
        sentiment = run_dag(settings, env, "sentiment", ds, conf=json.dumps(conf))
        sentiment.outputs = deep_outputs(settings, sentiment.run_id)
        results.append(sentiment)
    else:
        print(f"  features (reviews) {ds} ended {features.state}; log: {features.log}")
    image = run_dag(settings, env, "image", ds, conf=json.dumps(dict(settings.demo.image)))
    image.outputs = deep_outputs(settings, image.run_id)
    results.append(image)
    return results


def _features(settings: Settings, env: dict, dataset: str, ds: str, hour: int) -> RunResult:
    """The features DAG for one more dataset on the demo's last date, at its own hour of that date."""
    result = run_dag(settings, env, "features", ds, conf=json.dumps({"dataset": dataset}), hour=hour)
    result.outputs = {"dataset": dataset, **feature_outputs(settings, dataset, ds)}
    if result.state != "success":
        print(f"  features ({dataset}) {ds} ended {result.state}; log: {result.log}")
    return result


def _forecasting_demo(settings: Settings, env: dict, ds: str) -> list[RunResult]:
    """The simulated sales through features, then the forecasting DAG with the Params of ``demo.forecasting``."""
    dataset = settings.demo.forecasting.get("dataset", settings.forecasting.dataset)
    features = _features(settings, env, dataset, ds, hour=2)
    if features.state != "success":
        return [features]
    result = run_dag(
        settings, env, "forecasting", ds, conf=json.dumps({"dataset": dataset, **settings.demo.forecasting})
    )
    result.outputs = forecasting_outputs(settings, dataset, ds, result.run_id)
    return [features, result]


def _recommendation_demo(settings: Settings, env: dict, ds: str) -> list[RunResult]:
    """One day of MovieLens ratings through features (the item and user tables of every demo day land in
    this process: they are small lookup tables), then the recommendation DAG with ``demo.recommendation``."""
    from pipelines import features as feature_steps

    cfg = settings.recommendation
    features = _features(settings, env, cfg.ratings, ds, hour=3)
    if features.state != "success":
        return [features]
    for table in (cfg.items, cfg.users):
        for day in demo_dates(settings) if table else []:
            feature_steps.run(table, day, settings=settings)
    result = run_dag(settings, env, "recommendation", ds, conf=json.dumps(dict(settings.demo.recommendation)))
    result.outputs = recommendation_outputs(settings, cfg.ratings, ds, result.run_id)
    return [features, result]


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
