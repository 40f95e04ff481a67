"""Benchmark: bronze -> silver -> gold throughput and peak memory of the real feature pipeline.

What it measures, per size (1M and 10M rows by default):

- pipeline: exactly what the features DAG runs for one logical date, in one process:
  ``features.land`` (simulate=False), ``features.ingest`` for each landing file (sequentially
  here; the DAG maps them in parallel), ``features.commit``, ``features.make_silver`` and
  ``features.make_gold``, on a throwaway lake in a temp dir. Rows/s = input rows / total s.
- I/O floor: the same landing files read with ``pq.read_table`` and written back with
  ``pq.write_table`` (default options), nothing else. Ratio = pipeline s / floor s.
- peak memory: each of the two runs in a fresh interpreter (this script re-invoked with
  ``--child``); its peak RSS comes from ``os.wait4`` after it exits.

Floor and pipeline runs alternate ``--repeat`` times (default 3) and the fastest of each counts,
which damps noise from other work on the machine; every run's time is kept in the JSON.

The input is real UCI Adult (``load_dataset("adult")``) replicated to N rows with noise (age
+-1, fnlwgt x0.8..1.25, hours_per_week +-2, all within the contract), keeping the real share of
'?' markers and of exact duplicates, written in chunks as 8 Parquet files under
``landing/adult/ds=2026-01-01/``. Generating it is not timed.

Run: ``python bench/features.py`` (or ``make bench``); ``--sizes 100000`` for a quick run;
``--profile`` prints the top functions of each pipeline stage (cProfile). Writes
``bench/results/features.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench._common import machine, write_report  # noqa: E402

DATASET, DS, BATCH = "adult", "2026-01-01", "bench"
FILES, CHUNK, SEED = 8, 500_000, 7
TARGET_RATIO, TARGET_PEAK_GIB = 3.0, 8.0
STAGES = ["land", "ingest", "commit", "silver", "gold"]


# ---- input data (not timed) ----------------------------------------------------------------
def _base_table() -> tuple[pa.Table, float]:
    """Real Adult as an Arrow table (plain string columns) and its share of exact duplicate rows."""
    from pipelines.datasets import load_dataset

    df = load_dataset(DATASET)
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    schema = pa.schema(
        [pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema]
    )
    return table.cast(schema), float(df.duplicated().mean())


def _noisy_chunk(base: pa.Table, n: int, dup_share: float, rng: np.random.Generator) -> pa.Table:
    """n rows drawn from ``base`` with numeric noise; a ``dup_share`` of them copy another row exactly."""
    t = base.take(rng.integers(0, base.num_rows, n))
    col = {name: t.column(name).to_numpy() for name in ("age", "fnlwgt", "hours-per-week")}
    noisy = {
        "age": np.clip(col["age"] + rng.integers(-1, 2, n), 17, 90),
        "fnlwgt": np.maximum(1, np.rint(col["fnlwgt"] * rng.uniform(0.8, 1.25, n))).astype(np.int64),
        "hours-per-week": np.clip(col["hours-per-week"] + rng.integers(-2, 3, n), 1, 99),
    }
    for name, values in noisy.items():
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.int64()))
    order = np.arange(n)
    dups = rng.choice(n, rng.binomial(n, dup_share), replace=False)
    order[dups] = rng.integers(0, n, len(dups))
    return t.take(order)


def make_landing(lake_root: Path, n: int) -> list[Path]:
    """Write n noisy Adult rows as FILES Parquet files in the landing folder, CHUNK rows at a time."""
    from pipelines.features.landing import landing_dir

    base, dup_share = _base_table()
    rng = np.random.default_rng(SEED)
    folder = lake_root / landing_dir(DATASET, DS)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, rows in enumerate(np.diff(np.linspace(0, n, FILES + 1).astype(int))):
        path = folder / f"{DATASET}-{DS}-{k:02d}.parquet"
        with pq.ParquetWriter(path, base.schema) as writer:
            for start in range(0, rows, CHUNK):
                writer.write_table(_noisy_chunk(base, min(CHUNK, rows - start), dup_share, rng))
        paths.append(path)
    return paths


# ---- measured runs (each in a fresh child process) --------------------------------------------
_PEAKS: dict[str, float] = {}  # child's peak RSS (GiB) so far, at the end of each stage


@contextmanager
def _stage(times: dict, name: str, profile: bool):
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    try:
        yield
    finally:
        if prof:
            prof.disable()
        times[name] = round(time.perf_counter() - start, 3)
        _PEAKS[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
        if prof:
            print(f"--- cProfile: {name} ({times[name]:.2f} s), top by own time", file=sys.stderr)
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(8)


def run_pipeline(lake_uri: str, profile: bool = False) -> dict:
    from pipelines import features
    from pipelines.config import load_settings
    from pipelines.features import bronze, contracts, gold, landing, silver  # noqa: F401 (import outside the clock)

    settings = load_settings({**os.environ, "MLP_LAKE_ROOT": lake_uri})
    t: dict[str, float] = {}
    with _stage(t, "land", profile):
        files = features.land(DATASET, DS, simulate=False, settings=settings)
    with _stage(t, "ingest", profile):
        parts = [features.ingest(DATASET, DS, f, BATCH, settings) for f in files]
    with _stage(t, "commit", profile):
        bronze_m = features.commit(DATASET, DS, parts, settings)
    with _stage(t, "silver", profile):
        silver_m = features.make_silver(DATASET, DS, settings)
    with _stage(t, "gold", profile):
        gold_m = features.make_gold(DATASET, DS, settings)
    counts = {
        "bronze": bronze_m["rows"],
        "silver": silver_m["rows"],
        "quarantined": silver_m["rows_quarantined"],
        "duplicates": silver_m["duplicates"],
        "gold": gold_m["rows"],
    }
    return {
        "stages_s": t,
        "peak_gib_after": dict(_PEAKS),
        "seconds": round(sum(t.values()), 3),
        "files": len(files),
        "rows": counts,
    }


def run_floor(landing: str, out: str) -> dict:
    import pipelines.lake  # noqa: F401  (the same Arrow allocator as the pipeline, for a fair floor)

    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    for path in sorted(Path(landing).glob("*.parquet")):
        pq.write_table(pq.read_table(path), f"{out}/{path.name}")
    return {"seconds": round(time.perf_counter() - start, 3)}


def _child(kind: str, *args: str) -> dict:
    """Run this script with ``--child`` in a fresh interpreter; its result plus its peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as res:
        proc = subprocess.Popen([sys.executable, __file__, "--child", kind, res.name, *args])
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{kind} run failed with exit code {proc.returncode}")
        out = json.load(res)
    out["peak_gib"] = round(usage.ru_maxrss / 2**20, 3)  # ru_maxrss is in KiB on Linux
    return out


