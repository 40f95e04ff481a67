"""Benchmark: latency of POST /predict (one row) over HTTP on 127.0.0.1, the API on uvicorn.

Setup (not timed): a throwaway MLflow store (sqlite, temp dir) with a registered model aliased
``champion``: a scikit-learn Pipeline (one-hot + scaling, HistGradientBoosting) on synthetic rows
shaped like UCI Adult (6 numeric, 8 categorical features), logged like the training DAG logs
models (signature, ``pyfunc_predict_fn="predict_proba"``). ``--tracking-uri`` and ``--model``
benchmark a real registry's champion instead (rows are then drawn from its SHAP background).

The API runs as ``python -m pipelines serve`` in its own process (one uvicorn worker) on a free
loopback port, with the prediction log on (a temp lake). The client sends ``--warmup`` requests,
then ``--requests`` timed ones, one at a time over one keep-alive connection (httpx), each a
different row. Reported: p50/p90/p99/max/mean latency in ms (client side, request sent to
response parsed) and requests/s; written to ``bench/results/serving.json`` with ``measured_at``.

Run: ``python bench/serving.py`` (``--requests 500`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

NAME = "bench_classifier"
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
]


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.integers(0, 100_000 if c == "fnlwgt" else 90, n).astype("int64") for c in NUMERIC})
    for i, c in enumerate(CATEGORICAL):
        frame[c] = rng.choice([f"{c}_{k}" for k in range(3 + 4 * i)], n)
    return frame


def _register(tracking_uri: str, artifacts: str) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = _rows(5000)
    y = ((X["age"] > 40) ^ (X["sex"] == "sex_1")).astype(int)
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=100))]).fit(X, y)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.create_experiment("training", artifact_location=artifacts)
    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X.head(5), model.predict_proba(X.head(5))[:, 1]),
            input_example=X.head(5),
            serialization_format="cloudpickle",  # as training.run._log_model
            pyfunc_predict_fn="predict_proba",
            pip_requirements=["scikit-learn"],
        )
    version = mlflow.register_model(info.model_uri, NAME)
    MlflowClient(tracking_uri).set_registered_model_alias(NAME, "champion", version.version)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--tracking-uri", help="benchmark this registry's champion instead of a throwaway model")
    p.add_argument("--model", default=NAME)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "serving.json"))
    args = p.parse_args()
    import httpx

    load_at_start = os.getloadavg()[0]  # other work on the machine shows up in the tail latencies

    with tempfile.TemporaryDirectory() as tmp:
        tracking_uri = args.tracking_uri or f"sqlite:///{tmp}/mlflow.db"
        if not args.tracking_uri:
            _register(tracking_uri, Path(tmp, "artifacts").as_uri())
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "MLFLOW_"))}
        env.update(
            {
                "MLFLOW_TRACKING_URI": tracking_uri,
                "MLP_STATE_DIR": str(Path(tmp, "state")),
                "MLP_LAKE_ROOT": str(Path(tmp, "lake")),
                "MLP_SERVING__MODEL": args.model,
            }
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                deadline = time.monotonic() + 120
                while True:
                    if server.poll() is not None:
                        raise SystemExit(f"the API exited: {server.stderr.read().decode()[-2000:]}")
                    try:
                        if client.get("/health").json().get("status") == "ok":
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("the API did not come up within 120 s")
                    time.sleep(0.2)
                features = [f["name"] for f in client.get("/model").json()["features"]]
                rows = _rows(args.warmup + args.requests, seed=1)[features].to_dict("records")
                for i in range(args.warmup):
                    client.post("/predict", json={**rows[i], "unit_id": f"w{i}"}).raise_for_status()
                times = []
                started = time.perf_counter()
                for i in range(args.warmup, args.warmup + args.requests):
                    t0 = time.perf_counter()
                    response = client.post("/predict", json={**rows[i], "unit_id": f"u{i}"})
                    response.raise_for_status()
                    response.json()
                    times.append((time.perf_counter() - t0) * 1000)
                wall = time.perf_counter() - started
                health = client.get("/health").json()
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = np.asarray(times)
    result = {
        "benchmark": "serving",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
        },
        "model": "throwaway HistGradientBoosting pipeline, 14 Adult-shaped features"
        if not args.tracking_uri
        else args.model,
        "requests": args.requests,
        "warmup": args.warmup,
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
            "mean": float(ms.mean()),
        },
        "requests_per_s": args.requests / wall,
        "prediction_log_rows_written_before_shutdown": health.get("log_rows_written"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_ms"]
    print(f"{'requests':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8}")
    print(
        f"{args.requests:>9} {lat['p50']:>8.2f} {lat['p90']:>8.2f} {lat['p99']:>8.2f} {lat['max']:>8.2f} "
        f"{result['requests_per_s']:>8.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
