"""Image classification: a small CNN on Fashion-MNIST (or scikit-learn's digits) and the poly-vs-ReLU experiment.

Data (``load_images``): Fashion-MNIST's idx files under ``/usr/share/datasets/fashion-mnist`` (the
Debian package's folder; ``MLP_FASHION_MNIST_DIR`` overrides it) when they are there, otherwise
scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); the log and the returned
``ImageData.name`` say which one was used. Pixels are scaled to [0, 1]. Digits are split 70/15/15
(stratified, seeded); Fashion-MNIST keeps its test set and holds 10% of its training set out for validation.

Model (``CNNClassifier``): two conv blocks (3x3 conv, activation, 2x2 max-pool), then dropout, a
hidden dense layer, dropout and the class logits; channels grow with the input (8/16 for 8x8
images, 32/64 for 28x28). Adam (or ``PolyAdam``) on cross-entropy, early stopping on validation
loss (best weights kept as numpy arrays, so a fitted model pickles without torch objects).

The experiment (``poly_vs_relu``): the same CNN with the polynomial activation f'(x) and PolyAdam
against ReLU and plain Adam, ``seeds`` seeds each. A run counts as *diverged* when its training loss
becomes non-finite or its test accuracy is no better than twice chance (2 / number of classes).
"""

from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from pipelines.deep.poly import DEFAULT_CLAMP, DEFAULT_COEFFICIENTS
from pipelines.errors import DataError
from pipelines.registry import Policy

