"""The prediction log's journal files: segments of JSON lines, the per-process lock, fsync of a folder.

A segment is one journal file whose rows are written to Parquet together (``predlog``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipelines.serving.logrows import BadRow, clean_row, dead_entry, safe_text


@dataclass
class Segment:
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


def try_lock(path: Path) -> int | None:
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


def load_segment(path: Path) -> Segment:
    """A journal segment read back, its rows checked again; a line that is neither a row nor a dead-letter
    entry (a write cut short, an edit) goes to the dead letter."""
    seg, cache = Segment(path.stem, path=path), {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        item = None
        try:
            item = json.loads(line)
            if isinstance(item, dict):
                seg.rows.append(clean_row(item, cache))
            elif isinstance(item, list) and len(item) == 4 and all(isinstance(x, str) for x in item):
                seg.dead.append([safe_text(x) for x in item])
            else:
                raise BadRow("neither a row nor a dead-letter entry")
        except ValueError as exc:  # bad JSON or UTF-8, BadRow
            now = datetime.now(UTC).isoformat()
            if isinstance(exc, BadRow) and isinstance(item, dict):
                seg.dead.append(dead_entry(item, exc, now))
            else:
                reason = safe_text(f"unreadable journal line in {path.name} (a write cut short?): {exc}")
                seg.dead.append([reason, now[:10], line.decode("utf-8", "backslashreplace"), now])
    return seg


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
