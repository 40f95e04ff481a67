"""A small PyTorch MLP behind scikit-learn's estimator contract.

It takes the numeric matrix a preprocessing step produces (dense or scipy sparse), stops early
on a stratified validation hold-out, and keeps the best weights as numpy arrays so a fitted model
pickles without torch objects. torch is imported inside methods only: importing this module (and
so ``pipelines.training``) stays light. Every fit and predict runs on one thread, because the
benchmark runs algorithms in parallel processes.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from pipelines import torchfit
from pipelines.estimators import hyperparameters
from pipelines.threads import one_torch_thread
from pipelines.torchfit import StoredNetwork


@hyperparameters
class TorchMLPClassifier(StoredNetwork, ClassifierMixin, BaseEstimator):
    """Classifier: ReLU hidden layers with dropout, AdamW, early stopping; binary: one logit and BCE loss,
    multi-class: one logit per class and cross-entropy (softmax probabilities).

    Learned attributes: ``classes_``, ``n_features_in_``, ``n_parameters_`` (torch parameters),
    ``best_epoch_`` (1-based), ``n_epochs_`` (epochs run), ``history_`` (train/val loss per epoch)
    and ``state_`` (the best weights as numpy arrays).
    """

    hidden_sizes: tuple = (128, 64)
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 512
    max_epochs: int = 50
    patience: int = 5
    validation_fraction: float = 0.1
    weight_decay: float = 0.0
    seed: int = 42

    # -- sklearn contract -------------------------------------------------------------------

    def fit(self, X, y):
        import torch

        X = _dense(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per row of X ({len(X)} rows), got shape {y.shape}")
        if type_of_target(y) not in ("binary", "multiclass") or len(np.unique(y)) < 2:
            raise ValueError(f"TorchMLPClassifier needs 2 classes or more in y, got {np.unique(y)[:10]}")
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        self.n_outputs_ = 1 if len(self.classes_) == 2 else len(self.classes_)
        if self.n_outputs_ == 1:
            target = (y == self.classes_[1]).astype(np.float32)
        else:
            target = np.searchsorted(self.classes_, y).astype(np.int64)
        train_idx, val_idx = _stratified_holdout(target, self.validation_fraction, np.random.default_rng(self.seed))

        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = self._network(torch)
            self.n_parameters_ = int(sum(p.numel() for p in net.parameters()))
            optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            loss_fn = torch.nn.BCEWithLogitsLoss() if self.n_outputs_ == 1 else _cross_entropy(torch)
            data = (torch.from_numpy(X), torch.from_numpy(target), train_idx, val_idx)
            fit = torchfit.train(
                torch, self, net, optimiser, loss_fn, data, forward=lambda batch: net(batch).squeeze(1)
            )
        history = fit.history
        self.state_ = fit.state
        self.best_epoch_ = fit.best_epoch
        self.n_epochs_ = len(history)
        self.history_ = history
        self._net = None
        return self

    def predict_proba(self, X):
        import torch

        check_is_fitted(self, "state_")
        X = _dense(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted on {self.n_features_in_}")
        with one_torch_thread(), torch.no_grad():
            net = self._fitted_network(torch)
            logits = net(torch.from_numpy(X))
            if getattr(self, "n_outputs_", 1) > 1:
                return torch.softmax(logits, dim=1).numpy().astype(np.float64)
            p1 = torch.sigmoid(logits.squeeze(1)).numpy().astype(np.float64)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        proba = self.predict_proba(X)
        if proba.shape[1] > 2:
            return self.classes_[proba.argmax(axis=1)]
        return self.classes_[(proba[:, 1] >= 0.5).astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags

    # -- torch helpers ----------------------------------------------------------------------

    def _network(self, torch):
        layers, width = [], self.n_features_in_
        for size in self.hidden_sizes:
            layers += [torch.nn.Linear(width, int(size)), torch.nn.ReLU(), torch.nn.Dropout(self.dropout)]
            width = int(size)
        layers.append(torch.nn.Linear(width, getattr(self, "n_outputs_", 1)))
        return torch.nn.Sequential(*layers)


def _cross_entropy(torch):
    """Cross-entropy over class logits, taking the (N, classes) output the binary loss takes as (N, 1)."""

    class Loss(torch.nn.Module):
        def forward(self, logits, target):
            return torch.nn.functional.cross_entropy(logits if logits.ndim == 2 else logits[:, None], target)

    return Loss()


def _dense(X) -> np.ndarray:
    """float32, C-contiguous, 2-D; sparse input is densified."""
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X holds NaN or infinite values: impute/scale before TorchMLPClassifier")
    return X


def _stratified_holdout(target: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation): ``fraction`` of each class held out, at least one row each."""
    if not fraction or fraction <= 0:
        return np.arange(len(target)), np.array([], dtype=np.int64)
    train, val = [], []
    for cls in np.unique(target):
        rows = rng.permutation(np.flatnonzero(target == cls))
        n_val = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
