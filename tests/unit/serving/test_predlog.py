"""The prediction log: batches by size and by time, one file per date, nothing lost on close or on a failed write."""

from __future__ import annotations

import time

import pandas as pd

from pipelines.lake import Lake
from pipelines.serving import predlog


def _rows(n, day="2026-01-01", start=0):
    ts = pd.Timestamp(f"{day} 10:00", tz="UTC")
    return [
        {predlog.TS: ts, predlog.UNIT_ID: str(start + i), predlog.PROBABILITY: 0.5, "x": float(i)} for i in range(n)
    ]


def test_batches_by_size_and_dates(tmp_path):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=10, flush_interval_s=60).start()
    log.log(_rows(25))
    deadline = time.monotonic() + 10
    while log.rows_written < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.rows_written >= 10 and log.files_written >= 1  # the size trigger fired long before the 60 s timer
    log.log(_rows(3, day="2026-01-02", start=100))
    log.close()
    assert lake.list_partitions("predictions", "m") == ["2026-01-01", "2026-01-02"]
    frame = predlog.read_predictions(lake, "m")
    assert sorted(frame[predlog.UNIT_ID].astype(int)) == [*range(25), 100, 101, 102]
    assert len(predlog.read_predictions(lake, "m", "2026-01-02")) == 3


def test_time_based_flush(tmp_path):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=1000, flush_interval_s=0.2).start()
    log.log(_rows(4))
    deadline = time.monotonic() + 10
    while log.rows_written < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.rows_written == 4
    log.close()


def test_a_failed_write_keeps_its_rows(tmp_path, monkeypatch):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=1000, flush_interval_s=60)
    log.log(_rows(5))
    calls = []

    def broken(rows):
        calls.append(len(rows))
        raise OSError("disk full")

    monkeypatch.setattr(log, "_write", broken)
    assert log.flush() == 0 and log.backlog == 5
    monkeypatch.undo()
    assert log.flush() == 5 and log.backlog == 0 and calls == [5]
    assert len(predlog.read_predictions(lake, "m")) == 5
    assert predlog.read_predictions(lake, "none").empty
