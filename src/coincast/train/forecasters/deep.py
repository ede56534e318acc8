"""PyTorch sequence models on sliding windows: LSTM, CNN, CNN-LSTM, LSTM-CNN.

Each sample is the last ``lookback`` rows of the horizon frame (channels: horizon log return,
high-low range, volume z-score), standardised with statistics of the training rows only; the
target is the volatility-normalised forward return. Training uses Adam with a Huber loss, early
stopping on the chronologically last ``val_fraction`` of the samples (best weights restored),
ReduceLROnPlateau, gradient-norm clipping and dropout. Seeds fix the initial weights and batch
order; on CPU the run is bit-for-bit reproducible. CUDA is used when present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from coincast.train.base import F64
from coincast.train.forecasters.core import DEFAULT_VOL_MODEL, ReturnForecaster

CHANNELS = ("h_ret_1", "h_range", "h_logvol_z")
EpochCallback = Callable[[int, float, float], None]


class SeqNet(nn.Module):
    """``arch`` in {lstm, cnn, cnn_lstm, lstm_cnn}; input [batch, time, channel], output [batch]."""

    def __init__(self, arch: str, n_in: int, *, units: int, filters: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.arch = arch
        self.drop = nn.Dropout(dropout)
        if arch in ("lstm", "lstm_cnn"):
            self.lstm = nn.LSTM(n_in, units, batch_first=True)
        if arch == "cnn":
            self.conv = nn.Sequential(
                nn.Conv1d(n_in, filters, kernel),
                nn.ReLU(),
                nn.Conv1d(filters, filters, kernel),
                nn.ReLU(),
                nn.AdaptiveAvgPool1d(1),
            )
        elif arch == "cnn_lstm":
            self.conv = nn.Sequential(nn.Conv1d(n_in, filters, kernel), nn.ReLU(), nn.MaxPool1d(2))
            self.lstm = nn.LSTM(filters, units, batch_first=True)
        elif arch == "lstm_cnn":
            self.conv = nn.Sequential(nn.Conv1d(units, filters, kernel), nn.ReLU(), nn.AdaptiveAvgPool1d(1))
        elif arch != "lstm":
            raise ValueError(f"unknown architecture {arch!r}")
        self.head = nn.Linear(filters if arch in ("cnn", "lstm_cnn") else units, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch == "lstm":
            h = self.lstm(x)[0][:, -1]
        elif self.arch == "cnn":
            h = self.conv(x.transpose(1, 2)).squeeze(-1)
        elif self.arch == "cnn_lstm":
            h = self.lstm(self.conv(x.transpose(1, 2)).transpose(1, 2))[0][:, -1]
        else:
            h = self.conv(self.lstm(x)[0].transpose(1, 2)).squeeze(-1)
        out: torch.Tensor = self.head(self.drop(h)).squeeze(-1)
        return out


class DeepForecaster(ReturnForecaster):
    """A sequence net regressing the normalised forward return (``arch`` picks the family)."""

    name: ClassVar[str] = "deep"
    arch: ClassVar[str] = "lstm"
    refit: ClassVar[bool] = False  # one training run; early stopping uses its own holdout

    def __init__(
        self,
        *,
        lookback: int = 60,
        units: int = 32,
        filters: int = 32,
        kernel: int = 3,
        dropout: float = 0.2,
        lr: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 20,
        patience: int = 3,
        val_fraction: float = 0.15,
        max_train_samples: int = 4000,
        warm_epochs: int = 5,
        n_jobs: int = 1,
        level: float = 0.9,
        seed: int = 0,
        vol_model: str | None = DEFAULT_VOL_MODEL,
    ) -> None:
        super().__init__(level=level, seed=seed, vol_model=vol_model)
        self.lookback = int(lookback)
        self.hp = {"units": int(units), "filters": int(filters), "kernel": int(kernel), "dropout": float(dropout)}
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.val_fraction = float(val_fraction)
        self.max_train_samples = int(max_train_samples)
        self.warm_epochs = int(warm_epochs)
        self.init_state: dict[str, Any] | None = None
        self.n_jobs = int(n_jobs)
        self.mean = np.zeros(len(CHANNELS))
        self.std = np.ones(len(CHANNELS))
        self.net: Any = None
        self.history: list[tuple[int, float, float]] = []
        self.epoch_callback: EpochCallback | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["epoch_callback"] = None
        return state

    def _warm_start(self, previous: ReturnForecaster | None) -> None:
        """Continue from the previous window's weights (same architecture) for ``warm_epochs``."""
        if (
            isinstance(previous, DeepForecaster)
            and previous.arch == self.arch
            and previous.net is not None
            and previous.hp == self.hp
            and previous.lookback == self.lookback
        ):
            self.init_state = {k: v.detach().clone() for k, v in previous.net.state_dict().items()}

    def _usable(self, frame: pd.DataFrame) -> np.ndarray:
        ok = np.zeros(len(frame), dtype=bool)
        ok[self.lookback - 1 :] = True
        return ok

    def _inputs(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame.loc[:, list(CHANNELS)].to_numpy(dtype=np.float64)
        x = (x - self.mean) / self.std
        x[~np.isfinite(x)] = 0.0
        return np.asarray(np.clip(x, -10.0, 10.0), dtype=np.float32)

    def _windows(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        view = np.lib.stride_tricks.sliding_window_view(x, (self.lookback, x.shape[1]))[:, 0]
        return np.ascontiguousarray(view[rows - self.lookback + 1])

    def _fit_point(self, frame: pd.DataFrame) -> None:
        torch.set_num_threads(max(1, min(2, self.n_jobs)))
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        y = frame["target"].to_numpy(float)
        sigma = self._sigma(frame)
        rows = np.flatnonzero(np.isfinite(y) & np.isfinite(sigma) & self._usable(frame))
        rows = rows[-self.max_train_samples :]
        raw = frame.loc[: rows[-1], list(CHANNELS)].to_numpy(dtype=np.float64)
        self.mean = np.nanmean(raw, axis=0)
        self.std = np.nanstd(raw, axis=0)
        self.std[~(self.std > 0)] = 1.0
        x = self._windows(self._inputs(frame), rows)
        t = np.clip(y[rows] / sigma[rows], -10.0, 10.0).astype(np.float32)
        n_val = max(1, round(self.val_fraction * rows.size))
        xt, yt = torch.from_numpy(x[:-n_val]).to(device), torch.from_numpy(t[:-n_val]).to(device)
        xv, yv = torch.from_numpy(x[-n_val:]).to(device), torch.from_numpy(t[-n_val:]).to(device)
        self.net = SeqNet(self.arch, len(CHANNELS), **self.hp).to(device)  # type: ignore[arg-type]
        epochs = self.max_epochs
        if self.init_state is not None:
            self.net.load_state_dict(self.init_state)
            epochs = min(epochs, self.warm_epochs)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        loss_fn = torch.nn.HuberLoss(delta=1.0)
        best, best_state, bad = float("inf"), None, 0
        self.history = []
        for epoch in range(epochs):
            self.net.train()
            order = rng.permutation(xt.shape[0])
            total = 0.0
            for start in range(0, order.size, self.batch_size):
                idx = torch.from_numpy(order[start : start + self.batch_size]).to(device)
                opt.zero_grad()
                loss = loss_fn(self.net(xt[idx]), yt[idx])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                total += float(loss.detach()) * idx.shape[0]
            self.net.eval()
            with torch.no_grad():
                val = float(loss_fn(self.net(xv), yv))
            sched.step(val)
            self.history.append((epoch, total / max(1, order.size), val))
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, total / max(1, order.size), val)
            if val < best - 1e-6:
                best, bad = val, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net = self.net.to("cpu").eval()
        self.init_state = None

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        out = np.zeros(rows.shape[0])
        ok = rows >= self.lookback - 1
        if ok.any():
            x = torch.from_numpy(self._windows(self._inputs(frame), rows[ok]))
            with torch.no_grad():
                pred = torch.cat([self.net(x[i : i + 1024]) for i in range(0, x.shape[0], 1024)])
            out[ok] = pred.numpy().astype(float)
        return out * self._sigma(frame)[rows], None


class LSTMForecaster(DeepForecaster):
    name: ClassVar[str] = "lstm"
    arch: ClassVar[str] = "lstm"


class CNNForecaster(DeepForecaster):
    name: ClassVar[str] = "cnn"
    arch: ClassVar[str] = "cnn"


class CNNLSTMForecaster(DeepForecaster):
    name: ClassVar[str] = "cnn_lstm"
    arch: ClassVar[str] = "cnn_lstm"


class LSTMCNNForecaster(DeepForecaster):
    name: ClassVar[str] = "lstm_cnn"
    arch: ClassVar[str] = "lstm_cnn"
