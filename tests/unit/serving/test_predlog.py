"""The prediction log: batches by size and by time, one file per date, poison rows dead-lettered, failed writes retried."""

from __future__ import annotations

import json
import logging
import time

import pandas as pd
import pytest

from pipelines.lake import Lake
from pipelines.serving import predlog

TS = pd.Timestamp("2026-01-01 10:00", tz="UTC")


def _rows(n, day="2026-01-01", start=0):
    ts = pd.Timestamp(f"{day} 10:00", tz="UTC")
    return [
        {predlog.TS: ts, predlog.UNIT_ID: str(start + i), predlog.PROBABILITY: 0.5, "x": float(i)} for i in range(n)
    ]


def _wait_written(log, rows: int, timeout_s: float = 10) -> None:
    """Until the writer thread has written ``rows`` rows (or the timeout: the test's asserts then say what)."""
    deadline = time.monotonic() + timeout_s
    while log.rows_written < rows and time.monotonic() < deadline:
        time.sleep(0.05)


def test_batches_by_size_and_dates(tmp_path):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=10, flush_interval_s=60).start()
    log.log(_rows(25))
    _wait_written(log, 10)
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
    _wait_written(log, 4)
    assert log.rows_written == 4
    log.close()


def test_a_failed_write_keeps_its_rows_and_says_so_once(tmp_path, caplog):
    lake = Lake(tmp_path.as_uri())
    blocker = tmp_path / "predictions" / "m"
    blocker.parent.mkdir()
    blocker.write_text("a file where the log's folder should be")  # every write fails: Not a directory
    log = predlog.PredictionLogger(lake, "m", batch_rows=1000, flush_interval_s=60)
    log.log(_rows(5))
    with caplog.at_level(logging.WARNING, logger=predlog.__name__):
        for _ in range(3):
            assert log.flush() == 0
        assert log.backlog == 5 and "Not a directory" in log.last_error
        assert log.stats()["log_write_failures"] == 3
        assert len(caplog.records) == 1, [r.message for r in caplog.records]  # one line per streak, no tracebacks
        assert caplog.records[0].exc_info is None and "retried with backoff" in caplog.records[0].message
        blocker.unlink()
        assert log.flush() == 5 and log.backlog == 0
        assert "works again after 3 failed tries" in caplog.records[-1].message
    assert len(predlog.read_predictions(lake, "m")) == 5
    assert predlog.read_dead_letter(lake, "m").empty  # a failed write is not the rows' fault
    assert predlog.read_predictions(lake, "none").empty


POISON = [
    ("capital_gain", {"capital_gain": 2**63}, "outside the 64-bit range"),
    ("city", {"city": "\ud800"}, "not valid UTF-8"),
    ("key", {"ci\udcffty": "a"}, "column name"),
    ("unit id", {predlog.UNIT_ID: "u\ud800"}, "_unit_id"),
    ("inf", {"x": float("inf")}, "not a finite number"),
    ("-inf", {"x": float("-inf")}, "not a finite number"),
    ("list", {"x": [1, 2]}, "a list value cannot be logged"),
    ("dict", {"x": {"a": 1}}, "a dict value cannot be logged"),
    ("bytes", {"x": b"\xff"}, "a bytes value cannot be logged"),
    ("ts", {predlog.TS: "yesterday-ish"}, "is not a timestamp"),
    ("int key", {1: "a"}, "column name 1 is not a string"),
]


def test_poison_rows_go_to_the_dead_letter_and_never_block_the_others(tmp_path):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=7, flush_interval_s=60)
    good = _rows(30)
    sent = []
    for i, (name, bad, _) in enumerate(POISON):
        row = {**good[i], predlog.UNIT_ID: f"bad-{name}", **bad}
        sent.append(row)
        log.log([good[i], row])  # a good row and a poison one in the same request
    log.log([{predlog.UNIT_ID: "no-ts", "x": 1.0}])
    log.log([{**good[-1], "x": float("nan")}, *good[len(POISON) : -1]])  # NaN is a missing value: kept as null
    log.flush()
    stored = predlog.read_predictions(lake, "m")
    assert sorted(stored[predlog.UNIT_ID].astype(int)) == list(range(30))
    assert stored.loc[stored[predlog.UNIT_ID] == "29", "x"].isna().all()
    dead = predlog.read_dead_letter(lake, "m")
    assert len(dead) == len(POISON) + 1 and log.rows_dead_lettered == len(POISON) + 1
    for (name, _, reason), raw in zip(POISON, [json.dumps(r, default=str) for r in sent], strict=True):
        [match] = dead.index[dead[predlog.RAW] == raw].tolist()
        assert reason in dead.loc[match, predlog.REASON], (name, dead.loc[match, predlog.REASON])
    assert "no _ts timestamp" in dead.loc[dead[predlog.RAW].str.contains("no-ts"), predlog.REASON].iloc[0]
    # The dead letter keeps the values as escaped text: the lone surrogate and the big int are there to see.
    assert dead[predlog.RAW].str.contains(r"\ud800", regex=False).any()
    assert dead[predlog.RAW].str.contains(str(2**63), regex=False).any()
    # ... and the log goes on.
    log.log(_rows(3, start=100))
    assert log.flush() == 3 and log.backlog == 0 and log.last_error is None
    log.close()


def test_a_batch_arrow_cannot_convert_is_split_and_nothing_is_lost(tmp_path):
    lake = Lake(tmp_path.as_uri())
    log = predlog.PredictionLogger(lake, "m", batch_rows=1000, flush_interval_s=60)
    rows = _rows(40)
    for r in rows[25:28]:
        r["x"] = "text"  # a column of numbers with a few strings: valid rows, but not one Arrow column
    log.log(rows)
    assert log.flush() == 40
    stored = predlog.read_predictions(lake, "m")
    assert sorted(stored[predlog.UNIT_ID].astype(int)) == list(range(40))
    assert log.files_written > 1 and predlog.read_dead_letter(lake, "m").empty


def test_unknown_durability_is_refused(tmp_path):
    lake = Lake(tmp_path.as_uri())
    with pytest.raises(ValueError, match="journal_fsync"):
        predlog.PredictionLogger(lake, "m", durability="disk")
    with pytest.raises(ValueError, match="journal_dir"):
        predlog.PredictionLogger(lake, "m", durability="journal")
