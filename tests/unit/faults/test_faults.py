"""Fault points: inert unless armed, fire once, in the process that claims them."""

from __future__ import annotations

import os

import pyarrow as pa

from pipelines import faults
from pipelines.constants import GOLD
from pipelines.lake import Lake


def test_a_point_is_inert_without_the_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv(faults.FAULT_DIR_ENV, raising=False)
    (tmp_path / "p.armed").write_text("")
    faults.checkpoint("p")  # returns at once
    assert (tmp_path / "p.armed").exists()


def test_an_armed_point_fires_once_where_the_pattern_matches(tmp_path, monkeypatch):
    monkeypatch.setenv(faults.FAULT_DIR_ENV, str(tmp_path))
    (tmp_path / "p.armed").write_text(r"gold/.*ds=2026-01-01")
    faults.checkpoint("p", "silver/adult/ds=2026-01-01")  # no match: passes, stays armed
    assert (tmp_path / "p.armed").exists() and not (tmp_path / "p.paused").exists()
    (tmp_path / "p.release").write_text("")  # released in advance, so the call below returns
    faults.checkpoint("p", "_staging/gold/adult/ds=2026-01-01.tmp-1/part-00000.parquet")
    pid, detail = (tmp_path / "p.paused").read_text().splitlines()
    assert int(pid) == os.getpid() and detail.endswith("part-00000.parquet")
    assert not (tmp_path / "p.armed").exists()
    (tmp_path / "p.paused").unlink()
    faults.checkpoint("p", "gold/adult/ds=2026-01-01")  # fired already: no pause, no file
    assert not (tmp_path / "p.paused").exists()


def test_a_partition_write_sweeps_what_a_killed_attempt_left_in_staging(tmp_path):
    lake = Lake(str(tmp_path))
    stale = lake.path(f"{lake.staging(GOLD, 'adult', '2026-01-01')}.tmp-dead")
    os.makedirs(stale)
    with open(f"{stale}/part-00000.parquet.tmp-0123", "wb") as f:
        f.write(b"PAR1 half a file")
    lake.write_partition(GOLD, "adult", "2026-01-01", pa.table({"x": [1, 2]}), {})
    assert not os.path.exists(stale)
    assert lake.read_partition(GOLD, "adult", "2026-01-01").num_rows == 2
    assert os.listdir(lake.path(lake.staging(GOLD, "adult", "2026-01-01")).rsplit("/", 1)[0]) == []