log = logging.getLogger(__name__)

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
    name: str  # "fashion_mnist" or "digits"
    X_train: np.ndarray  # (n, h, w) float32 in [0, 1]
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.X_train.shape[1:3])

    def summary(self) -> dict:
        return {
            "dataset": self.name,
            "image_shape": list(self.shape),
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


def load_images(source: str = "auto", seed: int = 42, root: Path | None = None, max_train_rows: int = 0) -> ImageData:
    """Fashion-MNIST when its idx files are there (``auto`` or ``fashion_mnist``), else scikit-learn's digits."""
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
    if max_train_rows and len(data.y_train) > max_train_rows:
        keep = np.random.default_rng(seed).choice(len(data.y_train), max_train_rows, replace=False)
        data.X_train, data.y_train = data.X_train[keep], data.y_train[keep]
    return data


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


# --- the model ------------------------------------------------------------------------------------------


def build_cnn(
    shape: tuple[int, int],
    n_classes: int,
    activation: str = "relu",
    dropout: float = 0.25,
    coefficients=DEFAULT_COEFFICIENTS,
    clamp: float = DEFAULT_CLAMP,
):
    """Two conv blocks + dropout + dense head, channels sized to the image (module docstring)."""
    from torch import nn

    from pipelines.deep import poly

    h, w = shape
    if h < 4 or w < 4:
        raise ImageDataError(f"images must be at least 4x4 for two 2x2 poolings, got {h}x{w}")
    c1, c2, hidden = (8, 16, 64) if h * w <= 256 else (32, 64, 128)

    def act():
        if activation == "relu":
            return nn.ReLU()
        if activation == "poly":
            return poly.PolyActivation(coefficients, clamp)
        raise ImageDataError(f"activation must be relu or poly, got {activation!r}")

    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        act(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        act(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(c2 * (h // 4) * (w // 4), hidden),
        act(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    )


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """The CNN behind scikit-learn's contract; ``fit`` returns self.

    Learned: ``classes_``, ``image_shape_``, ``state_`` (best weights, numpy), ``history_``
    (train_loss, valid_loss, valid_acc per epoch), ``best_epoch_``, ``n_epochs_``, ``diverged_``
    (training loss became non-finite), ``train_seconds_`` (wall), ``train_cpu_seconds_`` (CPU time of
    all threads), ``epoch_seconds_``, ``stopped_by_budget_``
    (one more epoch would end past ``time_budget_s``; the best weights so far are kept), ``n_parameters_``.
    """

    def __init__(
        self,
        activation="relu",
        optimizer="adam",
        lr=2e-3,
        batch_size=64,
        max_epochs=30,
        patience=4,
        dropout=0.25,
        seed=42,
        coefficients=DEFAULT_COEFFICIENTS,
        clamp=DEFAULT_CLAMP,
        poly_adam_c=10.0,
        poly_adam_bounds=(0.1, 1.0),
        weight_decay=0.0,
        schedule="constant",
        augment=False,
        threads=1,
        time_budget_s=0.0,
    ):
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.dropout = dropout
        self.seed = seed
        self.coefficients = coefficients
        self.clamp = clamp
        self.poly_adam_c = poly_adam_c
        self.poly_adam_bounds = poly_adam_bounds
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.augment = augment
        self.threads = threads
        self.time_budget_s = time_budget_s

    def _net(self):
        return build_cnn(
            self.image_shape_, len(self.classes_), self.activation, self.dropout, self.coefficients, self.clamp
        )

    def _optimizer(self, params):
        import torch

        from pipelines.deep import poly

        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=float(self.weight_decay))
        if self.optimizer == "poly_adam":
            return poly.PolyAdam(
                params,
                lr=self.lr,
                coefficients=self.coefficients,
                clamp=self.clamp,
                c=self.poly_adam_c,
                bounds=tuple(self.poly_adam_bounds),
            )
        raise ImageDataError(f"optimizer must be adam, adamw or poly_adam, got {self.optimizer!r}")

    def _scheduler(self, opt, steps_per_epoch: int):
        import torch

        if self.schedule == "constant":
            return None
        if self.schedule == "onecycle":  # warm up to lr over 30% of the steps, then anneal to lr / 1e4
            return torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=self.lr, epochs=int(self.max_epochs), steps_per_epoch=steps_per_epoch, pct_start=0.3
            )
        raise ImageDataError(f"schedule must be constant or onecycle, got {self.schedule!r}")

    def fit(self, X, y, X_valid=None, y_valid=None):
        import torch
        from torch import nn

        from pipelines.deep.common import one_thread

        X, y = _images(X), np.asarray(y)
        if len(X) != len(y) or len(y) == 0:
            raise ImageDataError(f"X has {len(X)} images and y {len(y)} labels; give one label per image")
        if X_valid is None:
            from sklearn.model_selection import train_test_split

            X, X_valid, y, y_valid = train_test_split(X, y, test_size=0.15, stratify=y, random_state=self.seed)
        X_valid, y_valid = _images(X_valid), np.asarray(y_valid)
        self.classes_ = np.unique(y)
        self.image_shape_ = tuple(X.shape[2:])
        index = {c: i for i, c in enumerate(self.classes_)}
        yi = torch.as_tensor(np.array([index[v] for v in y]), dtype=torch.long)
        unknown = set(np.unique(y_valid)) - set(index)
        if unknown:
            raise ImageDataError(f"validation labels {sorted(unknown)} do not occur in the training labels")
        yv = torch.as_tensor(np.array([index[v] for v in y_valid]), dtype=torch.long)
        Xt, Xv = torch.as_tensor(X), torch.as_tensor(X_valid)
        start, cpu_start = time.perf_counter(), time.process_time()
        batch = int(self.batch_size)
        with one_thread(self.threads):
            torch.manual_seed(self.seed)
            gen = torch.Generator().manual_seed(self.seed)
            net = self._net()
            opt = self._optimizer(net.parameters())
            sched = self._scheduler(opt, -(-len(Xt) // batch))
            loss_fn = nn.CrossEntropyLoss()
            self.history_ = {"train_loss": [], "valid_loss": [], "valid_acc": []}
            self.epoch_seconds_, self.stopped_by_budget_ = [], False
            best, best_state, bad, self.diverged_ = float("inf"), None, 0, False
            self.best_epoch_ = 0
            for epoch in range(1, int(self.max_epochs) + 1):
                epoch_start = time.perf_counter()
                net.train()
                order = torch.randperm(len(Xt), generator=gen)
                total = 0.0
                for i in range(0, len(order), batch):
                    idx = order[i : i + batch]
                    xb = _flip_half(Xt[idx], gen) if self.augment else Xt[idx]
                    opt.zero_grad()
                    loss = loss_fn(net(xb), yi[idx])
                    if not torch.isfinite(loss):
                        self.diverged_ = True
                        break
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    total += float(loss.detach()) * len(idx)
                if self.diverged_:
                    break
                net.eval()
                with torch.no_grad():
                    logits = net(Xv)
                    vloss = float(loss_fn(logits, yv))
                    vacc = float((logits.argmax(1) == yv).float().mean())
                self.history_["train_loss"].append(total / len(Xt))
                self.history_["valid_loss"].append(vloss)
                self.history_["valid_acc"].append(vacc)
                self.epoch_seconds_.append(time.perf_counter() - epoch_start)
                if not np.isfinite(vloss):
                    self.diverged_ = True
                    break
                if vloss < best - 1e-6:
                    best, bad, self.best_epoch_ = vloss, 0, epoch
                    best_state = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
                else:
                    bad += 1
                    if bad >= int(self.patience):
                        break
                # Stop when another epoch as long as the mean one would end past the budget.
                elapsed = time.perf_counter() - start
                if self.time_budget_s and elapsed + float(np.mean(self.epoch_seconds_)) > float(self.time_budget_s):
                    self.stopped_by_budget_ = True  # the best weights so far are kept
                    break
            if best_state is None:  # diverged before the first epoch ended: keep what there is
                best_state = {k: np.nan_to_num(v.detach().cpu().numpy()) for k, v in net.state_dict().items()}
        self.state_ = best_state
        self.n_epochs_ = len(self.history_["train_loss"])
        self.train_seconds_ = time.perf_counter() - start
        self.train_cpu_seconds_ = time.process_time() - cpu_start  # all threads: compare with threads x wall time
        self.n_parameters_ = int(sum(v.size for v in best_state.values()))
        return self

    def predict_proba(self, X) -> np.ndarray:
        import torch

        from pipelines.deep.common import one_thread

        check_is_fitted(self, "state_")
        X = _images(X)
        if tuple(X.shape[2:]) != self.image_shape_:
            raise ImageDataError(f"images are {X.shape[2:]}, the model was trained on {self.image_shape_}")
        with one_thread(getattr(self, "threads", 1)), torch.no_grad():  # models pickled before `threads` existed
            net = self._net()
            net.load_state_dict({k: torch.as_tensor(v) for k, v in self.state_.items()})
            net.eval()
            out = [torch.softmax(net(torch.as_tensor(X[i : i + 1024])), 1) for i in range(0, len(X), 1024)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes_)), dtype=np.float32)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]


def _flip_half(xb, gen):
    """Mirror a random half of the batch left to right (Fashion-MNIST's classes are mirror-symmetric)."""
    import torch

    mask = torch.rand(len(xb), generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], xb.flip(-1), xb)


def _images(X) -> np.ndarray:
    """(n, h, w) or (n, 1, h, w) to float32 (n, 1, h, w)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4 or X.shape[1] != 1:
        raise ImageDataError(f"expected images shaped (n, h, w) or (n, 1, h, w), got {X.shape}")
    return np.ascontiguousarray(X)


# --- the registered model -------------------------------------------------------------------------------

POLICY = Policy("test_accuracy")  # champion when there is none or its test accuracy beats the champion's


def pixel_columns(shape: tuple[int, int]) -> list[str]:
    return [f"px_{i}" for i in range(shape[0] * shape[1])]


def _image_model_class():
    import mlflow

    class ImageModel(mlflow.pyfunc.PythonModel):
        """Rows of pixels (columns px_0.., row-major, scaled to [0, 1]) in; label and confidence out."""

        def __init__(self, model: CNNClassifier, class_names: list[str]):
            self.model = model
            self.class_names = list(class_names)

        def predict(self, context, model_input, params=None) -> pd.DataFrame:
            frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
            cols = pixel_columns(self.model.image_shape_)
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ImageDataError(f"input lacks pixel column(s) {missing[:5]}...; it needs {cols[0]}..{cols[-1]}")
            X = frame[cols].to_numpy(np.float32).reshape(-1, *self.model.image_shape_)
            proba = self.model.predict_proba(X)
            k = proba.argmax(1)
            return pd.DataFrame(
                {
                    "label": [self.class_names[self.model.classes_[i]] for i in k],
                    "label_id": self.model.classes_[k].astype(np.int64),
                    "confidence": proba.max(1).astype(np.float64),
                }
            )

    return ImageModel


# --- figures ----------------------------------------------------------------------------------------------


def samples_figure(X: np.ndarray, y_true, y_pred, class_names: list[str], n: int = 24):
    from matplotlib.figure import Figure

    n = min(n, len(X))
    cols = 6
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(cols * 1.4, rows * 1.6))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(np.asarray(X[i]).squeeze(), cmap="gray_r")
        ok = y_true[i] == y_pred[i]
        ax.set_title(
            f"t:{class_names[y_true[i]]}\np:{class_names[y_pred[i]]}", fontsize=7, color="black" if ok else "red"
        )
        ax.axis("off")
    fig.tight_layout()
    return fig


def poly_figure(coefficients=DEFAULT_COEFFICIENTS, clamp: float = DEFAULT_CLAMP):
    """f and f' over [-clamp - 1, clamp + 1], the clamp range shaded."""
    from matplotlib.figure import Figure

    from pipelines.deep.poly import Polynomial

    p = Polynomial(tuple(coefficients))
    x = np.linspace(-clamp - 1, clamp + 1, 400)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(x, p.f(x), label="f(x)")
    ax.plot(x, p.df(x), label="f'(x) (activation, unclamped)")
    ax.plot(x, p.df(np.clip(x, -clamp, clamp)), "--", label=f"activation f'(clamp(x, ±{clamp:g}))")
    ax.axvspan(-clamp, clamp, color="grey", alpha=0.1)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    ax.set_title("f(x) = " + " + ".join(f"{c:g}x^{k}" for k, c in enumerate(p.coefficients) if c))
    fig.tight_layout()
    return fig


# --- runs -------------------------------------------------------------------------------------------------


def evaluate(model: CNNClassifier, X, y) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

    proba = model.predict_proba(X)
    pred = model.classes_[proba.argmax(1)]
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-7, 1), labels=model.classes_)),
        "confusion": confusion_matrix(y, pred, labels=model.classes_),
        "pred": pred,
    }


