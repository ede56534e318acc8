"""The model registry's values and seam: :class:`ModelVersion` and the :class:`ModelRegistry` protocol.

A *version* is one fitted model with everything needed to trust and reproduce it: symbol, horizon,
the bar interval it reads, the zoo name, features, training window, hyper-parameters, metrics,
the code version and when it was made and expires. *Promotion* marks one version live per
(symbol, horizon); the registry's :meth:`ModelRegistry.signal` changes whenever that mapping does,
so a running predictor notices a promotion by polling a cheap token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from coincast.domain import InvalidRequest
from coincast.train.forecasters.core import ReturnForecaster


class UnknownModel(InvalidRequest):
    """No model version with that id (API: 404)."""

    status_code = 404
    code = "unknown_model"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """Metadata of one registered model; times are integer ms UTC.

    ``interval`` is the bar length of the data the model was trained on, and so the candles the
    live predictor feeds it. ``expires_ms`` None means it never expires.
    """

    id: str
    symbol: str
    horizon: str
    interval: str
    model: str
    features: tuple[str, ...]
    feature_set: str
    train_start_ms: int
    train_end_ms: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    code_version: str
    created_ms: int
    expires_ms: int | None
    level: float = 0.9
    origin: str = "train"  # train | retrain | import
    extra: dict[str, Any] = field(default_factory=dict)

    def age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.created_ms)

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in data.items() if k in known}
        kw["features"] = tuple(kw.get("features", ()))
        return cls(**kw)


def live_key(symbol: str, horizon: str) -> str:
    """The key of the live slot of (symbol, horizon): ``'BTCUSDT/1h'``."""
    return f"{symbol}/{horizon}"


class ModelRegistry(Protocol):
    """Where fitted models are kept, listed, promoted and loaded."""

    def register(self, model: ReturnForecaster, version: ModelVersion) -> ModelVersion:
        """Save ``model`` with ``version`` (its ``id`` is assigned if empty); returns the stored version."""
        ...

    def list(self, symbol: str | None = None, horizon: str | None = None) -> list[ModelVersion]:
        """Versions, oldest first, optionally filtered."""
        ...

    def get(self, model_id: str) -> ModelVersion:
        """Raises UnknownModel."""
        ...

    def load(self, model_id: str) -> ReturnForecaster:
        """The fitted model of a version; its predictions equal those of the model registered."""
        ...

    def promote(self, model_id: str) -> ModelVersion:
        """Make the version live for its (symbol, horizon), replacing the previous one."""
        ...

    def live(self) -> dict[str, str]:
        """Live model ids by :func:`live_key`."""
        ...

    def signal(self) -> object:
        """A cheap token that changes whenever :meth:`live` may have changed."""
        ...
