"""The monitoring part of the demo: held-out rows as daily traffic through the serving API, the
monitoring DAG each day, and the retraining run it triggers (run by Airflow's scheduler)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.cli import dagruns
from pipelines.cli.demo import RunResult, consecutive_dates, run_dag, run_triggered
from pipelines.cli.demo_outputs import monitoring_outputs, registered_by, training_outputs
from pipelines.config import Settings
from pipelines.lake import Lake


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


def monitoring_demo(settings: Settings, env: dict, trained_ds: str) -> MonitoringDemo:
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

    api = dagruns.client(settings)
    before = dagruns.run_ids(api, "training")
    results, retrain = [], True
    for ds in dates:
        # One retraining is enough for the demo: once a day has triggered one, later days alert without
        # triggering another (`retrain` off), so no second run waits queued behind it.
        conf = json.dumps({"retrain": retrain, "training_conf": dict(cfg.retrain)})
        result = run_dag(settings, env, "monitoring", ds, conf=conf, scheduled=True)
        result.outputs = monitoring_outputs(settings, result, traffic.get(ds))
        results.append(result)
        if result.state != "success":
            print(f"  monitoring {ds} ended {result.state}; log: {result.log}")
            break
        retrain = retrain and result.outputs.get("trigger_training") != "success"

    report = alerts.detection_report(Lake(settings.lake_root), settings.monitoring.model, dates, cfg.drift_from)
    report["drift"] = dict(cfg.drift)
    report["traffic"] = list(traffic.values())
    report["triggered_training_runs"] = dagruns.triggered_runs(api, "training", before)
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
