"""
### features: landing -> bronze -> silver -> gold

Turns one logical date's raw files of a dataset (`landing/<dataset>/ds=<date>/`) into checked
bronze, silver and gold Parquet partitions (`ds=YYYY-MM-DD`, each with its `_manifest.json`),
published together; rows that break the dataset's contract go to quarantine with their reason.
Publishes the Asset `lake://gold`, which the model DAGs are scheduled on.

Tasks, Params and outputs: `docs/dags/features.md` in the repository.
"""

from __future__ import annotations

from _params import GOLD, dag_args
from airflow.sdk import Asset, dag, task

BRONZE = Asset(name="bronze", uri="lake://bronze")
SILVER = Asset(name="silver", uri="lake://silver")


@dag(
    **dag_args("features", __doc__, retry_delay_s=20),
    schedule="@daily",
    max_active_runs=1,  # one date at a time: partitions of a dataset are written by one run
    tags=["features", "lake", "medallion"],
)
def features():
    @task
    def land(params=None, ds=None) -> list[str]:
        from _steps import call

        from pipelines.datasets.land import land_for_run

        p = params
        return call(land_for_run, p["dataset"], ds, p["simulate_feed"], p["land_source"])

    @task(max_active_tis_per_dagrun=4)
    def bronze_file(source: str, params=None, ds=None, run_id=None) -> dict:
        from _steps import call

        from pipelines import features

        return call(features.ingest, params["dataset"], ds, source, batch_id=run_id)

    @task
    def bronze_commit(parts: list[dict], params=None, ds=None) -> dict:
        from _steps import call

        from pipelines import features

        manifest = call(features.commit, params["dataset"], ds, list(parts))
        return {k: manifest[k] for k in ("uri", "rows_in", "rows", "quarantined_rows", "content_hash")}

    @task
    def silver(bronze: dict, params=None, ds=None) -> dict:
        from _steps import call

        from pipelines import features

        manifest = call(features.make_silver, params["dataset"], ds)
        return {k: manifest[k] for k in ("uri", "rows_in", "rows", "rows_quarantined", "reasons", "content_hash")}

    @task(outlets=[BRONZE, SILVER, GOLD])  # gold publishes the three layers of the date together
    def gold(silver: dict, params=None, ds=None, outlet_events=None) -> dict:
        from _steps import call

        from pipelines import features

        manifest = call(features.make_gold, params["dataset"], ds)
        summary = {k: manifest[k] for k in ("dataset", "ds", "uri", "rows", "splits", "schema_hash", "content_hash")}
        outlet_events[GOLD].extra = summary
        return summary

    @task
    def track(gold: dict, params=None, ds=None, run_id=None) -> str:
        from _steps import call

        from pipelines import features

        return call(features.log_quality, params["dataset"], ds, run_id)

    parts = bronze_file.expand(source=land())
    track(gold(silver(bronze_commit(parts))))


features()
