"""`make demo`: run every DAG end to end through Airflow on the embedded stack, then summarise.

Each DAG run is a real Airflow run (``airflow dags test --use-executor``): the LocalExecutor
runs mapped tasks side by side in their own processes, talking to the API server started
here (or the one ``make up`` already runs). Progress is read from Airflow's metadata DB.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pipelines.cli import stack
from pipelines.config import Settings
from pipelines.constants import BRONZE, CHAMPION, GOLD, SILVER
from pipelines.lake import Lake


@dataclass
class RunResult:
    dag_id: str
    ds: str
    state: str
    seconds: float
    run_id: str | None = None
    outputs: dict = field(default_factory=dict)
    log: Path | None = None


def demo_dates(settings: Settings, days: int | None = None) -> list[str]:
    start = date.fromisoformat(settings.demo.start)
    return [(start + timedelta(days=i)).isoformat() for i in range(days or settings.demo.days)]


SHUTDOWN_GRACE_S = 120  # how long `airflow dags test` may take to exit once its run has ended


def run_dag(settings: Settings, env: dict, dag_id: str, ds: str, conf: str | None = None) -> RunResult:
    """One DAG run through Airflow with the executor; prints a progress line as tasks finish."""
    db = stack.airflow_home(settings) / "airflow.db"
    log = settings.state_dir / "logs" / f"dagrun-{dag_id}-{ds}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = _last_run_pk(db, dag_id)
    command = [stack._bin("airflow"), "dags", "test", dag_id, ds, "--use-executor"]
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
                status = _progress(db, dag_id, before)
                if status and status != shown:
                    print(f"  {dag_id} {ds}  {status}  ({time.monotonic() - t0:.0f}s)", flush=True)
                    shown = status
                ended_at = ended_at or (time.monotonic() if _run_ended(db, dag_id, before) else None)
                if ended_at and time.monotonic() - ended_at > SHUTDOWN_GRACE_S:
                    # The run is over in the metadata DB but `airflow dags test` hangs shutting its
                    # executor down (seen with a defunct worker): stop it rather than wait forever.
                    _stop(proc)
                    out.write(
                        f"\n[demo] run ended; airflow dags test did not exit within {SHUTDOWN_GRACE_S}s: stopped\n".encode()
                    )
        except BaseException:  # Ctrl-C or an error here: the run's own session must not outlive us
            _stop(proc)
            raise
    seconds = time.monotonic() - t0
    run = _run_after(db, dag_id, before)
    state = run[1] if run else f"failed (exit {proc.returncode}, no run recorded)"
    return RunResult(dag_id, ds, state, seconds, run[0] if run else None, log=log)


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


def _run_ended(db: Path, dag_id: str, after: int) -> bool:
    try:
        run = _run_after(db, dag_id, after)
    except sqlite3.Error:
        return False
    return bool(run) and run[1] in ("success", "failed")


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)


def _last_run_pk(db: Path, dag_id: str) -> int:
    if not db.exists():
        return 0
    with _connect(db) as con:
        row = con.execute("select max(id) from dag_run where dag_id = ?", (dag_id,)).fetchone()
    return row[0] or 0


def _run_after(db: Path, dag_id: str, after: int) -> tuple[str, str] | None:
    with _connect(db) as con:
        return con.execute(
            "select run_id, state from dag_run where dag_id = ? and id > ? order by id desc limit 1", (dag_id, after)
        ).fetchone()


def _progress(db: Path, dag_id: str, after: int) -> str | None:
    try:
        run = _run_after(db, dag_id, after)
        if not run:
            return None
        with _connect(db) as con:
            rows = con.execute(
                "select task_id, map_index, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run[0])
            ).fetchall()
    except sqlite3.Error:
        return None
    done = sum(1 for _, _, s in rows if s in ("success", "skipped"))
    failed = [t for t, _, s in rows if s in ("failed", "upstream_failed")]
    running = sorted({f"{t}[{m}]" if m >= 0 else t for t, m, s in rows if s == "running"})
    bar = "#" * done + "." * (len(rows) - done)
    text = f"[{bar}] {done}/{len(rows)} tasks done"
    if running:
        text += f", running: {', '.join(running)}"
    if failed:
        text += f", failed: {', '.join(failed)}"
    return text


def feature_outputs(settings: Settings, dataset: str, ds: str) -> dict:
    lake = Lake(settings.lake_root)
    try:
        bronze = lake.read_manifest(BRONZE, dataset, ds)
        silver = lake.read_manifest(SILVER, dataset, ds)
        gold = lake.read_manifest(GOLD, dataset, ds)
    except FileNotFoundError:
        return {}
    return {
        "rows in": bronze["rows_in"],
        "gold rows": gold["rows"],
        "quarantined": bronze["quarantined_rows"] + silver["rows_quarantined"],
        "gold hash": gold["content_hash"][:12],
    }


def training_outputs(settings: Settings, dataset: str, ds: str) -> dict:
    lake = Lake(settings.lake_root)
    try:
        board = lake.read_partition(GOLD, f"{dataset}_leaderboard", ds).to_pandas()
    except FileNotFoundError:
        return {}
    ok = board[board["status"] == "ok"]
    out = {"algorithms": len(board), "failed": int((board["status"] != "ok").sum())}
    if len(ok):
        best = ok.iloc[0]
        out.update(
            {
                "best": best["algorithm"],
                "cv auc": round(float(best["cv_roc_auc"]), 4),
                "test auc": round(float(best["test_roc_auc"]), 4),
            }
        )
    return out


def registry_outputs(settings: Settings, dataset: str) -> dict:
    """The registered model's champion after a training run (read from the running MLflow server)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = f"{dataset}_classifier"
    try:
        v = MlflowClient(settings.mlflow.server_url).get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return {"champion": "none"}
    return {"champion": f"{name} v{v.version} ({v.tags.get('algorithm')}, {v.tags.get('decision', '')})"}


