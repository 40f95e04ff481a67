"""Land a dataset's source file(s), as they are, for one logical date: ``python -m pipelines ingest``.

The files are written into a staging folder and swapped in as ``landing/<name>/ds=<date>/``
(``Lake.publish``), so landing a date again replaces what it held and never adds a second copy,
and a crash leaves the previous landing as it was. Unlike the demo feed, nothing is cut into
demo dates: the whole file is that date's batch.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.config import Settings
from pipelines.constants import LANDING
from pipelines.datasets import dataset_files
from pipelines.features.landing import landing_dir
from pipelines.lake import Lake


def landing_names(files: list[Path]) -> list[str]:
    """Names in landing: a folder's relative paths flattened, Parquet's codec suffix dropped
    (``x.parquet.brotli`` is a Parquet file), no leading '.' or '_' (landing skips those as temp files)."""
    root = Path(os.path.commonpath([p.parent for p in files]))
    names = []
    for path in files:
        name = "__".join(path.relative_to(root).parts)
        if ".parquet." in name.lower():
            name = name[: name.lower().index(".parquet.")] + ".parquet"
        names.append(name.lstrip("._") or "data")
    return names


def land_source(name: str, ds: str, settings: Settings) -> list[str]:
    """Copy the dataset's source file(s) into landing for ``ds``; returns the landed paths (lake-relative)."""
    files = dataset_files(name, settings)
    lake = Lake(settings.lake_root)
    stage, final = lake.staging(LANDING, name, ds), landing_dir(name, ds)
    lake.delete_dir(stage)  # what an interrupted attempt left
    names = landing_names(files)
    for path, target in zip(files, names, strict=True):
        lake.write_bytes(f"{stage}/{target}", path.read_bytes())
    lake.publish(stage, final)
    return [f"{final}/{n}" for n in names]
