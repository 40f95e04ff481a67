"""
### features: landing -> bronze -> silver -> gold

Turns the raw files of one logical date into model-ready features.

1. **land**: the raw CSV/Parquet files in `landing/<dataset>/ds=<date>/` (the demo feed writes
   that day's slice of UCI Adult there as several files).
2. **bronze_file** (one mapped task per landing file, in parallel): rows as they came (CSV
   values as text, Parquet in its own types), plus `_ingested_at`, `_source_file`, `_batch_id`. Malformed lines
   go to `quarantine/bronze` with the reason; so does, whole, a file that cannot be taken in (not UTF-8, no
   header line, columns that do not fit the contract, corrupt Parquet or gzip), and the other files go on.
3. **bronze_commit**: finishes this run's parts as the bronze partition, in staging.
4. **silver**: typed and normalised under the dataset's contract
   (`include/config/contracts/<dataset>.yaml`); broken rules and duplicates go to
   `quarantine/silver` with the reason. Rows in = rows out + rows quarantined. The run fails when
   more than `features.max_quarantine_fraction` of the rows landed were quarantined (bronze and silver).
5. **gold**: features, label and a train/valid/test split keyed on the stable row id, with a
   feature manifest; then bronze, silver and gold of the date are published together (a rerun
   replaces them; a run that fails earlier leaves the previous ones in place). Its Asset event
   schedules the training DAG.
6. **track**: row counts, quarantine counts and hashes of the date as an MLflow run
   (experiment `features`).

Every layer is Parquet partitioned by `ds=YYYY-MM-DD`, written atomically, with a `_manifest.json`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

BRONZE = Asset(name="bronze", uri="lake://bronze")
SILVER = Asset(name="silver", uri="lake://silver")
GOLD = Asset(name="gold", uri="lake://gold")


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.features", name, *args, **kwargs)


@dag(
    dag_id="features",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one date at a time: partitions of a dataset are written by one run
    tags=["features", "lake", "medallion"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    params={
        "dataset": Param(
            "adult", type="string", description="Dataset name from include/config/datasets.yaml; it needs a contract."
        ),
        "simulate_feed": Param(
            True,
            type="boolean",
            description="Write the demo feed's files for this date into landing before ingesting (dates outside the demo range land nothing).",
        ),
    },
)
def features():
    @task
    def land(params=None, ds=None) -> list[str]:
        return _step("land", params["dataset"], ds, simulate=params["simulate_feed"])

    @task(max_active_tis_per_dagrun=4)
    def bronze_file(source: str, params=None, ds=None, run_id=None) -> dict:
        return _step("ingest", params["dataset"], ds, source, batch_id=run_id)

    @task
    def bronze_commit(parts: list[dict], params=None, ds=None) -> dict:
        manifest = _step("commit", params["dataset"], ds, list(parts))
        return {k: manifest[k] for k in ("uri", "rows_in", "rows", "quarantined_rows", "content_hash")}

    @task
    def silver(bronze: dict, params=None, ds=None) -> dict:
        manifest = _step("make_silver", params["dataset"], ds)
        return {k: manifest[k] for k in ("uri", "rows_in", "rows", "rows_quarantined", "reasons", "content_hash")}

    @task(outlets=[BRONZE, SILVER, GOLD])  # gold publishes the three layers of the date together
    def gold(silver: dict, params=None, ds=None, outlet_events=None) -> dict:
        manifest = _step("make_gold", params["dataset"], ds)
        summary = {k: manifest[k] for k in ("dataset", "ds", "uri", "rows", "splits", "schema_hash", "content_hash")}
        outlet_events[GOLD].extra = summary
        return summary

    @task
    def track(gold: dict, params=None, ds=None, run_id=None) -> str:
        return _step("log_quality", params["dataset"], ds, run_id)

    parts = bronze_file.expand(source=land())
    track(gold(silver(bronze_commit(parts))))


features()