def main(settings: Settings, days: int | None = None) -> int:
    env = stack.airflow_env(settings)
    print(
        f"Preparing the embedded stack under {settings.state_dir} (Airflow on SQLite, LocalExecutor; MLflow on SQLite)"
    )
    stack.migrate(settings, env)
    results: list[RunResult] = []
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
            if settings.demo.deep and result.state == "success":
                results += _deep_demo(settings, env, ds)
    print_summary(settings, results, time.monotonic() - t0)
    return 0 if results and all(r.state == "success" for r in results) else 1


# --- the deep-learning part of the demo (issue 8) ------------------------------------------------------


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


def deep_outputs(settings: Settings, airflow_run_id: str | None) -> dict:
    """Headline metrics of a sentiment or image DAG run, from its MLflow runs (experiment ``deep``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not airflow_run_id:
        return {}
    client = MlflowClient(settings.mlflow.server_url)
    try:
        experiment = client.get_experiment_by_name(settings.mlflow.experiment("deep"))
        runs = client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{airflow_run_id}'")
    except (MlflowException, AttributeError):
        return {}
    out: dict = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags, metrics = run.data.tags, run.data.metrics
        if "arm" in tags or "model" in tags:  # nested runs (experiment arms, sentiment models)
            continue
        kind = tags.get("kind")
        if kind == "sentiment" and "best_model" in tags:
            best = tags["best_model"]
            out["best"] = best
            out["test auc"] = round(metrics.get(f"{best}_test_roc_auc", float("nan")), 4)
            out["model"] = f"v{tags.get('registered_version', '?')} ({tags.get('alias', '?')})"
        elif kind == "image":
            out["data"] = tags.get("image_dataset")
            out["cnn test acc"] = round(metrics.get("test_accuracy", float("nan")), 4)
        elif kind == "poly_experiment":
            arms = {
                arm: round(metrics.get(f"{arm}_accuracy_mean", float("nan")), 3)
                for arm in ("poly_polyadam", "relu_adam")
            }
            diverged = next((int(v) for k, v in metrics.items() if k.startswith("poly_polyadam_diverged_of_")), None)
            out["poly vs relu acc"] = f"{arms['poly_polyadam']} vs {arms['relu_adam']} (poly diverged {diverged})"
        elif kind == "gmm":
            out["gmm k"] = int(metrics.get("n_components", 0))
    order = ["best", "test auc", "model", "data", "cnn test acc", "poly vs relu acc", "gmm k"]
    return {k: out[k] for k in order if k in out}


def print_summary(settings: Settings, results: list[RunResult], total: float) -> None:
    print()
    print(f"{'DAG':<10} {'date':<11} {'state':<8} {'time':>6}  outputs")
    for r in results:
        outputs = ", ".join(f"{k} {v}" for k, v in r.outputs.items())
        print(f"{r.dag_id:<10} {r.ds:<11} {r.state:<8} {r.seconds:>5.0f}s  {outputs}")
    print(f"\nTotal {total:.0f}s. Where to look:")
    print(f"  Lake (Parquet + _manifest.json): {settings.lake_root}  (bronze/, silver/, gold/, quarantine/)")
    print(
        f"  Airflow UI: `make up`, then {settings.airflow.url}/dags/features and /dags/training (login printed by make up)"
    )
    print(f"  MLflow UI : `make up`, then {settings.mlflow.server_url} (experiments `features` and `training`)")
    print(f"  Task logs : {settings.state_dir / 'logs'} and {stack.airflow_home(settings) / 'logs'}")
