"""DAG runs of the embedded stack, read and steered through Airflow's REST API (``live.AirflowApi``).

The demo and the end-to-end tests watch the runs ``airflow dags test`` makes, the runs another DAG
triggers and the task states through ``/api/v2``, never by reading Airflow's tables. A poll that
gets no answer (the API server busy, a run not created yet) is "nothing yet", never an error.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from pipelines.cli import stack
from pipelines.cli.live import AirflowApi, ApiError
from pipelines.config import Settings

DONE = ("success", "skipped")
FAILED = ("failed", "upstream_failed")
TERMINAL = ("success", "failed")
_NO_ANSWER = (ApiError, OSError)  # an HTTP error, or no connection (URLError is an OSError)
PAGE = 100  # Airflow caps a page at [api] maximum_page_limit (100 by default): the newest runs come first


def client(settings: Settings) -> AirflowApi:
    """The API of the stack's Airflow, as the admin user."""
    return AirflowApi(settings.airflow.url, stack.ADMIN_USER, stack.admin_password(settings) or "")


def logical_date(ds: str, hour: int = 0) -> str:
    """The logical date of a demo run: ``ds`` at ``hour`` UTC (runs of one DAG on one date differ by hour)."""
    return f"{date.fromisoformat(ds).isoformat()}T{hour:02d}:00:00+00:00"


def run_url(ui_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow UI page of a DAG run."""
    return f"{ui_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def run_of_date(api: AirflowApi, dag_id: str, ds: str, hour: int = 0) -> dict | None:
    """The run of ``dag_id`` at logical date ``ds`` ``hour``:00 UTC (``airflow dags test`` keeps one a
    logical date), None if none."""
    at = logical_date(ds, hour)
    try:
        runs = api.call("GET", f"dags/{dag_id}/dagRuns", logical_date_gte=at, logical_date_lte=at, order_by="-id")
    except _NO_ANSWER:
        return None
    return next(iter(runs["dag_runs"]), None)


def run_key(run: dict | None) -> tuple | None:
    """What tells a run from the one ``dags test`` replaces for the same date (same run id, other end)."""
    return None if run is None else (run["dag_run_id"], run.get("end_date"))


def _latest_runs(api: AirflowApi, dag_id: str) -> list[dict]:
    """The newest ``PAGE`` runs of ``dag_id``, oldest first (none while the DAG is not parsed yet: a 404)."""
    try:
        return api.call("GET", f"dags/{dag_id}/dagRuns", order_by="-id", limit=PAGE)["dag_runs"][::-1]
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def run_ids(api: AirflowApi, dag_id: str) -> set[str]:
    """The ids of the newest runs of ``dag_id`` so far (what ``triggered_runs`` compares with)."""
    return {r["dag_run_id"] for r in _latest_runs(api, dag_id)}


def triggered_runs(api: AirflowApi, dag_id: str, before: set[str]) -> list[dict]:
    """Runs of ``dag_id`` another DAG's TriggerDagRunOperator created, not among ``before`` (oldest first)."""
    return [
        {"run_id": r["dag_run_id"], "state": r["state"], "conf": r.get("conf") or {}}
        for r in _latest_runs(api, dag_id)
        if r["dag_run_id"] not in before and str(r.get("triggered_by")).lower() == "operator"
    ]


def get_run(api: AirflowApi, dag_id: str, run_id: str) -> dict | None:
    try:
        return api.call("GET", f"dags/{dag_id}/dagRuns/{run_id}")
    except _NO_ANSWER:
        return None


def run_seconds(run: dict, since: float | None = None) -> float:
    """Seconds from ``since`` (epoch seconds: when it was triggered) or else from the run's start to its end."""
    end = datetime.fromisoformat(run["end_date"]).timestamp()
    return end - (since if since is not None else datetime.fromisoformat(run["start_date"]).timestamp())


def task_states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str | None]:
    """``task_id`` (``task_id[i]`` when mapped) -> state, for every task instance of the run."""
    tis = api.task_instances(dag_id, run_id)
    return {(f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]): t["state"] for t in tis}


def progress(api: AirflowApi, dag_id: str, run_id: str) -> str | None:
    """A progress line: ``[###..] 3/5 tasks done, running: a, b, failed: c``; None without an answer."""
    try:
        states = task_states(api, dag_id, run_id)
    except _NO_ANSWER:
        return None
    done = sum(1 for s in states.values() if s in DONE)
    running = sorted(t for t, s in states.items() if s == "running")
    failed = sorted({t.split("[")[0] for t, s in states.items() if s in FAILED})
    text = f"[{'#' * done}{'.' * (len(states) - done)}] {done}/{len(states)} tasks done"
    if running:
        text += f", running: {', '.join(running)}"
    if failed:
        text += f", failed: {', '.join(failed)}"
    return text


def is_paused(api: AirflowApi, dag_id: str) -> bool:
    return bool(api.call("GET", f"dags/{dag_id}")["is_paused"])


def set_paused(api: AirflowApi, dag_id: str, paused: bool) -> None:
    """Pause or unpause a DAG (the scheduler starts runs of unpaused DAGs only)."""
    api.call("PATCH", f"dags/{dag_id}", {"is_paused": paused})
