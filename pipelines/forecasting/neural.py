"""LSTM and LSTM + Transformer encoder forecasters (PyTorch, imported inside methods only).

Input: a window of ``seq_len`` past days and ``horizon`` future days (see
``pipelines.forecasting.windows``); output: the target of each future day, relative to the
window's past level and scaled by a spread fitted on the training windows. Both read the window
with an LSTM (``batch_first=True``); ``lstm_transformer`` then runs a Transformer encoder over
the LSTM's outputs, also ``batch_first=True`` so it takes them as they come (batch, time,
features), letting every future day attend to every day of the window. A linear head maps each
future step to its forecast. (So the transformer's forecast of a day can depend on the known
drivers of later days of the horizon; asked for fewer days, it repeats the last given day's.)

Training: Adam on the mean squared error, mini-batches in a seeded order, early stopping on the
newest windows of the training part (a horizon-long gap keeps their targets out of training),
the best weights kept as numpy arrays, so a fitted model pickles without torch objects. One
thread: the DAG runs models side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import torchfit
from pipelines.estimators import hyperparameters
from pipelines.forecasting.models import Forecaster
from pipelines.forecasting.windows import WindowSpec, from_relative
from pipelines.threads import one_torch_thread
from pipelines.torchfit import StoredNetwork

ARCHS = ("lstm", "lstm_transformer")
TUNABLE = ("hidden_size", "layers", "dropout", "heads", "lr")


@hyperparameters
class NeuralForecaster(StoredNetwork, Forecaster):
    """Learned attributes: ``windows_`` (scalers), ``state_`` (weights), ``history_`` (losses per epoch),
    ``best_epoch_``, ``n_parameters_``."""

    arch: str = "lstm"
    seq_len: int = 30
    hidden_size: int = 32
    layers: int = 1
    dropout: float = 0.1
    heads: int = 2
    lr: float = 5e-4
    batch_size: int = 32
    max_epochs: int = 60
    patience: int = 6
    validation_fraction: float = 0.15

    @property
    def min_history(self) -> int:
        return int(self.seq_len)

    def _check_params(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.arch == "lstm_transformer" and int(self.hidden_size) % int(self.heads):
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of heads {self.heads}")
        if not 1e-6 <= float(self.lr) <= 1.0:
            raise ValueError(f"lr must be in [1e-6, 1], got {self.lr}")

    def _fit(self, history: pd.DataFrame) -> None:
        import torch

        self._check_params()
        L, H = int(self.seq_len), int(self.horizon)
        n_windows = len(history) - L - H + 1
        if n_windows < 2:
            raise ValueError(
                f"{self.arch} needs at least {L + H + 1} days of history (seq_len + horizon + 1), got {len(history)}"
            )
        self.windows_ = WindowSpec.fit(history, self.spec, L, H)
        starts = np.arange(n_windows)
        x, z, _ = self.windows_.windows(history, starts)
        n_val = int(round(n_windows * float(self.validation_fraction))) if n_windows >= 20 else 0
        if n_val:
            train_idx = starts[starts + H <= n_windows - n_val]  # gap: training targets end before validation begins
            val_idx = starts[n_windows - n_val :]
        else:
            train_idx, val_idx = starts, starts[:0]

        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            net = self._network(torch)
            self.n_parameters_ = int(sum(p.numel() for p in net.parameters()))
            optimiser = torch.optim.Adam(net.parameters(), lr=float(self.lr))
            loss_fn = torch.nn.HuberLoss(delta=1.0)
            data = (torch.from_numpy(x), torch.from_numpy(z), train_idx, val_idx)
            fit = torchfit.train(torch, self, net, optimiser, loss_fn, data, clip_norm=1.0)
        self.state_ = fit.state
        self.history_ = fit.history
        self.best_epoch_ = fit.best_epoch
        self._net = None

    def _predict(self, history: pd.DataFrame, future: pd.DataFrame) -> np.ndarray:
        import torch

        x, level = self.windows_.one_window(history, future)
        with one_torch_thread(), torch.no_grad():
            z = self._fitted_network(torch)(torch.from_numpy(x)).numpy()[0].astype(np.float64)
        return from_relative(z * self.windows_.target_scale, level, self.windows_.mode)

    # -- torch -----------------------------------------------------------------------------

    def _network(self, torch):
        return _build_net(
            torch,
            self.windows_.n_features,
            int(self.hidden_size),
            int(self.layers),
            float(self.dropout),
            int(self.heads),
            int(self.horizon),
            self.arch == "lstm_transformer",
        )


def _build_net(torch, n_in, hidden, layers, dropout, heads, horizon, transformer):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(
                n_in, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True
            )
            self.drop = nn.Dropout(dropout)
            self.encoder = None
            if transformer:
                block = nn.TransformerEncoderLayer(
                    d_model=hidden, nhead=heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True
                )
                self.encoder = nn.TransformerEncoder(block, num_layers=layers, enable_nested_tensor=False)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            out, _ = self.lstm(x)  # (batch, time, hidden): batch_first, as the encoder expects
            out = self.drop(out)
            if self.encoder is not None:
                out = self.encoder(out)
            return self.head(out[:, -horizon:, :]).squeeze(-1)

    return Net()