def _reset(lake_root: Path, floor_out: Path) -> None:
    """Leave only the landing files, so every repeat starts like a first run of the date."""
    shutil.rmtree(floor_out, ignore_errors=True)
    for child in lake_root.iterdir():
        if child.name != "landing":
            shutil.rmtree(child)


def bench_size(n: int, tmp: Path, repeat: int, profile: bool) -> dict:
    """Best of ``repeat`` runs of the floor and the pipeline (interleaved), on the same landing files."""
    lake_root, floor_out = tmp / f"lake-{n}", tmp / f"floor-{n}"
    t0 = time.perf_counter()
    paths = make_landing(lake_root, n)
    gen_s = time.perf_counter() - t0
    landing_mib = sum(p.stat().st_size for p in paths) / 2**20
    floors, pipes = [], []
    for _ in range(repeat):
        _reset(lake_root, floor_out)
        floors.append(_child("floor", str(paths[0].parent), str(floor_out)))
        pipes.append(_child("pipeline", lake_root.as_uri(), "1" if profile else "0"))
    shutil.rmtree(lake_root)
    shutil.rmtree(floor_out)
    floor, pipe = min(floors, key=lambda r: r["seconds"]), min(pipes, key=lambda r: r["seconds"])
    return {
        "rows": n,
        "landing_files": len(paths),
        "landing_mib": round(landing_mib, 1),
        "generate_s": round(gen_s, 1),
        "rows_per_s": round(n / pipe["seconds"]),
        "pipeline_s": pipe["seconds"],
        "floor_s": floor["seconds"],
        "ratio_to_io_floor": round(pipe["seconds"] / floor["seconds"], 2),
        "peak_mem_gib": max(r["peak_gib"] for r in pipes),
        "peak_mem_gib_floor": max(r["peak_gib"] for r in floors),
        "stages_s": pipe["stages_s"],
        "peak_mem_gib_after_stage": pipe["peak_gib_after"],
        "row_counts": pipe["rows"],
        "all_runs_s": {"pipeline": [r["seconds"] for r in pipes], "floor": [r["seconds"] for r in floors]},
    }