def model_params(params: dict, cfg, dataset: str = "fashion_mnist") -> dict:
    """CNNClassifier keyword arguments (all but activation and optimiser) from DAG params (epochs,
    patience) and ``deep`` settings; mirroring is used on Fashion-MNIST only."""
    return {
        "max_epochs": int(params.get("epochs", cfg.image_epochs)),
        "patience": int(params.get("patience", cfg.image_patience)),
        "lr": float(cfg.image_lr),
        "batch_size": int(cfg.image_batch_size),
        "weight_decay": float(cfg.image_weight_decay),
        "schedule": str(cfg.image_schedule),
        "augment": bool(cfg.image_augment) and dataset == "fashion_mnist",
        "threads": int(cfg.image_threads),
        "time_budget_s": float(cfg.image_time_budget_s),
        "coefficients": tuple(float(c) for c in cfg.poly_coefficients),
        "clamp": float(cfg.poly_clamp),
        "poly_adam_c": float(cfg.poly_adam_c),
        "poly_adam_bounds": tuple(float(b) for b in cfg.poly_adam_bounds),
    }


def train_image(params: dict | None = None, settings=None, tags: dict | None = None) -> dict:
    """Train the ReLU CNN, log metrics and figures to MLflow (experiment ``deep``), register it as a pyfunc."""
    import mlflow
    from mlflow.models import infer_signature

    from pipelines.config import load_settings
    from pipelines.deep.common import confusion_figure, curves_figure
    from pipelines.registry import log_decision, register_and_promote
    from pipelines.tracking import get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    data = load_images(params.get("source", cfg.image_dataset), settings.seed, max_train_rows=params.get("max_rows", 0))
    model = CNNClassifier(seed=settings.seed, optimizer=cfg.image_optimizer, **model_params(params, cfg, data.name))
    model.fit(data.X_train, data.y_train, data.X_valid, data.y_valid)
    result = evaluate(model, data.X_test, data.y_test)
    tags = {"kind": "image", **(tags or {})}
    with get_or_start_run(settings, "deep", f"image cnn ({data.name})", tags) as run:
        mlflow.set_tags({"image_dataset": data.name})
        mlflow.log_params(
            {
                **data.summary(),
                "activation": "relu",
                **{k: str(v) for k, v in model.get_params().items() if k not in ("coefficients", "clamp")},
            }
        )
        metrics = {
            "test_accuracy": result["accuracy"],
            "test_log_loss": result["log_loss"],
            "train_seconds": model.train_seconds_,
            "epochs_run": model.n_epochs_,
            "best_epoch": model.best_epoch_,
            "n_parameters": model.n_parameters_,
            "epoch_seconds_mean": float(np.mean(model.epoch_seconds_)) if model.epoch_seconds_ else 0.0,
            "stopped_by_budget": int(model.stopped_by_budget_),
        }
        mlflow.log_metrics(metrics)
        for i, (tl, vl, va) in enumerate(zip(*model.history_.values(), strict=True), start=1):
            mlflow.log_metrics({"train_loss": tl, "valid_loss": vl, "valid_accuracy": va}, step=i)
        mlflow.log_figure(confusion_figure(result["confusion"], data.class_names), "plots/confusion_matrix.png")
        mlflow.log_figure(
            samples_figure(data.X_test, data.y_test, result["pred"], data.class_names), "plots/samples.png"
        )
        mlflow.log_figure(
            curves_figure({"train": [model.history_["train_loss"]], "valid": [model.history_["valid_loss"]]}, "loss"),
            "plots/loss_curves.png",
        )
        mlflow.log_dict({"confusion": result["confusion"].tolist(), "classes": data.class_names}, "confusion.json")

        def log_model() -> str:
            example = pd.DataFrame(data.X_test[:3].reshape(3, -1), columns=pixel_columns(data.shape)).astype("float64")
            python_model = _image_model_class()(model, data.class_names)
            return mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                signature=infer_signature(example, python_model.predict(None, example)),
                input_example=example,
                pip_requirements=_requirements(),
            ).model_uri

        run_id = run.info.run_id
        decision = register_and_promote(
            settings.mlflow.tracking_uri,
            cfg.image_model,
            POLICY,
            run_id,
            log_model,
            score=result["accuracy"],
            tags={**tags, "image_dataset": data.name},
        )
    log_decision(settings.mlflow.tracking_uri, run_id, decision)
    return {
        "run_id": run_id,
        "dataset": data.name,
        "test_accuracy": round(result["accuracy"], 4),
        "train_seconds": round(model.train_seconds_, 2),
        "epochs_run": model.n_epochs_,
        "registered_model": cfg.image_model,
        "version": decision.version,
        "model_uri": f"models:/{cfg.image_model}/{decision.version}",
        "alias": decision.alias,
    }


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "numpy", "pandas", "scikit-learn", "torch")]


