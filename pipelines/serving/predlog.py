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
import math
import os
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines import faults
from pipelines.config import LOG_DURABILITY
from pipelines.constants import QUARANTINE, RAW, REASON
from pipelines.lake import Lake

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
DEAD_LETTER = f"{QUARANTINE}/{PREDICTIONS}"  # rows that cannot be logged, with their reason
JOURNAL_DIR = "prediction_journal"  # under the state folder: one folder per model, then per process
# Metadata columns of a logged row (leading underscore: not a feature).
REQUEST_ID, TS, MODEL, VERSION, ALIAS, ARM, UNIT_ID, PROBABILITY = (
    "_request_id",
    "_ts",
    "_model",
    "_model_version",
    "_alias",
    "_arm",
    "_unit_id",
    "_probability",
)
META_COLUMNS = (REQUEST_ID, TS, MODEL, VERSION, ALIAS, ARM, UNIT_ID, PROBABILITY)
LOGGED_AT = "_logged_at"  # dead letter: when log() received the row
_INT64 = (-(2**63), 2**63 - 1)
_BACKOFF_S = (0.5, 30.0)  # first retry delay, doubling up to the second
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)  # journal lines (UTF-8 checked by .encode())


class BadRow(ValueError):
    """A row the log cannot store as it is (the message names the column and what is wrong)."""


