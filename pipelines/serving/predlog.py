"""The prediction log: every served row, batched in memory and written as Parquet files in the lake.

Rows go on a queue (the request does not wait for any I/O); a writer thread writes a file when
``batch_rows`` rows wait or ``flush_interval_s`` passed, as
``predictions/<model>/ds=<date>/part-<time>-<uuid>.parquet`` (atomic: temp file, then rename;
``ds`` is the UTC date of each row's timestamp). ``close()`` drains and writes what is left.
A failed write keeps its rows and is retried at the next flush.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from pipelines.lake import Lake

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
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


class PredictionLogger:
    def __init__(self, lake: Lake, model: str, batch_rows: int = 500, flush_interval_s: float = 5.0):
        self.lake, self.model = lake, model
        self.batch_rows, self.flush_interval_s = batch_rows, flush_interval_s
        self._queue: queue.Queue = queue.Queue()
        self._pending: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.RLock()
        self.rows_written = 0
        self.files_written = 0

    def start(self) -> PredictionLogger:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def log(self, rows: list[dict]) -> None:
        """Queue rows (dicts of metadata + feature values); returns at once."""
        for row in rows:
            self._queue.put(row)

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + len(self._pending)

    def _drain(self) -> None:
        while True:
            try:
                self._pending.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                item = self._queue.get(timeout=min(0.2, self.flush_interval_s))
                with self._write_lock:  # flush() may run in another thread and swap the list
                    self._pending.append(item)
            with self._write_lock:
                self._drain()
            if len(self._pending) >= self.batch_rows or (
                self._pending and time.monotonic() - last >= self.flush_interval_s
            ):
                self.flush()
                last = time.monotonic()

    def flush(self) -> int:
        """Write the rows waiting now (one file per date); returns how many were written."""
        with self._write_lock:
            self._drain()
            if not self._pending:
                return 0
            rows, self._pending = self._pending, []
            try:
                written = self._write(rows)
            except Exception:
                log.exception("prediction log: writing %d rows failed; retrying at the next flush", len(rows))
                self._pending = rows + self._pending
                return 0
            self.rows_written += written
            return written

    def _write(self, rows: list[dict]) -> int:
        frame = pd.DataFrame(rows)
        frame[TS] = pd.to_datetime(frame[TS], utc=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for ds, part in frame.groupby(frame[TS].dt.strftime("%Y-%m-%d"), sort=True):
            rel = f"{PREDICTIONS}/{self.model}/ds={ds}/part-{stamp}-{uuid.uuid4().hex}.parquet"
            self.lake.write_parquet(rel, pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False))
            self.files_written += 1
        return len(frame)

    def close(self) -> None:
        """Stop the writer and write everything still queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def read_predictions(lake: Lake, model: str, ds: str | None = None) -> pd.DataFrame:
    """Logged predictions of a model (one date, or all), oldest file first."""
    dates = [ds] if ds else lake.list_partitions(PREDICTIONS, model)
    frames = []
    for day in dates:
        for rel in lake.list_files(f"{PREDICTIONS}/{model}/ds={day}", suffixes=(".parquet",)):
            frames.append(lake.read_parquet(rel).to_pandas())
    if not frames:
        return pd.DataFrame(columns=list(META_COLUMNS))
    return pd.concat(frames, ignore_index=True)