# Ablation arms (bench/deep.py): which of the two changes does what.
ABLATION_ARMS = {
    "poly_adam": {"activation": "poly", "optimizer": "adam"},
    "relu_polyadam": {"activation": "relu", "optimizer": "poly_adam"},
}
ARMS = {
    "relu_adam": {"activation": "relu", "optimizer": "adam"},
    "poly_polyadam": {"activation": "poly", "optimizer": "poly_adam"},
}


def poly_vs_relu(
    data: ImageData, seeds: int = 5, base_seed: int = 42, arms: dict | None = None, **model_kwargs
) -> pd.DataFrame:
    """Every arm (default: both of ``ARMS``) on the same data and seeds: a row per (arm, seed) with accuracy,
    divergence and curves."""
    rows = []
    chance = 1.0 / len(data.class_names)
    for arm, spec in (arms or ARMS).items():
        for k in range(int(seeds)):
            model = CNNClassifier(seed=base_seed + k, **spec, **model_kwargs)
            model.fit(data.X_train, data.y_train, data.X_valid, data.y_valid)
            acc = evaluate(model, data.X_test, data.y_test)["accuracy"]
            rows.append(
                {
                    "arm": arm,
                    "seed": base_seed + k,
                    "test_accuracy": acc,
                    "diverged": bool(model.diverged_ or acc <= 2 * chance),
                    "nonfinite_loss": bool(model.diverged_),
                    "epochs_run": model.n_epochs_,
                    "train_seconds": model.train_seconds_,
                    "valid_loss": model.history_["valid_loss"],
                    "train_loss": model.history_["train_loss"],
                }
            )
    return pd.DataFrame(rows)


