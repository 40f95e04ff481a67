"""Reliability: faults injected into real Airflow runs, plus the hardening checks of serving, ingest and the registry.

Parts (``--parts``, default all; each writes its keys into bench/results/reliability.json with the time it
was measured, keeping the keys of parts not run this time):

- ``faults``: runs ``tests/integration/reliability/test_faults.py`` (a private scheduler-driven Airflow
  stack and MLflow server; each test injects one fault into a real `features` DAG run) with
  ``MLP_RELIABILITY_LOG`` set, so that each test appends its outcome and its row reconciliation (rows in
  landing, counted with the csv module, against rows in gold + quarantine);
- ``requests``: a fuzzer over the prediction API's OpenAPI schema and hostile bodies against a real
  uvicorn server (``fuzz_requests``, ``server_errors_5xx``; bench/reliability_requests.py);
- ``predlog``: the prediction log under load, SIGKILLed and restarted, and poison rows
  (``log_rows_acknowledged``, ``log_rows_lost_after_kill9``, ``poison_rows_tried``,
  ``log_blocked_after_poison``; bench/reliability_predlog.py);
- ``ingest``: bad landing files next to good ones through bronze/silver/gold (``bad_files_tried``,
  ``bad_files_unquarantined``; bench/reliability_ingest.py);
- ``registry``: every DAG's register step run again as a retry would (``retried_registrations_duplicated``;
  bench/reliability_registry.py).

    .venv/bin/python bench/reliability.py [--parts requests predlog ingest registry faults]
"""

from __future__ import annotations

import argparse
import importlib
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
PARTS = ("requests", "predlog", "ingest", "registry", "faults")
TARGETS = {  # figure: its target
    "server_errors_5xx": 0,
    "log_rows_lost_after_kill9": 0,
    "log_blocked_after_poison": False,
    "bad_files_unquarantined": 0,
    "retried_registrations_duplicated": 0,
    "rows_lost": 0,  # faults: rows landed against gold + quarantine after each fault
}

HEADLINE = (  # the figures each part promotes to the top level of the JSON (all of them: under "parts")
    *TARGETS,
    "fuzz_requests",
    "log_rows_acknowledged",
    "poison_rows_tried",
    "bad_files_tried",
    "retried_registrations",
    "faults_injected",
    "runs_survived",
    "rows_landed",
    "unreconciled",
    "scenarios",
)


def faults() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "faults.jsonl"
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider", f"--basetemp={tmp}/pt"],
            cwd=ROOT,
            env={**os.environ, "MLP_RELIABILITY_LOG": str(log)},
        )
        seconds = time.monotonic() - t0
        found = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if not found:
        raise RuntimeError("no fault scenario ran; see the pytest output above")
    print(f"\n{'fault':<42} {'survived':>8} {'rows landed':>11} {'gold':>6} {'quarantined':>11} {'lost':>5}")
    for f in found:
        quarantined = f.get("quarantined_rows", 0) + f.get("rows_in_quarantined_files", 0)
        print(
            f"{f['fault']:<42} {'yes' if f['survived'] else 'NO':>8} {f.get('rows_landed', '-'):>11} "
            f"{f.get('gold_rows', '-'):>6} {quarantined:>11} {f.get('rows_lost', '-'):>5}"
        )
    return {
        "faults_injected": len(found),
        "runs_survived": sum(f["survived"] for f in found),
        "rows_landed": sum(f.get("rows_landed", 0) for f in found),
        "rows_lost": sum(abs(f.get("rows_lost", 0)) for f in found),
        "unreconciled": [f["fault"] for f in found if "rows_lost" not in f],
        "faults_seconds": round(seconds),
        "pytest_exit_code": proc.returncode,
        "scenarios": found,
    }


def run_part(name: str) -> dict:
    if name == "faults":
        return faults()
    sys.path.insert(0, str(Path(__file__).parent))
    return importlib.import_module(f"reliability_{name}").measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # the figures of parts not run now
    result = {k: v for k, v in kept.items() if k in (*HEADLINE, "parts", "measured_at_by_part")}
    measured = result.setdefault("measured_at_by_part", {})
    failed = []
    for name in args.parts:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            figures = run_part(name)
        except Exception as exc:  # noqa: BLE001 - one part failing must not hide the others' figures
            print(f"{name}: FAILED: {exc!r}", file=sys.stderr)
            failed.append(name)
            continue
        result.setdefault("parts", {})[name] = figures
        result.update({k: v for k, v in figures.items() if k in HEADLINE})
        measured[name] = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"{name}: {time.monotonic() - t0:.0f} s", flush=True)
    result["measured_at"] = max(measured.values()) if measured else None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\n{'figure':<36} {'value':>12}  target")
    for key, target in TARGETS.items():
        if key in result:
            verdict = "met" if result[key] == target else "MISSED"
            print(f"{key:<36} {result[key]!s:>12}  {target!s} ({verdict})")
    for key in ("fuzz_requests", "log_rows_acknowledged", "poison_rows_tried", "bad_files_tried", "faults_injected"):
        if key in result:
            print(f"{key:<36} {result[key]!s:>12}")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 1 if failed or result.get("parts", {}).get("faults", {}).get("pytest_exit_code") else 0


if __name__ == "__main__":
    sys.exit(main())
