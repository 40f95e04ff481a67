"""A folder of images, one sub-folder per class, as a pixel table (``dataset add NAME --kind images``).

Each PNG/JPEG under ``<folder>/<class>/`` is decoded, converted to grey (``channels`` 1) or colour
(3) and resized to the declared ``size`` (height, width); without one, every image must already
share one size (mixed sizes are refused, naming two files that differ). The table has a row per
file: ``file`` (relative path), ``label`` (the sub-folder), ``unreadable`` (why a file could not be
decoded, else null; silver quarantines such rows with the file and its reason), and ``px_0..``
(0..255, row-major, channels last). It is written once per folder state to the cache, so
``ingest`` lands the same table for the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageFolderError(DataError, ValueError):
    """A folder that does not hold class folders of images, or images of mixed sizes without a declared size."""


def image_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    return sorted(
        p
        for p in folder.glob("*/*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def is_image_folder(path: Path) -> bool:
    return Path(path).is_dir() and bool(image_files(path))


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'28x28' (height x width) or '28' (square)."""
    if not text:
        return None
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        size = tuple(int(p) for p in parts) if len(parts) == 2 else (int(parts[0]),) * 2
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 4 or max(size) > 512:
        raise ImageFolderError(f"--size must be HEIGHTxWIDTH (each 4..512), e.g. 28x28; got {text!r}")
    return size


def _decode(path: Path, size, channels: int):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8), None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, f"cannot decode {path.name}: {type(exc).__name__}: {exc}"


def folder_table(folder: Path, size=None, channels: int = 1) -> tuple[pd.DataFrame, list[int]]:
    """The pixel table of ``folder`` and the [height, width, channels] shape of its images."""
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise ImageFolderError(f"{folder} holds no PNG/JPEG image in class sub-folders (<folder>/<class>/<image>.png)")
    if channels not in (1, 3):
        raise ImageFolderError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    decoded = [(p, *_decode(p, size, channels)) for p in files]
    shapes = {}
    for p, arr, _ in decoded:
        if arr is not None:
            shapes.setdefault(arr.shape[:2], p)
    if len(shapes) > 1:
        (s1, f1), (s2, f2) = list(shapes.items())[:2]
        raise ImageFolderError(
            f"images of mixed sizes without a declared size: {f1.relative_to(folder)} is {s1[0]}x{s1[1]}, "
            f"{f2.relative_to(folder)} is {s2[0]}x{s2[1]}; pass --size HEIGHTxWIDTH to resize them all"
        )
    if not shapes:
        raise ImageFolderError(f"none of the {len(files)} image file(s) under {folder} could be decoded")
    h, w = size or next(iter(shapes))
    n_px = h * w * channels
    pixels = np.zeros((len(files), n_px), dtype=np.float64)
    unreadable = []
    for i, (_, arr, why) in enumerate(decoded):
        unreadable.append(why)
        if arr is None:
            pixels[i] = np.nan
        else:
            pixels[i] = arr.reshape(-1)
    frame = pd.DataFrame(pixels, columns=[f"px_{i}" for i in range(n_px)])
    meta = pd.DataFrame(
        {
            "file": [p.relative_to(folder).as_posix() for p in files],
            "label": [p.parent.name for p in files],
            "unreadable": pd.Series(unreadable, dtype="object"),
        }
    )
    frame = pd.concat([meta, frame.astype("Int64")], axis=1)
    return frame, [h, w, channels]


def folder_parquet(folder: Path, cache_dir: Path, size=None, channels: int = 1) -> Path:
    """``folder_table`` written once per folder state (names, sizes, times) and options to the cache."""
    folder = Path(folder)
    state = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in image_files(folder)]
    key = json.dumps({"folder": str(folder.resolve()), "state": state, "size": size, "channels": channels})
    path = Path(cache_dir) / "datasets" / "images" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.parquet"
    if path.exists():
        return path
    frame, _ = folder_table(folder, size, channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def image_options(source: str, options: dict) -> dict:
    """The entry's ``options`` for ``dataset add --kind images``: shape [height, width, channels], resize."""
    from pipelines.constants import REPO_ROOT

    size = parse_size(options.pop("size", None))
    channels = 3 if options.pop("colour", "grey") in ("colour", "color", "rgb") else 1
    path = Path(source)
    path = path if path.is_absolute() else REPO_ROOT / path
    if is_image_folder(path):
        if size is None:
            _, shape = folder_table(path, None, channels)  # refuses mixed sizes, naming two files
            return {"shape": shape, "resize": False}
        return {"shape": [*size, channels], "resize": True}
    if size is None:
        raise ImageFolderError(
            f"{source} is not a folder of class folders of images, so it is read as a pixel table: declare its "
            "image shape with --size HEIGHTxWIDTH (and --colour colour for 3 channels per pixel)"
        )
    return {"shape": [*size, channels], "resize": False}