# ---- report ------------------------------------------------------------------------------------
def label(n: int) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(results: list[dict]) -> None:
    head = (
        f"{'rows':>6} {'rows/s':>9} {'pipe s':>7} {'floor s':>7} {'ratio':>6} {'peak GiB':>8} {'floor GiB':>9}  "
        + " ".join(f"{s:>6}" for s in STAGES)
    )
    print(head)
    for r in results:
        print(
            f"{label(r['rows']):>6} {r['rows_per_s']:>9,} {r['pipeline_s']:>7.2f} {r['floor_s']:>7.2f} {r['ratio_to_io_floor']:>5.2f}x "
            f"{r['peak_mem_gib']:>8.2f} {r['peak_mem_gib_floor']:>9.2f}  "
            + " ".join(f"{r['stages_s'][s]:>6.2f}" for s in STAGES)
        )
    big = results[-1]
    print(
        f"targets at {label(big['rows'])}: ratio {big['ratio_to_io_floor']:.2f}x <= {TARGET_RATIO:g}x "
        f"{verdict(big['ratio_to_io_floor'] <= TARGET_RATIO)}; peak {big['peak_mem_gib']:.2f} GiB <= {TARGET_PEAK_GIB:g} GiB "
        f"{verdict(big['peak_mem_gib'] <= TARGET_PEAK_GIB)}"
    )
    print(
        f"(best of {len(big['all_runs_s']['pipeline'])} runs; ingest runs the {FILES} landing files one after another here, the DAG ingests them in parallel)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="row counts to run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "features.json")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile each pipeline stage (slows it down)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # internal: one measured run in this fresh process
        kind, result, *rest = args.child
        out = run_floor(*rest) if kind == "floor" else run_pipeline(rest[0], rest[1] == "1")
        Path(result).write_text(json.dumps(out))
        return

    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        results = []
        for n in sorted(args.sizes):
            print(f"{label(n)} rows ...", file=sys.stderr, flush=True)
            results.append(bench_size(n, tmp, args.repeat, args.profile))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(results)

    big = results[-1]
    report: dict = {}
    for r in results:
        report[f"rows_per_s_{label(r['rows'])}"] = r["rows_per_s"]
        report[f"ratio_to_io_floor_{label(r['rows'])}"] = r["ratio_to_io_floor"]
        report[f"peak_mem_gib_{label(r['rows'])}"] = r["peak_mem_gib"]
    report.update(
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        targets={
            "rows": big["rows"],
            "ratio_to_io_floor_max": TARGET_RATIO,
            "ratio_to_io_floor": verdict(big["ratio_to_io_floor"] <= TARGET_RATIO),
            "peak_mem_gib_max": TARGET_PEAK_GIB,
            "peak_mem_gib": verdict(big["peak_mem_gib"] <= TARGET_PEAK_GIB),
        },
        sizes={label(r["rows"]): r for r in results},
        notes="times are the best of `repeat` runs; ingest runs the landing files sequentially here (the DAG "
        "runs them in parallel); peak memory is the child process's max RSS; profiled runs are slower",
        repeat=args.repeat,
        profiled=args.profile,
        machine=machine(load_at_start, pyarrow=pa.__version__, numpy=np.__version__),
    )
    write_report(args.out, report)


if __name__ == "__main__":
    main()
