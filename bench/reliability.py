"""Reliability: run the fault-injection tests and count faults injected, runs that survived, rows lost.

Runs ``tests/integration/reliability/test_faults.py`` (a private scheduler-driven Airflow stack
and MLflow server; each test injects one fault into a real `features` DAG run) with
``MLP_RELIABILITY_LOG`` set, so that each test appends its outcome and its row reconciliation
(rows in landing, counted with the csv module, against rows in gold + quarantine). Writes
bench/results/reliability.json and prints a table.

    .venv/bin/python bench/reliability.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reliability.json"
TESTS = "tests/integration/reliability/test_faults.py"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "faults.jsonl"
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider", f"--basetemp={tmp}/pt"],
            cwd=ROOT,
            env={**os.environ, "MLP_RELIABILITY_LOG": str(log)},
        )
        seconds = time.monotonic() - t0
        faults = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if not faults:
        print("no fault scenario ran; see the pytest output above", file=sys.stderr)
        return 1
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "faults_injected": len(faults),
        "runs_survived": sum(f["survived"] for f in faults),
        "rows_landed": sum(f.get("rows_landed", 0) for f in faults),
        "rows_lost": sum(abs(f.get("rows_lost", 0)) for f in faults),
        "unreconciled": [f["fault"] for f in faults if "rows_lost" not in f],
        "seconds": round(seconds),
        "pytest_exit_code": proc.returncode,
        "scenarios": faults,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'fault':<42} {'survived':>8} {'rows landed':>11} {'gold':>6} {'quarantined':>11} {'lost':>5}")
    for f in faults:
        quarantined = f.get("quarantined_rows", 0) + f.get("rows_in_quarantined_files", 0)
        print(
            f"{f['fault']:<42} {'yes' if f['survived'] else 'NO':>8} {f.get('rows_landed', '-'):>11} "
            f"{f.get('gold_rows', '-'):>6} {quarantined:>11} {f.get('rows_lost', '-'):>5}"
        )
    print(
        f"\nfaults injected {result['faults_injected']}, runs survived {result['runs_survived']}, "
        f"rows lost {result['rows_lost']} ({seconds:.0f} s); written to {RESULTS.relative_to(ROOT)}"
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
