"""The bronze -> silver -> gold feature pipeline, one function per DAG task.

Each function loads settings when it runs (never at import), takes the dataset name and the
logical date, and returns a small JSON-able manifest (URIs, counts, hashes) for XCom.
"""

from __future__ import annotations

from pipelines.config import Settings, load_settings
from pipelines.steps import RunContext


def dataset_of(dataset: str | None, settings: Settings) -> str:
    """The Param ``dataset``; empty: ``features.dataset``."""
    return dataset or settings.features.dataset


def _run(dataset: str | None, ds: str, settings: Settings | None, **values) -> RunContext:
    settings = settings or load_settings()
    return RunContext.create(dataset_of(dataset, settings), ds, settings, **values)


def land(dataset: str | None, ds: str, simulate: bool = True, settings: Settings | None = None) -> list[str]:
    """Write the demo feed's files for ``ds`` (when simulating) and list every landing file of the date."""
    from pipelines.datasets import load_dataset
    from pipelines.features import landing, publish

    ctx = _run(dataset, ds, settings)
    settings, lake, dataset = ctx.settings, ctx.lake, ctx.dataset
    demo = settings.demo
    contract = _contract(settings, dataset) if simulate else None
    series = (contract.time, contract.label) if contract and contract.time else None
    if series:
        landing.snapshot_feed(lake, load_dataset(dataset, settings), dataset, ds, *series)
    elif simulate and landing.demo_day(ds, demo.start, demo.days) is not None:
        landing.simulate_feed(
            lake, load_dataset(dataset, settings), dataset, ds, demo.start, demo.days, demo.files_per_day
        )
    files = landing.landing_files(lake, dataset, ds)
    publish.clear_staging(lake, dataset, ds)
    return files


def _contract(settings: Settings, dataset: str):
    """The dataset's contract, or None when it has none yet (silver then says so)."""
    from pipelines.config import SettingsError
    from pipelines.features.contracts import ContractError, load_contract

    try:
        return load_contract(settings.dataset(dataset).contract or dataset)
    except (ContractError, SettingsError):
        return None


def ingest(dataset: str | None, ds: str, source: str, batch_id: str, settings: Settings | None = None) -> dict:
    """One landing file into bronze staging; a file that does not fit the dataset's contract is quarantined whole."""
    from pipelines.features import bronze

    ctx = _run(dataset, ds, settings)
    return bronze.ingest_file(ctx.lake, ctx.dataset, ds, source, batch_id, _contract(ctx.settings, ctx.dataset))


def commit(dataset: str | None, ds: str, parts: list[dict], settings: Settings | None = None) -> dict:
    from pipelines.features import bronze

    ctx = _run(dataset, ds, settings)
    return bronze.commit_bronze(ctx.lake, ctx.dataset, ds, list(parts))


def make_silver(dataset: str | None, ds: str, settings: Settings | None = None) -> dict:
    from pipelines.features.contracts import load_contract
    from pipelines.features.silver import build_silver

    ctx = _run(dataset, ds, settings)
    contract = load_contract(ctx.settings.dataset(ctx.dataset).contract or ctx.dataset)
    return build_silver(ctx.lake, contract, ctx.dataset, ds, ctx.settings.features.max_quarantine_fraction)


def make_gold(dataset: str | None, ds: str, settings: Settings | None = None) -> dict:
    from pipelines.features.contracts import load_contract
    from pipelines.features.gold import build_gold

    ctx = _run(dataset, ds, settings)
    contract = load_contract(ctx.settings.dataset(ctx.dataset).contract or ctx.dataset)
    return build_gold(ctx.lake, contract, ctx.dataset, ds, ctx.settings.features.split, ctx.seed)


def run(dataset: str, ds: str, simulate: bool = True, batch_id: str = "cli", settings: Settings | None = None) -> dict:
    """The whole chain in this process (CLI, tests, benchmarks); the DAG runs the same steps as tasks."""
    settings = settings or load_settings()
    files = land(dataset, ds, simulate, settings)
    parts = [ingest(dataset, ds, f, batch_id, settings) for f in files]
    return {
        "bronze": commit(dataset, ds, parts, settings),
        "silver": make_silver(dataset, ds, settings),
        "gold": make_gold(dataset, ds, settings),
    }


def log_quality(dataset: str | None, ds: str, airflow_run_id: str, settings: Settings | None = None) -> str:
    """Log the date's row counts and hashes to MLflow (experiment `features`); returns the MLflow run id."""
    from pipelines.constants import BRONZE, GOLD, SILVER
    from pipelines.tracking import log_feature_quality

    ctx = _run(dataset, ds, settings, airflow_run_id=airflow_run_id)
    manifests = {layer: ctx.lake.read_manifest(layer, ctx.dataset, ds) for layer in (BRONZE, SILVER, GOLD)}
    return log_feature_quality(ctx.settings, manifests, airflow_run_id)
