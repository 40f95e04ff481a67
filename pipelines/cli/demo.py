"""`make demo`: run every DAG end to end through Airflow on the embedded stack, then summarise.

Each DAG run is a real Airflow run (``airflow dags test --use-executor``): the LocalExecutor
runs mapped tasks side by side in their own processes, talking to the API server started
here (or the one ``make up`` already runs). Progress is read from Airflow's REST API
(``dagruns``); what each run left behind from the lake and MLflow (``demo_outputs``); the
monitoring part is ``demo_monitoring``.
"""

from __future__ import annotations

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
    feature_outputs,
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


def run_dag(settings: Settings, env: dict, dag_id: str, ds: str, conf: str | None = None) -> RunResult:
    """One DAG run through Airflow with the executor; prints a progress line as tasks finish."""
    api = dagruns.client(settings)
    log = settings.state_dir / "logs" / f"dagrun-{dag_id}-{ds}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = dagruns.run_key(dagruns.run_of_date(api, dag_id, ds))  # the run dags test replaces

    def ours() -> dict | None:
        run = dagruns.run_of_date(api, dag_id, ds)
        return run if dagruns.run_key(run) != before else None

    command = [*stack.airflow_tasks_command(), "dags", "test", dag_id, ds, "--use-executor"]
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
    print_summary(settings, results, time.monotonic() - t0)
    if monitoring:
        demo_monitoring.print_monitoring_summary(settings, monitoring)
    return 0 if results and all(r.state == "success" for r in results) else 1


def _deep_demo(settings: Settings, env: dict, ds: str) -> list[RunResult]:
    """Reviews through features (one day), then the sentiment and image DAGs with the small Params of
    ``demo.sentiment`` / ``demo.image``; each result carries its headline metrics from MLflow."""
    results = []
    features = run_dag(settings, env, "features", ds, conf=json.dumps({"dataset": "reviews"}))
    features.outputs = {"dataset": "reviews", **feature_outputs(settings, "reviews", ds)}
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


def print_summary(settings: Settings, results: list[RunResult], total: float) -> None:
    print()
    print(f"{'DAG':<10} {'date':<11} {'state':<8} {'time':>6}  outputs")
    for r in results:
        outputs = ", ".join(f"{k} {v}" for k, v in r.outputs.items())
        print(f"{r.dag_id:<10} {r.ds:<11} {r.state:<8} {r.seconds:>5.0f}s  {outputs}")
    print(f"\nTotal {total:.0f}s. Where to look:")
    print(f"  Lake (Parquet + _manifest.json): {settings.lake_root}  (bronze/, silver/, gold/, quarantine/)")
    print(f"  Airflow UI: `make up`, then {settings.airflow.url}/dags/features and /dags/training")
    print(f"              (user {stack.ADMIN_USER}, {stack.password_hint(settings)})")
    print(f"  MLflow UI : `make up`, then {settings.mlflow.server_url} (experiments `features` and `training`)")
    print(f"  Task logs : {settings.state_dir / 'logs'} and {stack.airflow_home(settings) / 'logs'}")
