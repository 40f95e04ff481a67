"""Image data: Fashion-MNIST's idx files or scikit-learn's digits (the reference data), or a user's images from gold.

Reference (``load_images``): Fashion-MNIST's idx files under ``/usr/share/datasets/fashion-mnist`` (the
Debian package's folder; ``MLP_FASHION_MNIST_DIR`` overrides it) when they are there, otherwise
scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); the log and ``ImageData.name`` say
which one was used. Pixels are scaled to [0, 1]. Digits are split 70/15/15 (stratified, seeded);
Fashion-MNIST keeps its test set and holds 10% of its training set out for validation.

A user's images (``load_gold_images``): a dataset added with ``dataset add NAME --kind images``
reaches gold as a pixel table (``px_0..``, row-major height x width x channels, 0..255) with a
``label`` column; the entry's ``options.shape`` ([height, width, channels]) gives the shape.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import DataError

log = logging.getLogger("pipelines.deep.vision")

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class ImageDataError(DataError, ValueError):
    """Image files that cannot be read, or inputs of the wrong shape."""


@dataclass
class ImageData:
    name: str  # "fashion_mnist", "digits" or the user's dataset
    X_train: np.ndarray  # (n, h, w) or (n, c, h, w) float32 in [0, 1]
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.X_train.shape[-2:])

    @property
    def channels(self) -> int:
        return 1 if self.X_train.ndim == 3 else int(self.X_train.shape[1])

    def summary(self) -> dict:
        return {
            "dataset": self.name,
            "image_shape": list(self.shape),
            "channels": self.channels,
            "classes": len(self.class_names),
            "train_rows": len(self.y_train),
            "valid_rows": len(self.y_valid),
            "test_rows": len(self.y_test),
        }


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (the MNIST format; gzipped when the name ends in .gz) as a numpy array."""
    import gzip

    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ImageDataError(f"cannot read idx file {path}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ImageDataError(f"{path} is not an idx file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ImageDataError(f"{path} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise ImageDataError(f"{path} holds {len(data) - header} data bytes, its header {dims} says {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    return None


def fashion_dir() -> Path:
    return Path(os.environ.get("MLP_FASHION_MNIST_DIR", FASHION_DIR))


def load_images(
    source: str = "auto", seed: int = 42, root: Path | None = None, max_train_rows: int = 0, max_eval_rows: int = 0
) -> ImageData:
    """Fashion-MNIST when its idx files are there (``auto`` or ``fashion_mnist``), else scikit-learn's digits.
    ``max_train_rows`` / ``max_eval_rows``: a random subset of at most that many training / validation and
    test images (0: all)."""
    if source not in ("auto", "fashion_mnist", "digits"):
        raise ImageDataError(f"image source must be auto, fashion_mnist or digits, got {source!r}")
    root = Path(root) if root is not None else fashion_dir()
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    files = [_find_idx(root, s) for s in stems] if source != "digits" and root.is_dir() else [None]
    if source != "digits" and all(files):
        data = _fashion(files, seed)
        log.info("image data: Fashion-MNIST from %s (%s)", root, data.summary())
    elif source == "fashion_mnist":
        raise ImageDataError(
            f"Fashion-MNIST idx files ({', '.join(stems)}, optionally .gz) not found under {root}; install the "
            "Debian package, set MLP_FASHION_MNIST_DIR to their folder, or use source=digits"
        )
    else:
        data = _digits(seed)
        log.warning(
            "image data: scikit-learn digits (8x8), because Fashion-MNIST's idx files are not under %s (%s)",
            root,
            data.summary(),
        )
    rng = np.random.default_rng(seed)
    data.X_train, data.y_train = _subset(data.X_train, data.y_train, max_train_rows, rng)
    data.X_valid, data.y_valid = _subset(data.X_valid, data.y_valid, max_eval_rows, rng)
    data.X_test, data.y_test = _subset(data.X_test, data.y_test, max_eval_rows, rng)
    return data


def _subset(X: np.ndarray, y: np.ndarray, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if not rows or len(y) <= rows:
        return X, y
    keep = rng.choice(len(y), rows, replace=False)
    return X[keep], y[keep]


def _fashion(files: list[Path], seed: int) -> ImageData:
    from sklearn.model_selection import train_test_split

    X, y, X_test, y_test = (read_idx(f) for f in files)
    if X.ndim != 3 or len(X) != len(y) or X_test.ndim != 3 or len(X_test) != len(y_test):
        raise ImageDataError(f"Fashion-MNIST shapes do not match: {X.shape}, {y.shape}, {X_test.shape}, {y_test.shape}")
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.1, stratify=y, random_state=seed)
    scale = np.float32(1 / 255)
    return ImageData(
        "fashion_mnist",
        X_tr.astype(np.float32) * scale,
        y_tr.astype(np.int64),
        X_va.astype(np.float32) * scale,
        y_va.astype(np.int64),
        X_test.astype(np.float32) * scale,
        y_test.astype(np.int64),
        list(FASHION_CLASSES),
    )


def _digits(seed: int) -> ImageData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed)
    return ImageData("digits", X_tr, y_tr, X_va, y_va, X_te, y_te, [str(c) for c in d.target_names])


def pixel_columns(shape, channels: int = 1) -> list[str]:
    """px_0.. for an image of ``shape`` (height, width) and ``channels``, row-major, channels last."""
    return [f"px_{i}" for i in range(int(shape[0]) * int(shape[1]) * int(channels))]


def to_images(pixels: np.ndarray, shape, channels: int = 1) -> np.ndarray:
    """Rows of flattened pixels (height x width x channels) to (n, h, w) for grey, (n, c, h, w) for colour."""
    h, w = int(shape[0]), int(shape[1])
    X = np.asarray(pixels, dtype=np.float32).reshape(-1, h, w, int(channels))
    return X[..., 0] if channels == 1 else np.ascontiguousarray(X.transpose(0, 3, 1, 2))


def load_gold_images(lake, dataset: str, ds: str, shape, channels: int, scale: float = 255.0) -> ImageData:
    """A user's image dataset from gold partitions up to ``ds``, split as gold split it."""
    import pyarrow as pa

    from pipelines.constants import GOLD, SPLIT, TEST, TRAIN, VALID

    dates = [d for d in lake.list_partitions(GOLD, dataset) if d <= ds]
    if not dates:
        raise ImageDataError(
            f"no gold partitions for {dataset!r} up to {ds} under {lake.uri(GOLD, dataset)}; "
            f"run `python -m pipelines ingest {dataset}` (or the features DAG) first"
        )
    frame = pa.concat_tables([lake.read_partition(GOLD, dataset, d) for d in dates]).to_pandas()
    cols = pixel_columns(shape, channels)
    missing = [c for c in [*cols, "label", SPLIT] if c not in frame.columns]
    if missing:
        raise ImageDataError(
            f"gold {dataset!r} lacks column(s) {missing[:5]} for images of shape {list(shape)} x {channels} channel(s); "
            "the entry's options.shape must match the pixel table"
        )
    frame = frame[frame["label"].notna() & frame[SPLIT].notna()]
    classes = sorted(frame["label"].astype(str).unique())
    if len(classes) < 2:
        raise ImageDataError(
            f"images of {dataset!r} hold {len(classes)} class(es) {classes}; a classifier needs two or more"
        )
    index = {c: i for i, c in enumerate(classes)}
    parts = {}
    for split in (TRAIN, VALID, TEST):
        rows = frame[frame[SPLIT].astype(str) == split]
        if rows.empty:
            raise ImageDataError(f"gold {dataset!r} up to {ds} has no {split} rows; more images are needed")
        X = to_images(rows[cols].to_numpy(np.float32) / np.float32(scale), shape, channels)
        parts[split] = (X, rows["label"].astype(str).map(index).to_numpy(np.int64))
    absent = sorted(set(range(len(classes))) - set(parts[TRAIN][1]))
    if absent:
        raise ImageDataError(f"class(es) {[classes[i] for i in absent]} of {dataset!r} have no training images")
    return ImageData(dataset, *parts[TRAIN], *parts[VALID], *parts[TEST], classes)
