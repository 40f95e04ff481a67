"""A date's layers are published together, so that a failed run never leaves a half-replaced set.

A run writes bronze, silver and gold (and the quarantines of bronze and silver) to staging; each
step reads what the step before it finished there, or the published partition when staging holds
none (e.g. when only gold is rebuilt). Gold, the last step, publishes the chain it was built from,
bronze first and gold last. A run that fails before then leaves the date's published partitions
as they were (its quarantined rows stay in staging, to be looked at) and the next run's ``land``
clears them. A run killed while publishing is finished by its retry: the layers still in staging
are published then.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.constants import BRONZE, GOLD, ROW_NUMBER, SILVER, SOURCE_FILE
from pipelines.features.bronze import QUARANTINE_BRONZE
from pipelines.features.silver import QUARANTINE_SILVER
from pipelines.lake import Lake

LAYERS = (QUARANTINE_BRONZE, BRONZE, QUARANTINE_SILVER, SILVER, GOLD)  # the order they are published in


def clear_staging(lake: Lake, dataset: str, ds: str) -> None:
    """Forget what an earlier, unfinished or failed run of the date left in staging."""
    for layer in LAYERS:
        lake.delete_dir(lake.staging(layer, dataset, ds))


def publish_chain(lake: Lake, dataset: str, ds: str, silver: dict, silver_staged: bool) -> list[str]:
    """Publish the staged gold and what it was built from: the staged silver it read, and the staged
    bronze that silver read (matched by content hash); returns the layers published."""
    layers = LAYERS[4:]
    if silver_staged:
        bronze_staged = lake.has_staged(BRONZE, dataset, ds)
        built_on_it = (
            bronze_staged
            and lake.read_manifest(BRONZE, dataset, ds, staged=True)["content_hash"] == silver["bronze_content_hash"]
        )
        layers = LAYERS if built_on_it else LAYERS[2:]
    return [layer for layer in layers if lake.publish_staged(layer, dataset, ds)]


def rows_by_file(lake: Lake, dataset: str, ds: str) -> dict[str, dict]:
    """Where each landing file's rows went in the date's published set: ``gold`` (every silver row
    is in gold), ``quarantined`` (malformed lines, rows that broke the contract, or all the rows
    of a file refused whole, when they can be counted: None then) and ``refused`` (the reason a
    file was refused whole, else None), next to ``rows_in`` as bronze counted them."""
    manifest = lake.read_manifest(BRONZE, dataset, ds)
    refused = manifest["quarantined_files"]
    out = {
        source: {
            "rows_in": c["rows_in"],
            "gold": 0,
            "quarantined": c["quarantined"] if c["file_quarantined"] else 0,
            "refused": refused.get(source),
        }
        for source, c in manifest["by_source"].items()
    }
    rows = [
        lake.read_partition(SILVER, dataset, ds, columns=[SOURCE_FILE]),
        _row_records(lake.read_partition(QUARANTINE_BRONZE, dataset, ds)),
        lake.read_partition(QUARANTINE_SILVER, dataset, ds),
    ]
    for key, table in zip(("gold", "quarantined", "quarantined"), rows, strict=True):
        if SOURCE_FILE in table.column_names:  # an empty silver quarantine has no lineage columns
            for count in pc.value_counts(table.column(SOURCE_FILE).cast(pa.string())).to_pylist():
                out[count["values"]][key] += count["counts"]
    return out


def _row_records(quarantine: pa.Table) -> pa.Table:
    """The records of single rows in the bronze quarantine (a file refused whole has no row number)."""
    return quarantine.filter(pc.is_valid(quarantine.column(ROW_NUMBER))) if quarantine.num_columns else quarantine
