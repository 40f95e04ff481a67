"""What the small torch estimators share (``training.torch_mlp``, ``forecasting.neural``): a seeded
mini-batch loop with early stopping on a validation part, and the best weights kept as numpy arrays,
so a fitted model pickles without torch objects and rebuilds its network on the first predict.

torch is passed in (or imported inside functions): importing this module stays light.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Fit:
    history: list[dict[str, float]]  # {"epoch", "train_loss", "val_loss"} of every epoch run
    best_epoch: int  # 1-based
    state: dict[str, np.ndarray]  # the best epoch's weights (the last ones without a validation part)


def train(
    torch: Any,
    est: Any,
    net: Any,
    optimiser: Any,
    loss_fn: Callable,
    data: tuple[Any, Any, np.ndarray, np.ndarray],
    *,
    forward: Callable | None = None,
    clip_norm: float | None = None,
) -> Fit:
    """Fit ``net`` the way the estimator ``est`` says (its ``max_epochs``, ``batch_size``, ``patience``
    and ``seed``) on ``data``: tensors ``x``, ``y`` and the row indices ``train_idx``, ``val_idx``.

    Mini-batches of the training rows in a seeded order each epoch, then the loss on the validation
    rows (the training loss when there are none); stops after ``patience`` epochs without a
    validation gain. ``forward`` maps a batch to what ``loss_fn`` compares (default ``net``)."""
    x, y, train_idx, val_idx = data
    max_epochs, batch_size, patience, seed = est.max_epochs, est.batch_size, est.patience, est.seed
    forward = forward or net
    rows = torch.from_numpy(np.asarray(train_idx, dtype=np.int64))
    val = torch.from_numpy(np.asarray(val_idx, dtype=np.int64))
    shuffler = torch.Generator().manual_seed(int(seed))
    history, best, best_epoch, best_state, waited = [], np.inf, 0, None, 0
    for epoch in range(1, int(max_epochs) + 1):
        net.train()
        order = rows[torch.randperm(len(rows), generator=shuffler)]
        total = 0.0
        for start in range(0, len(order), int(batch_size)):
            batch = order[start : start + int(batch_size)]
            optimiser.zero_grad()
            loss = loss_fn(forward(x[batch]), y[batch])
            loss.backward()
            if clip_norm:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
            optimiser.step()
            total += loss.item() * len(batch)
        train_loss = val_loss = total / max(len(order), 1)
        if len(val):
            net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(forward(x[val]), y[val]))
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        if val_loss < best - 1e-6:
            best, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if len(val) and waited >= int(patience):
                break
    state = {k: v.detach().cpu().numpy() for k, v in (best_state or net.state_dict()).items()}
    return Fit(history, best_epoch, state)


class StoredNetwork:
    """Mixin of an estimator whose weights are ``state_`` (numpy arrays) and whose ``_network(torch)``
    builds the untrained network: ``_fitted_network`` loads the weights once, pickling drops it."""

    state_: dict[str, np.ndarray]

    def _network(self, torch: Any) -> Any:
        raise NotImplementedError

    def _fitted_network(self, torch: Any) -> Any:
        net = getattr(self, "_net", None)
        if net is None:
            net = self._network(torch)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state_.items()})
            net.eval()
            self._net = net
        return net

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        assert isinstance(state, dict)  # BaseEstimator's: the instance dict and sklearn's version
        state = dict(state)
        state.pop("_net", None)  # rebuilt from state_ on the next predict
        return state
