"""Reliability of the prediction log: a real API process under load, SIGKILLed mid-load, poison rows, durability cost.

Setup (not timed): the UCI Adult LightGBM pipeline of bench/serving.py registered as ``champion`` in a
throwaway MLflow store. For each ``serving.log_durability`` (journal_fsync, journal, memory), a real
server (``python -m pipelines serve``: uvicorn, the real app, the log into a temp lake) takes
``clients`` threads posting one row per request, each with its own unit_id:

1. (the default mode only) ``seconds`` of load during which one client sends poison rows (an integer
   above int64, lone surrogates in a value, a key and unit_id, NaN, Infinity, a list, an object); the
   load stops, and once GET /health shows an empty backlog the lake must hold every row answered 200
   so far (else ``log_blocked_after_poison``). The same poison is also handed to ``log()`` directly,
   between 400 good rows (the API may refuse it first, with a 422): every good row must reach the lake
   and every poison row the dead letter;
2. ``seconds`` of load, then SIGKILL to the server while the clients are sending; the server is started
   again on the same lake and state folder (it replays the journal) and stopped with SIGTERM; the lake
   is counted against the unit_ids of the 200 responses: rows lost, rows written twice.

Also per mode: requests/s of phase 2 and the cost of ``log()`` in this process (microseconds per call,
one 14-feature row per call, the writer thread running). ``measure()`` returns the figures (the keys
bench/reliability.py reports); ``python bench/reliability_predlog.py`` prints them as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import NAME, _adult, _free_port, _register, _server  # noqa: E402
from pipelines.config import LOG_DURABILITY, ServingSettings  # noqa: E402

DEFAULT = ServingSettings().log_durability


def _poison(row: dict) -> list[tuple[str, str]]:
    """(what, JSON body) for rows a JSON parser accepts and a naive Parquet writer chokes on."""
    ints = [c for c, v in row.items() if isinstance(v, int)]
    texts = [c for c, v in row.items() if isinstance(v, str)]
    cases = [
        ("int above int64", {ints[0]: 2**63}),
        ("lone surrogate in a value", {texts[0]: "\ud800"}),
        ("lone surrogate in a key", {"\udcff": "a"}),
        ("lone surrogate in unit_id", {"unit_id": "\ud800"}),
        ("NaN", {ints[1]: float("nan")}),
        ("Infinity", {ints[1]: float("inf")}),
        ("wrong type: list", {ints[2]: [1, 2]}),
        ("wrong type: object", {texts[1]: {"a": 1}}),
    ]
    return [(what, json.dumps({**row, "unit_id": f"poison-{i}", **bad})) for i, (what, bad) in enumerate(cases)]


class _Load:
    """Client threads posting one row per request; keeps the unit_ids answered 200."""

    def __init__(self, url: str, rows: list[dict], clients: int, prefix: str, poison: list[tuple[str, str]] = ()):
        self.url, self.rows, self.prefix = url, rows, prefix
        self.acked: list[str] = []
        self.poison_status: dict[str, int] = {}
        self.stop = threading.Event()
        self._ids = count()
        self._poison = list(poison)
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, i: int) -> None:
        import httpx

        with httpx.Client(timeout=30, headers={"content-type": "application/json"}) as client:
            while not self.stop.is_set():
                if i == 0 and self._poison:
                    what, body = self._poison.pop(0)
                    try:
                        self.poison_status[what] = client.post(self.url, content=body).status_code
                    except httpx.HTTPError:
                        return
                    continue
                n = next(self._ids)
                unit = f"{self.prefix}{n}"
                body = json.dumps({**self.rows[n % len(self.rows)], "unit_id": unit})
                try:
                    response = client.post(self.url, content=body)
                except httpx.HTTPError:
                    return  # the server is gone: this request was never acknowledged
                if response.status_code == 200:
                    self.acked.append(unit)

    def __enter__(self) -> _Load:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)
        self.seconds = time.monotonic() - self.started


def _wait_drained(url: str, limit_s: float = 60) -> dict:
    import httpx

    deadline = time.monotonic() + limit_s
    while True:
        health = httpx.get(url, timeout=10).json()
        if health["log_backlog"] == 0 or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def _log_cost(mode: str, rows: list[dict], calls: int, repeat: int = 3) -> float:
    """Microseconds per log() call of one row in this process, the writer thread running (best of ``repeat``
    runs: other load on the machine shows up less)."""
    from pipelines.lake import Lake
    from pipelines.serving import predlog

    meta = {predlog.REQUEST_ID: "0" * 32, predlog.MODEL: "m", predlog.VERSION: "1", predlog.ALIAS: "champion"}
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            log = predlog.PredictionLogger(Lake(f"{tmp}/lake"), "m", durability=mode, journal_dir=f"{tmp}/j").start()
            batches = [
                [{**meta, predlog.TS: datetime.now(UTC), predlog.UNIT_ID: str(i), predlog.PROBABILITY: 0.5, **rows[i]}]
                for i in range(calls)
            ]
            t0 = time.perf_counter()
            for batch in batches:
                log.log(batch)
            best = min(best, time.perf_counter() - t0)
            log.close()
    return best / calls * 1e6


def _poison_direct(rows: list[dict]) -> dict:
    """The same poison handed to log() directly (as the replay or another caller could), between good rows."""
    from pipelines.lake import Lake
    from pipelines.serving import predlog

    ints = [c for c, v in rows[0].items() if isinstance(v, int)]
    texts = [c for c, v in rows[0].items() if isinstance(v, str)]
    bad = [
        {ints[0]: 2**63},
        {texts[0]: "\ud800"},
        {"\udcff": "a"},
        {predlog.UNIT_ID: "\ud800"},
        {ints[1]: float("inf")},
        {ints[2]: [1, 2]},
        {texts[1]: {"a": 1}},
        {predlog.TS: "not a time"},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(f"{tmp}/lake")
        log = predlog.PredictionLogger(lake, "m", batch_rows=50, durability="journal", journal_dir=f"{tmp}/j").start()
        good = []
        for i, row in enumerate(rows[:400]):
            good.append({predlog.TS: datetime.now(UTC), predlog.UNIT_ID: f"g{i}", predlog.PROBABILITY: 0.5, **row})
            log.log([good[-1]])
            if i % 50 == 25:
                log.log([{**good[-1], predlog.UNIT_ID: f"bad{i}", **bad[(i // 50) % len(bad)]}])
        log.close()
        stored = set(predlog.read_predictions(lake, "m")[predlog.UNIT_ID])
        return {
            "tried": len(rows[:400]) // 50,
            "dead_lettered": len(predlog.read_dead_letter(lake, "m")),
            "blocked": not {g[predlog.UNIT_ID] for g in good} <= stored or log.backlog > 0,
        }


def _run_mode(mode: str, env: dict, rows: list[dict], clients: int, seconds: float, tmp: Path) -> dict:
    from pipelines.lake import Lake
    from pipelines.serving.predlog import read_dead_letter, read_predictions

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "MLP_SERVING__LOG_DURABILITY": mode, "MLP_LAKE_ROOT": str(tmp / "lake"), "MLP_STATE_DIR": str(tmp)}
    command = [sys.executable, "-m", "pipelines", "serve", "--port", str(port)]
    out: dict = {"acked": []}
    with _server(command, env, f"{url}/health", tmp / "server.log") as proc:
        if mode == DEFAULT:
            poison = _poison(rows[0])
            with _Load(f"{url}/predict", rows, clients, "p1-", poison) as load:
                time.sleep(seconds)
            health = _wait_drained(f"{url}/health")
            logged = set(read_predictions(Lake(str(tmp / "lake")), NAME)["_unit_id"])
            out.update(
                poison_tried=len(poison),
                poison_status=load.poison_status,
                blocked=health["log_backlog"] != 0 or not set(load.acked) <= logged,
                health_after_poison={k: v for k, v in health.items() if k.startswith("log_")},
            )
            out["acked"] += load.acked
        with _Load(f"{url}/predict", rows, clients, "p2-") as load:
            time.sleep(seconds)
            os.killpg(proc.pid, signal.SIGKILL)  # mid-load: the clients are still sending
        out["acked"] += load.acked
        out["rps"] = len(load.acked) / load.seconds
    log_bytes = (tmp / "server.log").stat().st_size
    with _server(command, env, f"{url}/health", tmp / "restart.log"):
        out["recovered"] = _wait_drained(f"{url}/health")["log_rows_recovered"]
    lake = Lake(str(tmp / "lake"))
    units = read_predictions(lake, NAME)["_unit_id"]
    acked = set(out["acked"])
    out.update(
        rows_acknowledged=len(acked),
        lost=len(acked - set(units)),
        duplicated=int(units.duplicated().sum()),
        dead_lettered=len(read_dead_letter(lake, NAME)),
        server_log_bytes=log_bytes,
    )
    return out


def measure(seconds: float = 5.0, clients: int = 8, calls: int = 2000) -> dict:
    """Run every durability mode against a real server; the figures bench/reliability.py reports."""
    X_train, X_test, y_train, _ = _adult()
    rows = X_test.to_dict("records")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_", "MLFLOW_"))}
    modes, poison = {}, {}
    load_at_start = os.getloadavg()[0]  # other work on the machine shows up in requests/s and microseconds
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        _register(tracking_uri, (tmp / "artifacts").as_uri(), X_train, y_train)
        env = {**base, "MLFLOW_TRACKING_URI": tracking_uri, "MLP_SERVING__MODEL": NAME}
        for mode in LOG_DURABILITY:
            (tmp / mode).mkdir()
            run = _run_mode(mode, env, rows, clients, seconds, tmp / mode)
            run.pop("acked")
            if mode == DEFAULT:
                poison = {k: run.pop(k) for k in ("poison_tried", "poison_status", "blocked", "health_after_poison")}
            run["log_us_per_call"] = _log_cost(mode, rows, calls if mode != "journal_fsync" else calls // 10)
            modes[mode] = run
    default = modes[DEFAULT]
    direct = _poison_direct(rows)
    return {
        "log_durability_default": DEFAULT,
        "log_rows_acknowledged": default["rows_acknowledged"],
        "log_rows_lost_after_kill9": default["lost"],
        "log_rows_duplicated_after_kill9": default["duplicated"],
        "poison_rows_tried": poison["poison_tried"] + direct["tried"],
        "poison_rows_status": poison["poison_status"],
        "poison_rows_dead_lettered": default["dead_lettered"] + direct["dead_lettered"],
        "log_blocked_after_poison": poison["blocked"] or direct["blocked"],
        "log_health_after_poison": poison["health_after_poison"],
        "log_server_log_bytes": default["server_log_bytes"],
        "log_durability_modes": modes,
        "log_load": {
            "clients": clients,
            "seconds_per_phase": seconds,
            "load_average_1m_at_start": load_at_start,
            "load_average_1m_at_end": os.getloadavg()[0],
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="seconds of load per phase")
    p.add_argument("--clients", type=int, default=8)
    args = p.parse_args()
    result = measure(args.seconds, args.clients)
    print(json.dumps({k: v for k, v in result.items() if k != "log_durability_modes"}, indent=2))
    print(f"\n{'durability':<14} {'req/s':>7} {'acked':>7} {'lost':>5} {'twice':>6} {'recovered':>9} {'us/log()':>9}")
    for mode, m in result["log_durability_modes"].items():
        print(
            f"{mode + (' *' if mode == DEFAULT else ''):<14} {m['rps']:>7.0f} {m['rows_acknowledged']:>7} "
            f"{m['lost']:>5} {m['duplicated']:>6} {m['recovered']:>9} {m['log_us_per_call']:>9.1f}"
        )
    print("* the default (serving.log_durability)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
