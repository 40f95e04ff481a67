"""The prediction log's journal: rows acknowledged before a kill -9 are written by the next process, exactly once.

Each test runs the logger in a real child process (``python -c``) and kills it with SIGKILL; a logger
in the test process, on the same lake and journal folder, then recovers what the child acknowledged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines import faults
from pipelines.lake import Lake
from pipelines.serving import predlog

REPO = Path(__file__).resolve().parents[3]
# The child logs rows 1, 3, 7, 2, ... at a time (up to a limit, then waits) and prints how many it has logged after each log() returned.
CHILD = textwrap.dedent(
    """
    import itertools, sys
    from datetime import UTC, datetime
    from pipelines.lake import Lake
    from pipelines.serving import predlog

    lake, journal, durability, batch, interval, limit = sys.argv[1:7]
    log = predlog.PredictionLogger(
        Lake(lake), "m", int(batch), float(interval), durability=durability, journal_dir=journal
    ).start()
    ts = datetime(2026, 1, 1, 10, tzinfo=UTC)
    n = 0
    for size in itertools.cycle([1, 3, 7, 2]):
        if n >= int(limit):
            print("idle", flush=True)
            sys.stdin.read()  # wait to be killed
        log.log([{predlog.TS: ts, predlog.UNIT_ID: str(n + i), predlog.PROBABILITY: 0.5, "x": n + i}
                 for i in range(size)])
        n += size
        print(n, flush=True)
    """
)
RECOVER = textwrap.dedent(
    """
    import sys
    from pipelines.lake import Lake
    from pipelines.serving import predlog

    lake, journal = sys.argv[1:3]
    predlog.PredictionLogger(Lake(lake), "m", durability="journal", journal_dir=journal).start().close()
    """
)


def _child(code: str, *args, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def _acknowledged(proc: subprocess.Popen, at_least: int) -> int:
    """Rows the child has acknowledged (log() returned) by the time it printed ``at_least`` of them or went idle."""
    acked = 0
    for line in proc.stdout:
        if line.strip() == "idle":
            break
        acked = int(line)
        if acked >= at_least:
            break
    return acked


def _recover(lake: Lake, journal: Path) -> predlog.PredictionLogger:
    log = predlog.PredictionLogger(lake, "m", durability="journal", journal_dir=journal).start()
    log.close()
    return log


@pytest.mark.parametrize("durability", ["journal", "journal_fsync"])
def test_rows_acknowledged_before_kill9_are_recovered_once(tmp_path, durability):
    lake, journal = Lake(str(tmp_path / "lake")), tmp_path / "journal"
    proc = _child(CHILD, lake.root_uri, journal, durability, 20, 0.05, 10**9)
    acked = _acknowledged(proc, 400)  # killed while it keeps logging and its writer keeps writing
    _kill(proc)
    assert acked >= 400
    log = _recover(lake, journal)
    units = predlog.read_predictions(lake, "m")[predlog.UNIT_ID].astype(int)
    assert units.is_unique  # rows the dead writer already wrote are not written again
    assert set(range(acked)) <= set(units)
    assert log.rows_recovered > 0 and predlog.read_dead_letter(lake, "m").empty
    assert list((journal / "m").iterdir()) == []  # the dead process's journal is gone once written


def test_a_replay_killed_between_parquet_and_journal_delete_writes_no_row_twice(tmp_path):
    lake, journal, fault_dir = Lake(str(tmp_path / "lake")), tmp_path / "journal", tmp_path / "faults"
    proc = _child(CHILD, lake.root_uri, journal, "journal", 10**6, 3600, 52)  # one segment, not written
    assert _acknowledged(proc, 52) == 52
    _kill(proc)
    assert predlog.read_predictions(lake, "m").empty
    fault_dir.mkdir()
    (fault_dir / "predlog_journal_delete.armed").write_text("")
    replay = _child(RECOVER, lake.root_uri, journal, env={faults.FAULT_DIR_ENV: str(fault_dir)})
    deadline = time.monotonic() + 60
    while not (fault_dir / "predlog_journal_delete.paused").exists():
        assert replay.poll() is None and time.monotonic() < deadline, "the replay never reached the journal delete"
        time.sleep(0.05)
    _kill(replay)  # the Parquet file is written, the journal segment not yet deleted
    assert len(predlog.read_predictions(lake, "m")) == 52
    assert len(list((journal / "m").glob("*/*.jsonl"))) == 1
    _recover(lake, journal)
    units = predlog.read_predictions(lake, "m")[predlog.UNIT_ID].astype(int)
    assert sorted(units) == list(range(52))


def test_a_cut_or_unreadable_journal_line_is_dead_lettered_and_the_rest_recovered(tmp_path):
    lake, journal = Lake(str(tmp_path / "lake")), tmp_path / "journal"
    proc = _child(CHILD, lake.root_uri, journal, "journal", 10**6, 3600, 13)
    assert _acknowledged(proc, 13) == 13
    _kill(proc)
    [segment] = (journal / "m").glob("*/*.jsonl")
    with segment.open("ab") as f:  # as if edited by hand, then a write cut short by the crash
        f.write(b'{"_ts": "2026-01-01T10:00:00+00:00", "_unit_id": "huge", "x": 99999999999999999999}\n')
        f.write(b'{"_ts": "2026-01-01T10:00:00+00:00", "_unit_id": "surrogate", "x": "\\ud800"}\n')
        f.write(b'["not", "an", "entry"]\n')
        f.write(b'{"_ts": "2026-01-01T10:00:00+00:00", "_unit_id": "to')
    _recover(lake, journal)
    assert sorted(predlog.read_predictions(lake, "m")[predlog.UNIT_ID].astype(int)) == list(range(13))
    dead = predlog.read_dead_letter(lake, "m")
    reasons = dict(zip(dead[predlog.RAW].str.slice(0, 60), dead[predlog.REASON], strict=True))
    assert len(dead) == 4, reasons
    assert any("outside the 64-bit range" in r and "huge" in raw for raw, r in reasons.items()), reasons
    # A lone surrogate Arrow refuses: the batch is split until that row alone fails.
    assert any("cannot be written to Parquet" in r and "surrogate" in raw for raw, r in reasons.items()), reasons
    assert sum("unreadable journal line" in r for r in reasons.values()) == 2, reasons


def test_live_processes_keep_their_own_journals(tmp_path):
    lake, journal = Lake(str(tmp_path / "lake")), tmp_path / "journal"
    a = predlog.PredictionLogger(lake, "m", durability="journal", journal_dir=journal).start()
    b = predlog.PredictionLogger(lake, "m", durability="journal", journal_dir=journal).start()
    ts = "2026-01-01T10:00:00+00:00"
    a.log([{predlog.TS: ts, predlog.UNIT_ID: f"a{i}"} for i in range(5)])
    b.log([{predlog.TS: ts, predlog.UNIT_ID: f"b{i}"} for i in range(5)])
    assert len(list((journal / "m").iterdir())) == 2  # one folder each
    c = predlog.PredictionLogger(lake, "m", durability="journal", journal_dir=journal)
    assert c.recover() == 0  # both are alive (they hold their locks): nothing to adopt
    a.close()
    b.close()
    units = predlog.read_predictions(lake, "m")[predlog.UNIT_ID]
    assert sorted(units) == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]


def test_rows_the_lake_refused_at_shutdown_wait_in_the_journal(tmp_path):
    lake, journal = Lake(str(tmp_path / "lake")), tmp_path / "journal"
    blocker = tmp_path / "lake" / "predictions" / "m"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    log = predlog.PredictionLogger(lake, "m", durability="journal", journal_dir=journal).start()
    log.log([{predlog.TS: "2026-01-01T10:00:00+00:00", predlog.UNIT_ID: str(i)} for i in range(9)])
    log.close()
    assert log.backlog == 9 and len(list((journal / "m").glob("*/*.jsonl"))) == 1
    blocker.unlink()
    again = _recover(lake, journal)
    assert again.rows_recovered == 9
    assert sorted(predlog.read_predictions(lake, "m")[predlog.UNIT_ID].astype(int)) == list(range(9))