@dataclass
class _Segment:
    """Rows closed together into one batch: one journal file, one Parquet file per date."""

    name: str
    path: Path | None = None  # journal file (None: memory only)
    fd: int | None = None  # open while rows are appended
    rows: list[dict] = field(default_factory=list)
    dead: list[list[str]] = field(default_factory=list)  # [reason, ds, raw text, logged at]
    opened: float = field(default_factory=time.monotonic)
    size: int = 0  # bytes journaled
    unjournaled: int = 0  # rows the journal write failed for (memory only)

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)


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
        self._current: _Segment | None = None
        self._closed: deque[_Segment] = deque()
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
                clean = _clean(row, cache)
                line = _ENCODER.encode(clean).encode()
            except (BadRow, UnicodeEncodeError) as exc:
                logged_at = logged_at or datetime.now(UTC).isoformat()
                entry = _dead(row, exc if isinstance(exc, BadRow) else _bad_text(row), logged_at)
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

    def _open(self) -> _Segment:
        """A new current segment (caller holds the lock); its journal file when there is a journal."""
        self._seq += 1
        seg = _Segment(f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{self._proc}-{self._seq:06d}")
        if self._root is not None:
            try:
                folder = self._own_dir()
                seg.path = folder / f"{seg.name}.jsonl"
                seg.fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
                if self.durability == "journal_fsync":
                    _fsync_dir(folder)
            except OSError as exc:
                self._journal_failed(exc, f"opening a journal segment in {self._root}")
        self._current = seg
        return seg

    def _append(self, seg: _Segment, data: bytes, rows: int) -> None:
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
                _fsync_dir(self._root)
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
            fd = _try_lock(folder / "lock")
            if fd is None:
                continue  # its process is alive
            segments = [_load(path) for path in sorted(folder.glob("*.jsonl"))]
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

    def _write_segment(self, seg: _Segment) -> int:
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
                reason = _safe(f"cannot be written to Parquet: {type(exc).__name__}: {exc}")
                return 0, [(reason, _raw(frame.iloc[0].to_dict()))]
        offset, half = offset or 0, len(frame) // 2
        n1, bad1 = self._write_rows(folder, stem, frame.iloc[:half], offset)
        n2, bad2 = self._write_rows(folder, stem, frame.iloc[half:], offset + half)
        return n1 + n2, bad1 + bad2

    def _forget(self, seg: _Segment) -> None:
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


# ---- rows ---------------------------------------------------------------------------------
def _clean(row: dict, cache: dict) -> dict:
    """The row with plain JSON values: numpy scalars unwrapped, NaN as null, ``_ts`` as an ISO UTC string."""
    if not isinstance(row, dict):
        raise BadRow(f"a row must be a dict of column: value, got {type(row).__name__}")
    if TS not in row:
        raise BadRow(f"the row has no {TS} timestamp")
    out = {}
    low, high = _INT64
    for key, value in row.items():
        if type(key) is not str:
            raise BadRow(f"column name {key!r} is not a string")
        kind = type(value)  # the common cases inline: this runs for every value of every request
        if key == TS:
            out[key] = _timestamp(value, cache)
        elif (
            kind is str
            or value is None
            or (kind is float and math.isfinite(value))
            or kind is bool
            or (kind is int and low <= value <= high)
        ):
            out[key] = value
        else:
            out[key] = _value(key, value)
    return out


def _value(key: str, value):
    """A plain JSON value (None, bool, int within int64, finite float, str), or BadRow naming the column."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is int:
        if not _INT64[0] <= value <= _INT64[1]:
            raise BadRow(f"column {key!r}: integer {value} is outside the 64-bit range")
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        if value != value:
            return None  # NaN: a missing value, read back as NaN
        raise BadRow(f"column {key!r}: {value} is not a finite number")
    if isinstance(value, np.generic):
        return _value(key, value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    for plain in (bool, int, float, str):  # subclasses (enums, ...)
        if isinstance(value, plain):
            return _value(key, plain(value))
    raise BadRow(
        f"column {key!r}: a {type(value).__name__} value cannot be logged (use a number, string, bool or null)"
    )


def _timestamp(value, cache: dict) -> str:
    if type(value) is datetime:  # the API's clock
        return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    try:
        return cache[value]
    except (KeyError, TypeError):
        pass
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadRow(f"{TS} {value!r} is not a timestamp: {exc}") from None
    if ts is pd.NaT:
        raise BadRow(f"{TS} is missing (NaT)")
    out = (ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)).isoformat()
    with contextlib.suppress(TypeError):
        cache[value] = out
    return out


def _bad_text(row: dict) -> BadRow:
    """Which column holds text that is not valid UTF-8 (lone surrogates: JSON escapes like \\ud800)."""
    for key, value in row.items():
        for what, text in (("column name", key), (f"column {key!a}", value)):
            if isinstance(text, str):
                try:
                    text.encode()
                except UnicodeEncodeError as exc:
                    return BadRow(f"{what} {text!a} is not valid UTF-8 text ({exc.reason} at {exc.start})")
    return BadRow("the row has text that is not valid UTF-8")


def _dead(row, reason: BadRow, logged_at: str) -> list[str]:
    """A dead-letter entry: [reason, ds, raw text, logged at]; ds is the row's date when it has one."""
    try:
        ds = _timestamp(row[TS], {})[:10]
    except (BadRow, KeyError, TypeError):
        ds = logged_at[:10]
    return [_safe(str(reason)), ds, _raw(row), logged_at]


def _raw(row) -> str:
    """The row as ASCII JSON text (lone surrogates escaped, big ints kept), else its repr."""
    try:
        return json.dumps(row, default=str)
    except (TypeError, ValueError):
        return ascii(row)


def _safe(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode()


# ---- journal files ------------------------------------------------------------------------
def _try_lock(path: Path) -> int | None:
    """An fd holding the lock at ``path``, or None when another process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _load(path: Path) -> _Segment:
    """A journal segment read back, its rows checked again; a line that is neither a row nor a dead-letter
    entry (a write cut short, an edit) goes to the dead letter."""
    seg, cache = _Segment(path.stem, path=path), {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        item = None
        try:
            item = json.loads(line)
            if isinstance(item, dict):
                seg.rows.append(_clean(item, cache))
            elif isinstance(item, list) and len(item) == 4 and all(isinstance(x, str) for x in item):
                seg.dead.append([_safe(x) for x in item])
            else:
                raise BadRow("neither a row nor a dead-letter entry")
        except ValueError as exc:  # bad JSON or UTF-8, BadRow
            now = datetime.now(UTC).isoformat()
            if isinstance(exc, BadRow) and isinstance(item, dict):
                seg.dead.append(_dead(item, exc, now))
            else:
                reason = _safe(f"unreadable journal line in {path.name} (a write cut short?): {exc}")
                seg.dead.append([reason, now[:10], line.decode("utf-8", "backslashreplace"), now])
    return seg


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
