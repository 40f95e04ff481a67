"""Scale-out: the same runs on the CeleryExecutor (Redis, N workers, one SIGKILLed) and on the LocalExecutor.

Each stack is the integration mode's (``pipelines.cli.live.live_stack``: PostgreSQL, MLflow server,
Airflow's four components, everything on 127.0.0.1 in a temp folder), started one after the other:

1. CeleryExecutor with ``--workers`` workers: ``features`` then ``training`` (the e2e tests' small
   config), timed (``wall_s``); then ``training`` again, with the worker running a ``train`` task
   SIGKILLed (``runs_succeeded_after_kill``, ``wall_s_kill_run``). ``workers_used`` counts the
   distinct host names among all task-instance tries, ``duplicate_versions`` the model versions a
   retry registered twice (MLflow registry, by ``airflow_run_id`` tag).
2. LocalExecutor (same parallelism): ``features`` then ``training``, timed (``wall_s_local``).

On one machine the workers share its cores, so Celery cannot be faster here; the figure says
what the broker and the extra processes cost. Run it alone (``flock /tmp/heavy.lock``).

    .venv/bin/python bench/scaleout.py [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.cli import scaleout  # noqa: E402
from pipelines.cli.live import live_stack  # noqa: E402
from tests.e2e.conftest import DS, FEATURES_CONF, RUN_TIMEOUT_S, TRAINING_CONF, stack_ports  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scaleout.json"
MODEL = "adult_classifier"
KILL_RUN_DATE = "2026-01-02"  # a second run needs its own logical date; TRAINING_CONF names the gold date


def _features_then_training(live) -> tuple[list, float]:
    t0 = time.monotonic()
    runs = [scaleout.run_dag(live, "features", DS, FEATURES_CONF, RUN_TIMEOUT_S["features"])]
    if runs[0].state == "success":
        runs.append(scaleout.run_dag(live, "training", DS, TRAINING_CONF, RUN_TIMEOUT_S["training"]))
    return runs, time.monotonic() - t0


def celery_part(root: Path, workers: int) -> dict:
    t0 = time.monotonic()
    with live_stack(root / "celery", **stack_ports(redis=True), celery_workers=workers) as live:
        started = time.monotonic() - t0
        runs, wall = _features_then_training(live)
        # The same training again (its own logical date, the same gold date in its conf), one worker SIGKILLed.
        kill = scaleout.run_with_worker_kill(live, "training", KILL_RUN_DATE, TRAINING_CONF, RUN_TIMEOUT_S["training"])
        tries = [t for run in [*runs, kill] for t in scaleout.task_tries(live, run.dag_id, run.run_id)]
        versions = scaleout.model_versions(live.mlflow_url, MODEL)
    return {
        "stack_start_s": round(started, 1),
        "runs": {r.dag_id: {"state": r.state, "s": round(r.seconds, 1)} for r in runs},
        "wall_s": round(wall, 1),
        "worker_killed": kill.killed is not None,
        "killed": {"worker": kill.killed, "task": kill.killed_task},
        "runs_succeeded_after_kill": int(kill.killed is not None and kill.state == "success"),
        "wall_s_kill_run": round(kill.seconds, 1),
        "workers_used": len({t["hostname"] for t in tries if t["hostname"]}),
        "task_tries": len(tries),
        "model_versions": len(versions),
        "duplicate_versions": scaleout.duplicate_versions(versions),
    }


def local_part(root: Path) -> dict:
    t0 = time.monotonic()
    with live_stack(root / "local", **stack_ports()) as live:
        started = time.monotonic() - t0
        runs, wall = _features_then_training(live)
    return {
        "stack_start_s": round(started, 1),
        "runs": {r.dag_id: {"state": r.state, "s": round(r.seconds, 1)} for r in runs},
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (2 to 4)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlp-scaleout-") as tmp:
        celery = celery_part(Path(tmp), args.workers)
        local = local_part(Path(tmp))
    result = {
        "executor": "CeleryExecutor",
        "workers": args.workers,
        "workers_used": celery["workers_used"],
        "worker_killed": celery["worker_killed"],
        "runs_succeeded_after_kill": celery["runs_succeeded_after_kill"],
        "duplicate_versions": celery["duplicate_versions"],
        "wall_s": celery["wall_s"],
        "wall_s_local": local["wall_s"],
        "celery": celery,
        "local": local,
        "config": {"ds": DS, "features": FEATURES_CONF, "training": TRAINING_CONF},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("executor", "CeleryExecutor", "LocalExecutor"),
        ("features + training wall s", celery["wall_s"], local["wall_s"]),
        *[
            (f"  {d} s", celery["runs"].get(d, {}).get("s"), local["runs"].get(d, {}).get("s"))
            for d in ("features", "training")
        ],
        ("stack start s", celery["stack_start_s"], local["stack_start_s"]),
        ("workers / used", f"{args.workers} / {celery['workers_used']}", "-"),
        (
            "training with a worker SIGKILLed",
            f"{celery['wall_s_kill_run']} s, succeeded {celery['runs_succeeded_after_kill']}",
            "-",
        ),
        ("duplicate model versions", celery["duplicate_versions"], "-"),
    ]
    for name, a, b in rows:
        print(f"{name:<36} {a!s:>28} {b!s:>16}")
    print(f"wrote {args.out}")
    ok = celery["runs_succeeded_after_kill"] == 1 and celery["duplicate_versions"] == 0 and celery["workers_used"] >= 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
