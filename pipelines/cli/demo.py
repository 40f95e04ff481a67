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


def consecutive_dates(first: str, days: int) -> list[str]:
    start = date.fromisoformat(first)
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


def demo_dates(settings: Settings, days: int | None = None) -> list[str]:
    return consecutive_dates(settings.demo.start, days or settings.demo.days)


SHUTDOWN_GRACE_S = 120  # how long `airflow dags test` may take to exit once its run has ended


def run_dag(settings: Settings, env: dict, dag_id: str, ds: str, conf: str | None = None) -> RunResult:
    """One DAG run through Airflow with the executor; prints a progress line as tasks finish."""
    db = stack.airflow_home(settings) / "airflow.db"
    log = settings.state_dir / "logs" / f"dagrun-{dag_id}-{ds}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = _last_run_pk(db, dag_id)
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
    except sqlite3.Error:
        return None
    return _run_progress(db, dag_id, run[0]) if run else None


def _run_progress(db: Path, dag_id: str, run_id: str) -> str | None:
    try:
        with _connect(db) as con:
            rows = con.execute(
                "select task_id, map_index, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id)
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
    monitoring: MonitoringDemo | None = None
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
                monitoring = _monitoring_demo(settings, env, ds)
                results += monitoring.results
            if settings.demo.deep and result.state == "success":
                results += _deep_demo(settings, env, ds)
    print_summary(settings, results, time.monotonic() - t0)
    if monitoring:
        print_monitoring_summary(settings, monitoring)
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
    print(f"  Airflow UI: `make up`, then {settings.airflow.url}/dags/features and /dags/training")
    print(f"              (user {stack.ADMIN_USER}, {stack.password_hint(settings)})")
    print(f"  MLflow UI : `make up`, then {settings.mlflow.server_url} (experiments `features` and `training`)")
    print(f"  Task logs : {settings.state_dir / 'logs'} and {stack.airflow_home(settings) / 'logs'}")


# -- monitoring: held-out rows as daily traffic through the serving API, the monitoring DAG each day,
# -- and the retraining run it triggers ------------------------------------------------------------


@dataclass
class MonitoringDemo:
    results: list[RunResult]  # one monitoring run per replayed day, then the triggered training run
    report: dict  # alerts.detection_report + the traffic and the triggered runs
    path: Path  # where the report was written (JSON)


def replay_dates(settings: Settings) -> list[str]:
    return consecutive_dates(settings.demo.monitoring.start, settings.demo.monitoring.days)


def serving_settings(settings: Settings) -> Settings:
    """The settings the in-process prediction API runs with: the registry through the MLflow server
    (the artifacts of models the server logged resolve only through it)."""
    from dataclasses import replace

    return replace(settings, mlflow=replace(settings.mlflow, tracking_uri=settings.mlflow.server_url))


def replay_traffic(settings: Settings, trained_ds: str) -> list[dict]:
    """Held-out rows of gold up to ``trained_ds`` through the real API, one simulated day at a time."""
    from pipelines.serving import replay

    cfg = settings.demo.monitoring
    lake = Lake(settings.lake_root)
    rows = replay.held_out(lake, settings.features.dataset, trained_ds, seed=settings.seed)
    with replay.in_process(serving_settings(settings)) as (client, service):
        traffic = replay.replay_days(
            client,
            service,
            rows,
            replay_dates(settings),
            rows_per_day=cfg.rows_per_day,
            drift_from=cfg.drift_from,
            drift=cfg.drift,
            lake=lake,
            model=settings.monitoring.model,
            labels_dataset=settings.monitoring.labels_dataset,
            seed=settings.seed,
        )
    return traffic.to_dict("records")


def triggered_runs(db: Path, dag_id: str, after: int) -> list[dict]:
    """Runs of ``dag_id`` created after row ``after`` by another DAG's TriggerDagRunOperator."""
    with _connect(db) as con:
        rows = con.execute(
            "select run_id, state, conf, triggered_by from dag_run where dag_id = ? and id > ? order by id",
            (dag_id, after),
        ).fetchall()
    out = []
    for run_id, state, conf, triggered_by in rows:
        if str(triggered_by).lower() != "operator":
            continue
        conf = json.loads(conf) if isinstance(conf, str | bytes) else conf
        out.append({"run_id": run_id, "state": state, "conf": conf})
    return out


def _is_paused(db: Path, dag_id: str) -> bool:
    with _connect(db) as con:
        row = con.execute("select is_paused from dag where dag_id = ?", (dag_id,)).fetchone()
    return bool(row[0]) if row else True


def _run_state(db: Path, dag_id: str, run_id: str) -> str | None:
    try:
        with _connect(db) as con:
            row = con.execute("select state from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def run_triggered(settings: Settings, env: dict, dag_id: str, run_id: str, ds: str, timeout_s: float) -> RunResult:
    """Let Airflow's scheduler run a DAG run that waits queued (``airflow dags test`` runs only its own run):
    unpause the DAG, run a scheduler until the run ends, then pause the DAG again if it was paused."""
    db = stack.airflow_home(settings) / "airflow.db"
    paused = _is_paused(db, dag_id)
    t0 = time.monotonic()
    state = None
    if paused:
        stack.set_paused(env, dag_id, False)
    try:
        with stack.scheduler(settings, env):
            shown = None
            while (state := _run_state(db, dag_id, run_id)) not in ("success", "failed"):
                if time.monotonic() - t0 > timeout_s:
                    state = f"still {state} after {timeout_s:.0f}s"
                    break
                status = _run_progress(db, dag_id, run_id)
                if status and status != shown:
                    print(f"  {dag_id} {run_id}  {status}  ({time.monotonic() - t0:.0f}s)", flush=True)
                    shown = status
                time.sleep(1)
    finally:
        if paused:
            stack.set_paused(env, dag_id, True)
    log = stack.airflow_home(settings) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    return RunResult(dag_id, ds, state or "not found", time.monotonic() - t0, run_id, log=log)


def monitoring_outputs(settings: Settings, db: Path, result: RunResult, traffic: dict | None) -> dict:
    from pipelines.monitoring import alerts

    out = {
        "traffic": traffic["rows"] if traffic else 0,
        "drift injected": "yes" if traffic and traffic["drifted"] else "no",
    }
    stored = alerts.read(Lake(settings.lake_root), settings.monitoring.model, result.ds)
    if stored is not None:
        out["alerts"] = len(stored)
        if len(stored):
            out["kinds"] = "/".join(sorted(set(stored["kind"])))
    if result.run_id:
        with _connect(db) as con:
            row = con.execute(
                "select state from task_instance where dag_id = 'monitoring' and run_id = ? and task_id = 'trigger_training'",
                (result.run_id,),
            ).fetchone()
        out["trigger_training"] = row[0] if row else "-"
    return out


def registered_by(settings: Settings, dataset: str, airflow_run_id: str) -> dict:
    """The model version a training run registered (its tags say which run) and what the registry decided."""
    from mlflow import MlflowClient

    name = f"{dataset}_classifier"
    client = MlflowClient(settings.mlflow.server_url)
    mine = [
        v for v in client.search_model_versions(f"name = '{name}'") if v.tags.get("airflow_run_id") == airflow_run_id
    ]
    if not mine:
        return {"registered": "nothing"}
    v = mine[0]
    return {
        "registered": f"{name} v{v.version} ({v.tags.get('algorithm')}, {v.tags.get('decision', '')})",
        **registry_outputs(settings, dataset),
    }


def _monitoring_demo(settings: Settings, env: dict, trained_ds: str) -> MonitoringDemo:
    """Replay, monitor every replayed day through Airflow, then run the training run monitoring triggered."""
    from pipelines.monitoring import alerts

    cfg = settings.demo.monitoring
    dates = replay_dates(settings)
    print(
        f"Replaying {cfg.rows_per_day} held-out rows a day through the prediction API for {dates[0]}..{dates[-1]}"
        f" (drift injected from {cfg.drift_from}: {dict(cfg.drift)})"
    )
    t0 = time.monotonic()
    traffic = {t["ds"]: t for t in replay_traffic(settings, trained_ds)}
    print(f"  {sum(t['rows'] for t in traffic.values())} predictions served and logged in {time.monotonic() - t0:.0f}s")

    db = stack.airflow_home(settings) / "airflow.db"
    before = _last_run_pk(db, "training")
    results, retrain = [], True
    for ds in dates:
        # One retraining is enough for the demo: once a day has triggered one, later days alert without
        # triggering another (`retrain` off), so no second run waits queued behind it.
        conf = json.dumps({"retrain": retrain, "training_conf": dict(cfg.retrain)})
        result = run_dag(settings, env, "monitoring", ds, conf=conf)
        result.outputs = monitoring_outputs(settings, db, result, traffic.get(ds))
        results.append(result)
        if result.state != "success":
            print(f"  monitoring {ds} ended {result.state}; log: {result.log}")
            break
        retrain = retrain and result.outputs.get("trigger_training") != "success"

    report = alerts.detection_report(Lake(settings.lake_root), settings.monitoring.model, dates, cfg.drift_from)
    report["drift"] = dict(cfg.drift)
    report["traffic"] = list(traffic.values())
    report["triggered_training_runs"] = triggered_runs(db, "training", before)
    report["retraining"] = None
    if report["triggered_training_runs"]:
        first = report["triggered_training_runs"][0]
        caused_by = next((d["ds"] for d in report["days"] if d["retrain"]), None)
        print(f"Monitoring {caused_by} triggered training run {first['run_id']}: running it with Airflow's scheduler")
        retrain = run_triggered(
            settings, env, "training", first["run_id"], first["conf"].get("ds", ""), cfg.retrain_timeout_s
        )
        dataset = settings.features.dataset
        retrain.outputs = {
            "caused by": f"monitoring {caused_by}",
            **training_outputs(settings, dataset, retrain.ds),
            **registered_by(settings, dataset, retrain.run_id),
        }
        results.append(retrain)
        report["retraining"] = {
            "caused_by": caused_by,
            "run_id": retrain.run_id,
            "conf": first["conf"],
            "state": retrain.state,
            "seconds": round(retrain.seconds, 1),
            **retrain.outputs,
        }
    path = settings.state_dir / "demo" / "monitoring.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    return MonitoringDemo(results, report, path)


def print_monitoring_summary(settings: Settings, demo: MonitoringDemo) -> None:
    r = demo.report
    print(f"\nMonitoring of the replayed traffic (drift injected from {r['drift_from']}: {r['drift']}):")
    print(f"  {'date':<11} {'drift':<6} {'alerts':>6}  {'alert kinds':<40} drifted features")
    for d in r["days"]:
        kinds = ", ".join(d["kinds"]) or "-"
        print(
            f"  {d['ds']:<11} {'yes' if d['drifted'] else 'no':<6} {d['alerts']:>6}  {kinds:<40} {', '.join(d['features']) or '-'}"
        )
    if r["drift_from"]:
        verdict = "detected on that date" if r["detected"] else "NOT detected on that date"
        print(f"  First alert: {r['first_alert'] or 'none'}; the drift injected from {r['drift_from']} was {verdict}.")
    print(
        f"  False alerts on the {r['undrifted_dates']} undrifted days: {r['false_alerts']}"
        + (f" (on {', '.join(r['false_alert_dates'])})" if r["false_alert_dates"] else " (target: none)")
    )
    runs = r["triggered_training_runs"]
    if not runs:
        print("  Monitoring triggered no training run.")
    else:
        t = r["retraining"]
        print(
            f"  Retraining caused by monitoring: the {t['caused_by']} run's trigger_training created training run "
            f"{t['run_id']} (conf {json.dumps(t['conf'])});\n    Airflow's scheduler ran it: {t['state']} in "
            f"{t['seconds']:.0f}s; registered {t.get('registered', 'nothing')}; champion now {t.get('champion', '-')}"
        )
        if any(d["retrain"] for d in r["days"] if d["ds"] > t["caused_by"]):
            print("  (later alerting days ran with retrain off: one retraining per demo)")
    print(f"  Report: {demo.path}")
    print(
        f"  Alerts: {Lake(settings.lake_root).uri('monitoring')}/<model>_alerts, MLflow experiment `monitoring`,"
        f" Airflow UI {settings.airflow.url}/dags/monitoring (`make up`)"
    )
