"""The CNN: two conv blocks (3x3 conv, activation, 2x2 max-pool), dropout, a dense head.

Channels grow with the input (8/16 for images of at most 256 pixels, 32/64 above); the input's
colour channels (1 grey, 3 colour) come from the data. Adam, AdamW or ``PolyAdam`` on
cross-entropy, early stopping on validation loss (best weights kept as numpy arrays, so a fitted
model pickles without torch objects).
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from pipelines.deep.poly import DEFAULT_CLAMP, DEFAULT_COEFFICIENTS
from pipelines.deep.vision.data import ImageDataError
from pipelines.estimators import hyperparameters


def build_cnn(
    shape: tuple[int, int],
    n_classes: int,
    activation: str = "relu",
    dropout: float = 0.25,
    coefficients=DEFAULT_COEFFICIENTS,
    clamp: float = DEFAULT_CLAMP,
    channels: int = 1,
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
        nn.Conv2d(int(channels), c1, 3, padding=1),
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


@hyperparameters
class CNNClassifier(ClassifierMixin, BaseEstimator):
    """The CNN behind scikit-learn's contract; ``fit`` returns self.

    Learned: ``classes_``, ``image_shape_``, ``state_`` (best weights, numpy), ``history_``
    (train_loss, valid_loss, valid_acc per epoch), ``best_epoch_``, ``n_epochs_``, ``diverged_``
    (training loss became non-finite), ``train_seconds_`` (wall), ``train_cpu_seconds_`` (CPU time of
    all threads), ``epoch_seconds_``, ``stopped_by_budget_``
    (one more epoch would end past ``time_budget_s``; the best weights so far are kept), ``n_parameters_``.
    """

    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 2e-3
    batch_size: int = 64
    max_epochs: int = 30
    patience: int = 4
    dropout: float = 0.25
    seed: int = 42
    coefficients: tuple = DEFAULT_COEFFICIENTS
    clamp: float = DEFAULT_CLAMP
    poly_adam_c: float = 10.0
    poly_adam_bounds: tuple = (0.1, 1.0)
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: bool = False
    threads: int = 1
    time_budget_s: float = 0.0

    def _net(self):
        return build_cnn(
            self.image_shape_,
            len(self.classes_),
            self.activation,
            self.dropout,
            self.coefficients,
            self.clamp,
            getattr(self, "channels_", 1),  # models pickled before colour images
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
        self.channels_ = int(X.shape[1])
        if X_valid.shape[1:] != X.shape[1:]:
            raise ImageDataError(f"validation images are {X_valid.shape[1:]}, training images {X.shape[1:]}")
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
        want = (getattr(self, "channels_", 1), *self.image_shape_)
        if tuple(X.shape[1:]) != want:
            raise ImageDataError(f"images are {X.shape[1:]} (channels, height, width), the model was trained on {want}")
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
    """(n, h, w), (n, c, h, w) or (n, h, w, c) with c 1 (grey) or 3 (colour) to float32 (n, c, h, w)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 4 and X.shape[1] not in (1, 3) and X.shape[3] in (1, 3):
        X = X.transpose(0, 3, 1, 2)  # channels last
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        raise ImageDataError(f"expected images shaped (n, h, w), (n, c, h, w) or (n, h, w, c), c 1 or 3; got {X.shape}")
    return np.ascontiguousarray(X)
