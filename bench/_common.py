"""Shared by the benchmark scripts: the machine a result was measured on, and writing the result."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine(load_at_start: float, **versions: str) -> dict:
    """CPUs, Python, the given library versions, the platform and the 1-minute load average when the
    benchmark started (other work on the machine shows up in every figure)."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **versions,
        "platform": platform.platform(),
        "loadavg_1m_at_start": round(load_at_start, 2),
    }


def write_report(path: Path, report: dict) -> None:
    """Write ``report`` as indented JSON to ``path`` (its folder made) and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path}")
