"""Fault injection points for the reliability tests; a no-op unless ``PIPELINES_FAULT_DIR`` is set.

A test arms a point by creating ``<PIPELINES_FAULT_DIR>/<point>.armed`` (its text, if any, is a regular
expression the point's ``detail`` must match, e.g. the path being written). The first process to
reach an armed point claims it (an atomic rename), writes ``<point>.paused`` (its pid and the detail), then
waits until ``<point>.release`` appears, or until the test kills it. An armed point fires once,
so the retry of a killed task runs straight through. This lets a test kill a task at a known
point of a write, or take a service down while a task is between two calls to it, without
timing guesses.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

FAULT_DIR_ENV = "PIPELINES_FAULT_DIR"
POLL_S = 0.1


def checkpoint(point: str, detail: str = "") -> None:
    """Pause here if a test armed ``point`` (and ``detail`` matches its pattern); otherwise return at once."""
    root = os.environ.get(FAULT_DIR_ENV)
    if not root:
        return
    armed = Path(root) / f"{point}.armed"
    try:
        pattern = armed.read_text().strip()
    except FileNotFoundError:
        return
    if pattern and not re.search(pattern, detail):
        return
    claimed = Path(root) / f"{point}.claimed-{os.getpid()}"
    try:
        os.rename(armed, claimed)  # atomic: exactly one process claims the point
    except FileNotFoundError:
        return
    claimed.write_text(f"{os.getpid()}\n{detail}\n")
    os.replace(claimed, Path(root) / f"{point}.paused")  # the test sees the pid and detail at once
    release = Path(root) / f"{point}.release"
    while not release.exists():
        time.sleep(POLL_S)