def summarise_experiment(table: pd.DataFrame) -> dict:
    out = {}
    for arm, g in table.groupby("arm", sort=False):
        ok = g[~g["diverged"]]
        out[arm] = {
            "accuracy_mean": round(float(g["test_accuracy"].mean()), 4),
            "accuracy_std": round(float(g["test_accuracy"].std(ddof=0)), 4),
            "accuracy_mean_not_diverged": round(float(ok["test_accuracy"].mean()), 4) if len(ok) else None,
            "diverged": int(g["diverged"].sum()),
            "runs": len(g),
            "train_seconds_mean": round(float(g["train_seconds"].mean()), 2),
        }
    return out


def run_poly_experiment(params: dict | None = None, settings=None, tags: dict | None = None) -> dict:
    """The poly-vs-ReLU experiment logged to MLflow: a parent run, a nested run per (arm, seed), plots."""
    import mlflow

    from pipelines.config import load_settings
    from pipelines.deep.common import curves_figure
    from pipelines.tracking import find_or_create_run, get_or_start_run

    settings = settings or load_settings()
    params, cfg = dict(params or {}), settings.deep
    seeds = int(params.get("seeds", cfg.seeds))
    rows = [int(r) for r in (params.get("max_rows", 0), params.get("experiment_max_rows", 0)) if r]
    data = load_images(params.get("source", cfg.image_dataset), settings.seed, max_train_rows=min(rows, default=0))
    kwargs = model_params(params, cfg, data.name)
    table = poly_vs_relu(data, seeds, settings.seed, **kwargs)
    summary = summarise_experiment(table)
    tags = {"kind": "poly_experiment", **(tags or {})}
    with get_or_start_run(settings, "deep", f"poly vs relu ({data.name})", tags) as run:
        parent = run.info.run_id
        mlflow.set_tags({"image_dataset": data.name})
        mlflow.log_params({**data.summary(), "seeds": seeds, **{k: str(v) for k, v in kwargs.items()}})
        for arm, s in summary.items():
            mlflow.log_metrics(
                {
                    f"{arm}_accuracy_mean": s["accuracy_mean"],
                    f"{arm}_accuracy_std": s["accuracy_std"],
                    f"{arm}_diverged_of_{seeds}": s["diverged"],
                }
            )
        mlflow.log_dict(summary, "experiment/summary.json")
        mlflow.log_dict(table.to_dict(orient="records"), "experiment/runs.json")
        curves = {arm: list(g["valid_loss"]) for arm, g in table.groupby("arm", sort=False)}
        mlflow.log_figure(
            curves_figure(curves, "validation loss", "poly+PolyAdam vs ReLU+Adam"), "plots/loss_curves.png"
        )
        mlflow.log_figure(poly_figure(kwargs["coefficients"], kwargs["clamp"]), "plots/poly_f_and_derivative.png")
    for row in table.itertuples():
        child = find_or_create_run(
            settings, "deep", f"{row.arm} seed {row.seed}", {**tags, "arm": row.arm, "seed": str(row.seed)}, parent
        )
        with mlflow.start_run(run_id=child, nested=True):
            mlflow.log_metrics(
                {"test_accuracy": row.test_accuracy, "diverged": int(row.diverged), "train_seconds": row.train_seconds}
            )
            for i, (tl, vl) in enumerate(zip(row.train_loss, row.valid_loss, strict=True), start=1):
                mlflow.log_metrics({"train_loss": tl, "valid_loss": vl}, step=i)
    return {"run_id": parent, "dataset": data.name, "seeds": seeds, **summary}
