"""Medallion storage: Parquet partitions by logical date, atomic writes, manifests.

Layout under the lake root (``file://`` or ``s3://``)::

    landing/<dataset>/ds=YYYY-MM-DD/<raw files>
    <layer>/<dataset>/ds=YYYY-MM-DD/part-*.parquet + _manifest.json
    quarantine/<stage>/<dataset>/ds=YYYY-MM-DD/...

Every file is written to a temporary name and renamed into place, and a partition is
published as a whole (staging folder swapped in), so a killed task never leaves a half
file or a half partition, and re-running a date replaces its partition instead of
appending to it. A partition can also be left finished in staging (``staged=True``) and
published later, so that several layers of a date are published only once all of them are
written (see pipelines/features/publish.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines import faults
from pipelines.constants import GOLD, MANIFEST_FILE, ROW_ID, ROW_NUMBER, STAGING

# pyarrow's default allocator here (mimalloc) made silver 1.8x slower at 10M rows than the
# system allocator (bench/features.py, 2 cores); ARROW_DEFAULT_MEMORY_POOL still wins when set.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())

_TMP_MARK = ".tmp-"
_OLD_MARK = ".old-"
# Fixed writer options, so the same rows always give the same bytes (and content hash).
PARQUET_OPTIONS = {"compression": "snappy"}
SEQUENTIAL_COLUMNS = (ROW_NUMBER,)
ROWS_PER_FILE = 2_000_000
UNIQUE_COLUMNS = (ROW_ID,)


def check_ds(ds: str) -> str:
    """Validate a logical date string (YYYY-MM-DD) before it becomes part of a path."""
    try:
        return date.fromisoformat(ds).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"logical date must look like YYYY-MM-DD, got {ds!r}") from None


def schema_hash(schema: pa.Schema) -> str:
    """sha256 of the column names and types (metadata ignored)."""
    text = "\n".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Lake:
    """A lake rooted at a URI; paths handed around are relative to the root."""

    root_uri: str

    @property
    def _fs_root(self) -> tuple[pafs.FileSystem, str]:
        return _filesystem(self.root_uri)

    @property
    def fs(self) -> pafs.FileSystem:
        return self._fs_root[0]

    def path(self, *parts: str) -> str:
        """Absolute path inside the filesystem for a path relative to the lake root."""
        root = self._fs_root[1].rstrip("/")
        return "/".join([root, *[p.strip("/") for p in parts if p]])

    def uri(self, *parts: str) -> str:
        return "/".join([self.root_uri.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def partition(self, layer: str, dataset: str, ds: str) -> str:
        return f"{layer}/{dataset}/ds={check_ds(ds)}"

    # ---- files -----------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def list_files(self, rel: str, suffixes: Iterable[str] = ()) -> list[str]:
        """Files directly under a folder (relative paths, sorted), skipping temp and hidden files."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        suffixes = tuple(suffixes)
        names = sorted(
            i.base_name
            for i in info
            if i.type == pafs.FileType.File
            and not i.base_name.startswith((".", "_"))
            and _TMP_MARK not in i.base_name
            and (not suffixes or i.base_name.lower().endswith(suffixes))
        )
        return [f"{rel}/{n}" for n in names]

    def list_partitions(self, layer: str, dataset: str) -> list[str]:
        """Logical dates that have a published partition, oldest first."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path(layer, dataset), allow_not_found=True))
        return sorted(
            i.base_name[3:]
            for i in info
            if i.type == pafs.FileType.Directory
            and i.base_name.startswith("ds=")
            and _TMP_MARK not in i.base_name
            and _OLD_MARK not in i.base_name
        )

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._atomic(rel, lambda stream: stream.write(data))

    def read_bytes(self, rel: str) -> bytes:
        """The file's bytes as stored (a .gz file stays compressed: pyarrow would inflate it by its name)."""
        with self.fs.open_input_stream(self.path(rel), compression=None) as f:
            return f.read()

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        # Chunks of one column share a dictionary once unified: smaller files, faster writes.
        table = table.unify_dictionaries()
        options = dict(PARQUET_OPTIONS)
        # Min/max statistics for numbers and times (what predicates filter on), not for text.
        options["write_statistics"] = [f.name for f in table.schema if not _is_text(f.type)]
        ints = {f.name for f in table.schema if pa.types.is_integer(f.type)}
        sequential = [c for c in SEQUENTIAL_COLUMNS if c in ints]
        unique = [c for c in UNIQUE_COLUMNS if c in ints]
        if sequential or unique:
            # Dictionary encoding cannot help columns of distinct values; counters delta-encode to almost nothing.
            options["use_dictionary"] = [c for c in table.column_names if c not in sequential and c not in unique]
            options["column_encoding"] = {
                **dict.fromkeys(sequential, "DELTA_BINARY_PACKED"),
                **dict.fromkeys(unique, "PLAIN"),
            }
        self._atomic(rel, lambda stream: pq.write_table(table, stream, **options))

    def read_parquet(self, rel: str, columns: list[str] | None = None, dictionary: bool = False) -> pa.Table:
        """Read one Parquet file; ``dictionary=True`` keeps string columns dictionary-encoded."""
        with self.fs.open_input_file(self.path(rel)) as f:
            pf = pq.ParquetFile(f)
            read_dictionary = None
            if dictionary:
                read_dictionary = [fld.name for fld in pf.schema_arrow if pa.types.is_string(fld.type)]
            if read_dictionary:
                f.seek(0)
                return pq.read_table(f, columns=columns, read_dictionary=read_dictionary)
            return pf.read(columns=columns)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def sha256(self, rel: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open_input_stream(self.path(rel), compression=None) as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        return digest.hexdigest()

    def delete_dir(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.delete_dir(self.path(rel))

    def _atomic(self, rel: str, write) -> None:
        """Write to a temporary sibling, then rename over the target."""
        final = self.path(rel)
        parent = final.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{final}{_TMP_MARK}{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(tmp) as stream:
                write(stream)
                faults.checkpoint("lake_write", final)  # reliability tests kill a task here, mid-write
            self.fs.move(tmp, final)
        except BaseException:
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)
            raise

    # ---- partitions ----------------------------------------------------------------------
    def staging(self, layer: str, dataset: str, ds: str) -> str:
        return f"{STAGING}/{self.partition(layer, dataset, ds)}"

    def folder(self, layer: str, dataset: str, ds: str, staged: bool = False) -> str:
        """A partition's folder: the published one, or its place in staging."""
        return self.staging(layer, dataset, ds) if staged else self.partition(layer, dataset, ds)

    def publish(self, staging_rel: str, final_rel: str) -> None:
        """Swap a fully written staging folder in as the partition (the old one is removed)."""
        fs, src, dst = self.fs, self.path(staging_rel), self.path(final_rel)
        fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
        self._sweep(dst)
        old = None
        if fs.get_file_info(dst).type != pafs.FileType.NotFound:
            old = f"{dst}{_OLD_MARK}{uuid.uuid4().hex}"
            fs.move(dst, old)
        fs.move(src, dst)
        if old:
            fs.delete_dir(old)

    def has_staged(self, layer: str, dataset: str, ds: str) -> bool:
        """True when staging holds a finished partition (one with its manifest) for the date."""
        return self.exists(f"{self.staging(layer, dataset, ds)}/{MANIFEST_FILE}")

    def publish_staged(self, layer: str, dataset: str, ds: str) -> bool:
        """Publish the finished staged partition of a date, if there is one; True when it did."""
        if not self.has_staged(layer, dataset, ds):
            return False
        self.publish(self.staging(layer, dataset, ds), self.partition(layer, dataset, ds))
        return True

    def write_partition(
        self, layer: str, dataset: str, ds: str, table: pa.Table, manifest: dict, staged: bool = False
    ) -> dict:
        """Write a table and its manifest into staging, then publish them as one partition.

        Large tables are cut into files of ROWS_PER_FILE rows written side by side (one per
        core). The manifest gets each file's rows and sha256, the schema hash and a content
        hash (sha256 over the files' hashes in name order). ``staged=True`` swaps the finished
        partition in at its staging place instead, for ``publish_staged`` to publish later.
        """
        self._sweep_stages(self.staging(layer, dataset, ds))
        stage = f"{self.staging(layer, dataset, ds)}{_TMP_MARK}{uuid.uuid4().hex}"
        count = max(1, -(-table.num_rows // ROWS_PER_FILE))
        names = [f"part-{i:05d}.parquet" for i in range(count)]

        def write(i: int) -> dict:
            part = table.slice(i * ROWS_PER_FILE, ROWS_PER_FILE)
            self.write_parquet(f"{stage}/{names[i]}", part)
            return {"rows": part.num_rows, "sha256": self.sha256(f"{stage}/{names[i]}")}

        with ThreadPoolExecutor(max_workers=min(count, os.cpu_count() or 1)) as pool:
            file_info = dict(zip(names, pool.map(write, range(count)), strict=True))
        manifest = {
            **manifest,
            "layer": layer,
            "dataset": dataset,
            "ds": ds,
            "uri": self.uri(self.partition(layer, dataset, ds)),
            "files": file_info,
            "rows": sum(f["rows"] for f in file_info.values()),
            "schema_hash": schema_hash(table.schema),
            "content_hash": hashlib.sha256("".join(f["sha256"] for f in file_info.values()).encode()).hexdigest(),
        }
        self.write_json(f"{stage}/{MANIFEST_FILE}", manifest)
        self.publish(stage, self.folder(layer, dataset, ds, staged))
        return manifest

    def read_manifest(self, layer: str, dataset: str, ds: str, staged: bool = False) -> dict:
        rel = f"{self.folder(layer, dataset, ds, staged)}/{MANIFEST_FILE}"
        if not self.exists(rel):
            raise FileNotFoundError(
                f"no {layer} partition for {dataset} on {ds} at {self.uri(rel)}; run the features DAG for that date first"
            )
        return self.read_json(rel)

    def read_partition(
        self,
        layer: str,
        dataset: str,
        ds: str,
        dictionary: bool = False,
        columns: list[str] | None = None,
        staged: bool = False,
    ) -> pa.Table:
        """All Parquet files of one published (or ``staged``) partition, concatenated in file-name order."""
        manifest = self.read_manifest(layer, dataset, ds, staged)
        part = self.folder(layer, dataset, ds, staged)
        tables = [self.read_parquet(f"{part}/{name}", columns, dictionary) for name in sorted(manifest["files"])]
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]

    def _sweep_stages(self, staging_rel: str) -> None:
        """Remove staging folders that a killed attempt at this partition left behind (one writer per date)."""
        parent, name = self.path(staging_rel).rsplit("/", 1)
        for info in self.fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True)):
            if info.base_name.startswith(name + _TMP_MARK) and info.type == pafs.FileType.Directory:
                self.fs.delete_dir(info.path)

    def _sweep(self, dst: str) -> None:
        """Remove leftovers of an interrupted publish next to ``dst``."""
        parent, name = dst.rsplit("/", 1)
        for info in self.fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True)):
            if info.base_name.startswith(name + _OLD_MARK) and info.type == pafs.FileType.Directory:
                self.fs.delete_dir(info.path)


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)


@lru_cache(maxsize=16)
def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path


def triggered_for(dataset: str, events: list[dict] = ()) -> bool:
    """False when a run was triggered only by gold Asset events of other datasets (the DAG then skips).

    ``events`` are the ``extra`` dicts of the triggering events (each names its ``dataset``); a
    run with none (manual, scheduled) is always for ``dataset``.
    """
    events = list(events)
    return not events or any(e.get("dataset") == dataset for e in events)


def run_date(lake: Lake, datasets: list[str], wanted: str, events: list[dict], logical_ds: str | None) -> str | None:
    """The date a DAG run works on: the form's ``wanted`` date, else the latest triggering gold event of
    one of ``datasets``, else the run's logical date, else the latest gold partition of ``datasets[0]``;
    None when there is no gold for it at all (the caller says what to run first)."""
    for candidate in (
        wanted,
        *[e.get("ds") for e in reversed(list(events)) if e.get("dataset") in datasets],
        logical_ds,
    ):
        if candidate:
            return check_ds(candidate)
    dates = lake.list_partitions(GOLD, datasets[0])
    return dates[-1] if dates else None
