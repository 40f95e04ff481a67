"""The prediction log: every served row, journaled before the answer, written as Parquet files in the lake.

``log(rows)`` checks each row (ints within int64, strings valid UTF-8, floats finite (NaN is stored
as null, as pandas reads it back), scalars only, a parseable ``_ts``), appends the request's rows to
this process's journal (one write, plus an fsync under ``journal_fsync``; none under ``memory``) and
returns. A row that cannot be logged goes to the dead letter,
``quarantine/predictions/<model>/ds=<date>/`` (reason, raw text as ASCII JSON, time logged): it
never blocks the others. ``read_dead_letter`` reads it.

The journal is a folder per process, ``<journal_dir>/<model>/<process>/``, holding a lock that
process keeps and segments of JSON lines. A segment is closed once ``batch_rows`` rows are in it or
``flush_interval_s`` passed; a writer thread then writes it as
``predictions/<model>/ds=<date>/part-<segment>.parquet`` (atomic; ``ds`` is the UTC date of each
row's ``_ts``) and deletes it. Files are named after their segment, so writing a segment again
(a crash between the Parquet write and the delete) replaces the same files: no row twice. A batch
Arrow cannot convert is split until only the rows that fail alone are left: those are dead-lettered.
A failed write (disk full, permission) keeps the segment and is retried with backoff (0.5 s doubling
to 30 s), logged once per streak of failures.

``start()`` adopts the journals of processes that are gone (their lock is free: killed, crashed),
so rows acknowledged before a ``kill -9`` are written by the next process. ``close()`` writes
everything left; what it cannot write stays in the journal for the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipelines import faults
from pipelines.config import LOG_DURABILITY
from pipelines.constants import RAW, REASON  # noqa: F401 - re-exported
from pipelines.lake import Lake
from pipelines.serving.journal import Segment, fsync_dir, load_segment, try_lock
from pipelines.serving.logrows import (  # noqa: F401 - the columns are re-exported: readers use predlog.TS, ...
    ALIAS,
    ARM,
    DEAD_LETTER,
    JOURNAL_DIR,
    LOGGED_AT,
    META_COLUMNS,
    MODEL,
    PREDICTIONS,
    PROBABILITY,
    REQUEST_ID,
    TS,
    UNIT_ID,
    VERSION,
    BadRow,
    bad_text,
    clean_row,
    dead_entry,
    raw_text,
    safe_text,
)

log = logging.getLogger(__name__)

_BACKOFF_S = (0.5, 30.0)  # first retry delay, doubling up to the second
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)  # journal lines (UTF-8 checked by .encode())


class PredictionLogger:
    """One process's prediction log of one model (``durability``: journal_fsync | journal | memory)."""

    def __init__(
        self,
        lake: Lake,
        model: str,
        batch_rows: int = 500,
        flush_interval_s: float = 5.0,
        durability: str = "memory",
        journal_dir: Path | str | None = None,
    ):
        if durability not in LOG_DURABILITY:
            raise ValueError(f"serving.log_durability must be one of {list(LOG_DURABILITY)}, got {durability!r}")
        if durability != "memory" and journal_dir is None:
            raise ValueError(f"log_durability={durability!r} needs a journal_dir (a local folder)")
        self.lake, self.model = lake, model
        self.batch_rows, self.flush_interval_s = batch_rows, flush_interval_s
        self.durability = durability
        self._root = Path(journal_dir) / model if durability != "memory" else None
        self._proc = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._dir: Path | None = None  # this process's journal folder, made with the first segment
        self._lock_fd: int | None = None
        self._adopted: dict[Path, int] = {}  # journal folders of gone processes -> their lock
        self._seq = 0
        self._current: Segment | None = None
        self._closed: deque[Segment] = deque()
        self._lock = threading.Lock()  # current/closed segments
        self._io_lock = threading.Lock()  # one writer of segments at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0  # failed writes in a row
        self._retry_at = 0.0
        self._journal_failing = False
        self.rows_written = 0
        self.files_written = 0
        self.rows_dead_lettered = 0
        self.rows_recovered = 0
        self.last_error: str | None = None

    # ---- the request side ------------------------------------------------------------
    def start(self) -> PredictionLogger:
        """Adopt the journals of gone processes, then start the writer thread."""
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def log(self, rows: list[dict]) -> None:
        """Check and journal rows (dicts of metadata + feature values); returns once they are durable."""
        if not rows:
            return
        lines, good, dead, cache = [], [], [], {}
        logged_at = None
        for row in rows:
            try:
                clean = clean_row(row, cache)
                line = _ENCODER.encode(clean).encode()
            except (BadRow, UnicodeEncodeError) as exc:
                logged_at = logged_at or datetime.now(UTC).isoformat()
                entry = dead_entry(row, exc if isinstance(exc, BadRow) else bad_text(row), logged_at)
                dead.append(entry)
                line = json.dumps(entry).encode()
            else:
                good.append(clean)
            lines.append(line + b"\n")
        with self._lock:
            seg = self._current or self._open()
            if seg.fd is not None:
                self._append(seg, b"".join(lines), len(rows))
            seg.rows += good
            seg.dead += dead
            if len(seg) >= self.batch_rows:
                self._rotate()
                self._wake.set()

    @property
    def backlog(self) -> int:
        """Rows logged and not yet in Parquet or the dead letter."""
        with self._lock:
            return sum(map(len, self._closed)) + (len(self._current) if self._current else 0)

    def stats(self) -> dict:
        """For GET /health."""
        return {
            "log_durability": self.durability,
            "log_backlog": self.backlog,
            "log_rows_written": self.rows_written,
            "log_rows_dead_lettered": self.rows_dead_lettered,
            "log_rows_recovered": self.rows_recovered,
            "log_write_failures": self._failures,
            "log_last_error": self.last_error,
        }

    def _open(self) -> Segment:
        """A new current segment (caller holds the lock); its journal file when there is a journal."""
        self._seq += 1
        seg = Segment(f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{self._proc}-{self._seq:06d}")
        if self._root is not None:
            try:
                folder = self._own_dir()
                seg.path = folder / f"{seg.name}.jsonl"
                seg.fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
                if self.durability == "journal_fsync":
                    fsync_dir(folder)
            except OSError as exc:
                self._journal_failed(exc, f"opening a journal segment in {self._root}")
        self._current = seg
        return seg

    def _append(self, seg: Segment, data: bytes, rows: int) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(seg.fd, view) :]
            if self.durability == "journal_fsync":
                os.fdatasync(seg.fd)
            seg.size += len(data)
            if self._journal_failing:
                self._journal_failing = False
                log.warning("prediction log: journal %s is written again", seg.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(seg.fd, seg.size)  # no torn line in front of the next write
            seg.unjournaled += rows
            self._journal_failed(exc, f"writing journal {seg.path}")

    def _journal_failed(self, exc: OSError, doing: str) -> None:
        """Rows stay in memory (written to Parquet as usual, lost on a crash); said once per streak."""
        self._error(f"{doing}: {type(exc).__name__}: {exc}")
        if not self._journal_failing:
            self._journal_failing = True
            log.warning("prediction log: %s; rows are kept in memory only until it works again", self.last_error)

    def _error(self, text: str) -> None:
        self.last_error = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {text}"

    def _rotate(self) -> None:
        """Close the current segment (caller holds the lock): it is ready to be written."""
        seg, self._current = self._current, None
        if seg is None:
            return
        if seg.fd is not None:
            with contextlib.suppress(OSError):
                os.close(seg.fd)
            seg.fd = None
        self._closed.append(seg)

    def _own_dir(self) -> Path:
        """This process's journal folder, locked before it gets its name (so no one adopts it meanwhile)."""
        if self._dir is None:
            self._root.mkdir(parents=True, exist_ok=True)
            tmp = self._root / f".{self._proc}"
            tmp.mkdir()
            fd = os.open(tmp / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            tmp.rename(self._root / self._proc)
            if self.durability == "journal_fsync":
                fsync_dir(self._root)
            self._dir, self._lock_fd = self._root / self._proc, fd
        return self._dir

    # ---- recovery ----------------------------------------------------------------------
    def recover(self) -> int:
        """Queue the journal segments of processes that are gone (their lock is free); returns their rows."""
        if self._root is None or not self._root.is_dir():
            return 0
        rows = 0
        for folder in sorted(self._root.iterdir()):
            if (
                folder.name.startswith(".")
                or folder.name == self._proc
                or folder in self._adopted
                or not folder.is_dir()
            ):
                continue
            fd = try_lock(folder / "lock")
            if fd is None:
                continue  # its process is alive
            segments = [load_segment(path) for path in sorted(folder.glob("*.jsonl"))]
            segments = [s for s in segments if len(s)]
            if not segments:
                shutil.rmtree(folder, ignore_errors=True)
                os.close(fd)
                continue
            self._adopted[folder] = fd
            with self._lock:
                self._closed.extend(segments)
            found = sum(map(len, segments))
            rows += found
            log.warning("prediction log: recovering %d rows journaled by a process that is gone (%s)", found, folder)
        self.rows_recovered += rows
        return rows

    # ---- the writer ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(min(0.2, self.flush_interval_s))
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                seg = self._current
                if seg is not None and time.monotonic() - seg.opened >= self.flush_interval_s:
                    self._rotate()
                waiting = bool(self._closed)
            if waiting and time.monotonic() >= self._retry_at:
                self._write_closed()

    def flush(self) -> int:
        """Write the rows waiting now (one file per date and segment); returns how many went to Parquet."""
        with self._lock:
            self._rotate()
        return self._write_closed()

    def _write_closed(self) -> int:
        """Write the closed segments in order; stops at the first failed write (retried later with backoff)."""
        written = 0
        with self._io_lock:
            while True:
                with self._lock:
                    if not self._closed:
                        break
                    seg = self._closed[0]
                try:
                    written += self._write_segment(seg)
                except Exception as exc:  # noqa: BLE001 - I/O (disk full, permission) or a bug: kept, retried, in /health
                    self._write_failed(exc)
                    break
                with self._lock:
                    self._closed.popleft()
                self._forget(seg)
                if self._failures:
                    log.warning("prediction log: writing works again after %d failed tries", self._failures)
                    self._failures = 0
        return written

    def _write_failed(self, exc: Exception) -> None:
        self._failures += 1
        self._error(f"writing to {self.lake.uri(PREDICTIONS, self.model)}: {type(exc).__name__}: {exc}")
        delay = min(_BACKOFF_S[1], _BACKOFF_S[0] * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        if self._failures == 1:
            kept = "in the journal" if self._root is not None else "in memory"
            log.warning(
                "prediction log: %s; %d rows wait %s and are retried with backoff (up to %.0f s apart)",
                self.last_error,
                self.backlog,
                kept,
                _BACKOFF_S[1],
            )

    def _write_segment(self, seg: Segment) -> int:
        """The segment's rows as Parquet (one file per date, or pieces of it) and its dead rows; OSError: retry."""
        dead = list(seg.dead)
        written = 0
        if seg.rows:
            frame = pd.DataFrame(seg.rows)
            days = frame[TS].str.slice(0, 10)
            frame[TS] = pd.to_datetime(frame[TS], utc=True, format="ISO8601")
            for ds, part in frame.groupby(days, sort=True):
                n, bad = self._write_rows(f"{PREDICTIONS}/{self.model}/ds={ds}", f"part-{seg.name}", part)
                written += n
                dead += [[reason, ds, raw, datetime.now(UTC).isoformat()] for reason, raw in bad]
        for ds in sorted({d[1] for d in dead}):
            batch = [d for d in dead if d[1] == ds]
            table = pa.table(
                {
                    name: pa.array([d[i] for d in batch], pa.string())
                    for i, name in ((0, REASON), (2, RAW), (3, LOGGED_AT))
                }
            )
            self.lake.write_parquet(f"{DEAD_LETTER}/{self.model}/ds={ds}/part-{seg.name}.parquet", table)
        self.rows_written += written
        self.rows_dead_lettered += len(dead)
        return written

    def _write_rows(self, folder: str, stem: str, frame: pd.DataFrame, offset: int | None = None) -> tuple[int, list]:
        """Write rows as one file, else in halves (``<stem>-<offset>``); a lone row Arrow refuses is returned
        as (reason, raw text) for the dead letter. Same rows, same files: a second write replaces them."""
        try:
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            name = stem if offset is None else f"{stem}-{offset:06d}"
            self.lake.write_parquet(f"{folder}/{name}.parquet", table)
            self.files_written += 1
            return len(frame), []
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - anything Arrow cannot take is about the data: split it
            if len(frame) == 1:
                reason = safe_text(f"cannot be written to Parquet: {type(exc).__name__}: {exc}")
                return 0, [(reason, raw_text(frame.iloc[0].to_dict()))]
        offset, half = offset or 0, len(frame) // 2
        n1, bad1 = self._write_rows(folder, stem, frame.iloc[:half], offset)
        n2, bad2 = self._write_rows(folder, stem, frame.iloc[half:], offset + half)
        return n1 + n2, bad1 + bad2

    def _forget(self, seg: Segment) -> None:
        """Delete a written segment's journal file (and the folder of a gone process once it is empty)."""
        if seg.path is None:
            return
        faults.checkpoint("predlog_journal_delete", seg.name)  # tests kill a process between the two steps
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()
        folder = seg.path.parent
        if folder in self._adopted:
            with self._lock:
                pending = any(s.path is not None and s.path.parent == folder for s in self._closed)
            if not pending:
                shutil.rmtree(folder, ignore_errors=True)
                os.close(self._adopted.pop(folder))

    def close(self) -> None:
        """Stop the writer and write everything left; what cannot be written stays in the journal."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
        with self._lock:
            left = sum(map(len, self._closed))
            unjournaled = sum(s.unjournaled for s in self._closed)
        if left:
            where = (
                f"they stay in the journal under {self._root} and are written at the next start"
                if self._root is not None
                else "they are lost (serving.log_durability is memory)"
            )
            log.error("prediction log: %d rows could not be written (%s); %s", left, self.last_error, where)
            if unjournaled:
                log.error("prediction log: %d of them were never journaled and are lost", unjournaled)
        elif self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        for fd in [self._lock_fd, *self._adopted.values()]:
            if fd is not None:
                os.close(fd)
        self._lock_fd, self._dir, self._adopted = None, None, {}


# ---- reading ------------------------------------------------------------------------------
def read_predictions(lake: Lake, model: str, ds: str | None = None) -> pd.DataFrame:
    """Logged predictions of a model (one date, or all), oldest file first."""
    return _read(lake, PREDICTIONS, model, ds, META_COLUMNS)


def read_dead_letter(lake: Lake, model: str, ds: str | None = None) -> pd.DataFrame:
    """Rows the log could not store: reason, raw text (ASCII JSON) and when they were logged."""
    return _read(lake, DEAD_LETTER, model, ds, (REASON, RAW, LOGGED_AT))


def _read(lake: Lake, layer: str, model: str, ds: str | None, columns) -> pd.DataFrame:
    dates = [ds] if ds else lake.list_partitions(layer, model)
    frames = []
    for day in dates:
        for rel in lake.list_files(f"{layer}/{model}/ds={day}", suffixes=(".parquet",)):
            frames.append(lake.read_parquet(rel).to_pandas())
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)
