"""The model registry on the file system: ``<root>/<id>/`` per version, ``<root>/live.json`` for promotion.

Layout::

    <data_dir>/models/
      live.json                      {"generation": 3, "live": {"BTCUSDT/1h": {"id": ..., "promoted_ms": ...}}}
      BTCUSDT-1h-lightgbm-20261123T180501Z-3fa9c1/
        meta.json                    ModelVersion as JSON
        model/                       whatever the model's own save() writes

Files, not the serving database, so ``coincast models promote`` works while ``coincast up`` holds the
DuckDB lock. Every write goes to a temporary name first and is moved into place with ``os.replace``
(atomic on POSIX): a reader sees the old or the new state, never half of one. The hot-reload signal
is the ``(inode, mtime_ns, size)`` of ``live.json``: one ``stat`` call per poll.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import coincast
from coincast.domain import Clock, SystemClock
from coincast.registry.base import ModelVersion, UnknownModel, live_key
from coincast.train.forecasters.core import ReturnForecaster
from coincast.train.registry import model_spec

LIVE_FILE = "live.json"
META_FILE = "meta.json"
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
MODEL_DIR = "model"


@functools.cache
def code_version() -> str:
    """``git describe --always --dirty`` of the source tree when it is a checkout, else the package version."""
    src = Path(coincast.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return coincast.__version__
    described = out.stdout.strip()
    return f"{coincast.__version__}+g{described}" if out.returncode == 0 and described else coincast.__version__


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, allow_nan=False)
        fh.write("\n")
    os.replace(tmp, path)


class FileModelRegistry:
    """A :class:`~coincast.registry.base.ModelRegistry` in a directory.

    Args:
        root: the models directory (created if needed), normally ``<data_dir>/models``.
        clock: wall time for ids and promotion times.
    """

    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._clock = clock or SystemClock()

    # -- versions ---------------------------------------------------------------------------------

    def new_id(self, symbol: str, horizon: str, model: str) -> str:
        stamp = datetime.fromtimestamp(self._clock.now_ms() / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{symbol}-{horizon}-{model}-{stamp}-{secrets.token_hex(3)}"

    def register(self, model: ReturnForecaster, version: ModelVersion) -> ModelVersion:
        """Save the model and its metadata; assigns an id when ``version.id`` is empty."""
        if not version.id:
            version = replace(version, id=self.new_id(version.symbol, version.horizon, version.model))
        final = self.root / version.id
        if final.exists():
            raise FileExistsError(f"model version {version.id} already exists")
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{version.id}."))
        try:
            model.save(tmp / MODEL_DIR)
            _write_json_atomic(tmp / META_FILE, version.to_dict())
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version

    def list(self, symbol: str | None = None, horizon: str | None = None) -> list[ModelVersion]:
        out = []
        for meta in self.root.glob(f"*/{META_FILE}"):
            if meta.parent.name.startswith("."):
                continue
            v = ModelVersion.from_dict(json.loads(meta.read_text()))
            if (symbol is None or v.symbol == symbol) and (horizon is None or v.horizon == horizon):
                out.append(v)
        return sorted(out, key=lambda v: (v.created_ms, v.id))

    def get(self, model_id: str) -> ModelVersion:
        meta = self.root / model_id / META_FILE
        # a name this registry could have made: no separators, dot-files or names too long to open
        if not _VERSION_ID.fullmatch(model_id) or not meta.is_file():
            shown = model_id if len(model_id) <= 120 else f"{model_id[:120]}..."
            raise UnknownModel(f"unknown model version {shown!r}; see `coincast models list` or GET /api/v1/models")
        return ModelVersion.from_dict(json.loads(meta.read_text()))

    def load(self, model_id: str) -> ReturnForecaster:
        version = self.get(model_id)
        cls = model_spec(version.model).factory()
        model: ReturnForecaster = cls.load(self.root / model_id / MODEL_DIR)  # type: ignore[attr-defined]
        return model

    # -- promotion and the hot-reload signal ------------------------------------------------------

    def _read_live(self) -> dict[str, Any]:
        path = self.root / LIVE_FILE
        if not path.is_file():
            return {"generation": 0, "live": {}}
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def promote(self, model_id: str) -> ModelVersion:
        version = self.get(model_id)
        state = self._read_live()
        state["live"][live_key(version.symbol, version.horizon)] = {
            "id": version.id,
            "promoted_ms": self._clock.now_ms(),
        }
        state["generation"] = int(state.get("generation", 0)) + 1
        _write_json_atomic(self.root / LIVE_FILE, state)
        return version

    def live(self) -> dict[str, str]:
        return {k: str(v["id"]) for k, v in self._read_live()["live"].items()}

    def promoted_ms(self, model_id: str) -> int | None:
        """When ``model_id`` became live (None when it is not live)."""
        for v in self._read_live()["live"].values():
            if v["id"] == model_id:
                return int(v["promoted_ms"])
        return None

    def generation(self) -> int:
        """How many promotions this registry has seen."""
        return int(self._read_live().get("generation", 0))

    def signal(self) -> object:
        try:
            st = os.stat(self.root / LIVE_FILE)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
