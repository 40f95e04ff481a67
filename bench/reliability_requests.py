"""Reliability of the prediction API under hostile requests: a fuzzer against a real server process.

Setup (not timed): the serving tests' toy classifier (tests/unit/serving/registry_helpers.py: scaler,
one-hot, logistic regression, with its SHAP background) registered as champion in a throwaway MLflow
store (sqlite, temp dir), served by ``python -m pipelines serve`` in its own process on a free loopback
port, with the default settings.

Then ``tests.unit.serving.test_requests.fuzz`` sends ``--requests`` generated requests over one
keep-alive session: schemathesis cases from the API's OpenAPI schema (positive and negative) and
hostile bodies (NaN, 1e400, 5,000-digit numbers, lone surrogates in values, keys and unit ids, deep
nesting, wrong content types, batches around the fast path's 64 rows). Counted: responses by status,
5xx, and connection errors (a keep-alive connection reset under the client).

``measure()`` returns ``fuzz_requests``, ``server_errors_5xx``, ``fuzz_connection_errors``,
``fuzz_statuses``, ``fuzz_seconds`` and ``fuzz_failures`` (up to 10 requests that got a 5xx or lost the
connection); bench/reliability.py records them. Run alone: ``python bench/reliability_requests.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import _free_port, _server, _serving_env  # noqa: E402

REQUESTS = 3000


def measure(requests: int = REQUESTS, seed: int = 0) -> dict:
    """Fuzz a real server with ``requests`` generated requests; the counts and the failures."""
    import mlflow

    from tests.unit.serving.registry_helpers import NAME, log_version
    from tests.unit.serving.test_requests import fuzz

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.create_experiment("training", artifact_location=(tmp / "artifacts").as_uri())
        log_version(tracking_uri)
        env = _serving_env(tmp, tracking_uri, NAME)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "pipelines", "serve", "--port", str(port)]
        with _server(command, env, f"{url}/health", tmp / "server.log"):
            started = time.monotonic()
            found = fuzz(url, requests, seed=seed)
            seconds = time.monotonic() - started
    return {
        "fuzz_requests": found["requests"],
        "server_errors_5xx": found["server_errors_5xx"],
        "fuzz_connection_errors": found["connection_errors"],
        "fuzz_statuses": found["statuses"],
        "fuzz_seconds": round(seconds, 1),
        "fuzz_failures": found["failures"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=REQUESTS)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    result = measure(args.requests, args.seed)
    print(f"{'requests':>9} {'5xx':>5} {'conn errors':>12} {'seconds':>8}  statuses")
    print(
        f"{result['fuzz_requests']:>9} {result['server_errors_5xx']:>5} {result['fuzz_connection_errors']:>12} "
        f"{result['fuzz_seconds']:>8}  {json.dumps(result['fuzz_statuses'])}"
    )
    for failure in result["fuzz_failures"]:
        print("  ", json.dumps(failure)[:400])
    return 0 if result["server_errors_5xx"] == 0 and result["fuzz_connection_errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
