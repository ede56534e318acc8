"""Typed settings: defaults < ``coincast.toml`` < ``COINCAST_*`` variables < CLI flags.

Everything is validated before any socket opens; a bad value stops the program with a
:class:`ConfigError` naming the field and the value. Nested sections use ``__`` in variables
(``COINCAST_STORE__URL``); the Binance URLs also accept the flat names
``COINCAST_BINANCE_WS_URL`` / ``COINCAST_BINANCE_REST_URL``.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from coincast.domain import DEFAULT_SYMBOLS, ConfigError, Interval, InvalidInterval, normalize_symbol

SourceKind = Literal["auto", "sim", "binance", "replay"]

_SCHEMES: dict[str, tuple[str, ...]] = {
    "bus": ("memory", "kafka"),
    "store": ("duckdb", "postgresql", "postgres"),
    "cache": ("memory", "redis"),
    "lake": ("file", "s3", ""),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_scheme(role: str, url: str) -> str:
    if url and urlsplit(url).scheme not in _SCHEMES[role]:
        known = ", ".join(f"{s}://" for s in _SCHEMES[role] if s)
        raise ValueError(f"unknown scheme {urlsplit(url).scheme!r}; use one of {known}")
    return url


class BusSettings(_Section):
    url: str = "memory://"
    queue_batches: int = Field(1024, ge=1, description="bounded queue size per subscriber, in batches")
    instance_id: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,100}$",
                             description="stable consumer-group member id of this process instance (static "
                                         "membership); empty: <host>-process-<n>, n the first free slot")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_scheme("bus", v)


class StoreSettings(_Section):
    url: str = Field("", description="empty: duckdb:///<data_dir>/coincast.db")
    flush_ms: int = Field(1_000, ge=10, le=60_000, description="closed candles reach disk within this")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_scheme("store", v)


class CacheSettings(_Section):
    url: str = "memory://"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_scheme("cache", v)


class LakeSettings(_Section):
    url: str = Field("", description="empty: file://<data_dir>/lake")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_scheme("lake", v)


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        return tuple(o.strip() for o in v.split(",") if o.strip()) if isinstance(v, str) else v
    api_key: SecretStr | None = None
    rate_limit_per_minute: int = Field(1200, ge=1, description="REST requests per client and minute")
    rate_limit_strict_per_minute: int = Field(
        60, ge=1, description="mutating (POST, ...) and assistant requests per client and minute"
    )
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024, description="largest request body")
    ws_max_frame_bytes: int = Field(16 * 1024, ge=256, le=1024 * 1024, description="largest WebSocket message")
    ws_max_clients: int = Field(500, ge=1, description="WebSocket connections at once")
    ws_max_subscriptions: int = Field(100, ge=1, description="candle subscriptions per WebSocket client")


class StreamSettings(_Section):
    intervals: Annotated[tuple[Interval, ...], NoDecode] = (Interval.M1, Interval.M5, Interval.H1, Interval.D1)
    grace_ms: int = Field(2_000, ge=0, le=600_000, description="late trades merged this long after a close")
    tick_ms: int = Field(250, ge=10, le=10_000, description="how often the watermark advances")

    @field_validator("intervals", mode="before")
    @classmethod
    def _intervals(cls, v: Any) -> Any:
        items = v.split(",") if isinstance(v, str) else v
        try:
            parsed = tuple(Interval.parse(str(i)) for i in items)
        except InvalidInterval as exc:
            raise ValueError(str(exc)) from None
        base = min(parsed, key=lambda i: i.ms)
        bad = [i.value for i in parsed if i.ms % base.ms]
        if bad:
            raise ValueError(f"intervals {bad} are not multiples of the smallest interval {base.value}")
        return parsed


class SourceSettings(_Section):
    kind: SourceKind = "auto"
    seed: int = 42
    replay_file: Path | None = None
    replay_speed: float = Field(60.0, ge=0, description="0 = as fast as possible")
    sim_history_s: int = Field(2 * 3600, ge=0, le=7 * 86_400,
                               description="simulated trades replayed on a first start (seconds)")
    sim_history_days: int = Field(730, ge=0, le=3650, description=(
        "simulated candle history generated before those trades on a first start: hour and day candles "
        "for this many days, 5-30 minute ones for up to 60, minute ones for up to 7 (0: none)"))


class BinanceSettings(_Section):
    ws_url: str = "wss://stream.binance.com:9443"
    rest_url: str = "https://api.binance.com"
    probe_timeout_s: float = Field(3.0, gt=0)
    stale_after_s: float = Field(30.0, ge=1, le=3600, description="reconnect after this long without a frame")
    repair_give_up_s: float = Field(120.0, ge=1, le=86_400,
                                    description="give up refilling a gap after REST failed this long")


_DURATION_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def duration_ms(text: str) -> int:
    """``'30s'``, ``'15m'``, ``'24h'``, ``'7d'``, ``'2w'`` to ms; ``'0'`` or ``'off'`` is 0 (disabled)."""
    t = text.strip().lower()
    if t in ("0", "off", "never", ""):
        return 0
    num, unit = t[:-1], t[-1:]
    if unit not in _DURATION_UNITS_MS or not num.replace(".", "", 1).isdigit() or float(num) <= 0:
        raise ValueError(f"{text!r} is not a duration; use a number with s, m, h, d or w (e.g. 7d), or off")
    return int(float(num) * _DURATION_UNITS_MS[unit])


class ModelSettings(_Section):
    """Live forecasting: expiry, retraining, defaults (durations like ``7d``, ``24h``, ``30s``; ``off``)."""

    expiry: str = Field("7d", description="a model this old stops serving forecasts until retrained")
    retrain_every: str = Field("1d", description="periodic retraining of the live models; off disables")
    default_models: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"1h": "lightgbm", "1d": "lightgbm"},
        description="model trained per horizon when a request names none: '1h=lightgbm,1d=drift'",
    )
    train_data: Path | None = Field(None, description="klines parquet used for training (default: the store)")
    train_bars: int = Field(5_000, ge=100, description="bars of history read from the store for training")
    validation_folds: int = Field(4, ge=1, le=50, description="walk-forward windows scored before registering")
    history_bars: int = Field(400, ge=30, description="bars kept per symbol for live features")
    reload_poll_ms: int = Field(500, ge=50, description="how often the predictor checks for a promotion")
    score_every_ms: int = Field(1_000, ge=100, description="how often due forecasts are scored")

    @field_validator("expiry", "retrain_every")
    @classmethod
    def _duration(cls, v: str) -> str:
        duration_ms(v)
        return v

    @field_validator("default_models", mode="before")
    @classmethod
    def _defaults(cls, v: Any) -> Any:
        if isinstance(v, str):
            pairs = [p.split("=", 1) for p in v.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(f"{v!r}: expected horizon=model pairs like 1h=lightgbm,1d=drift")
            v = {k.strip(): m.strip() for k, m in pairs}
        return v

    @property
    def expiry_ms(self) -> int:
        return duration_ms(self.expiry)

    @property
    def retrain_every_ms(self) -> int:
        return duration_ms(self.retrain_every)


class AssistantSettings(_Section):
    """The market assistant: an optional OpenAI-compatible chat API and news sources."""

    llm_url: str = Field(
        "", description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1 (empty: templates)")
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(15.0, gt=0)
    news_feeds: Annotated[tuple[str, ...], NoDecode] = (
        "https://www.coindesk.com/arc/outboundfeeds/rss/", "https://cointelegraph.com/rss")
    newsapi_url: str = "https://newsapi.org/v2/everything"
    newsapi_key: SecretStr | None = None
    news_ttl_s: float = Field(900.0, ge=0)
    news_timeout_s: float = Field(5.0, gt=0)

    @field_validator("news_feeds", mode="before")
    @classmethod
    def _feeds(cls, v: Any) -> Any:
        return tuple(f.strip() for f in v.split(",") if f.strip()) if isinstance(v, str) else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COINCAST_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        toml_file="coincast.toml",
    )

    data_dir: Path = Path("data")
    symbols: Annotated[tuple[str, ...], NoDecode] = DEFAULT_SYMBOLS
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    source: SourceSettings = SourceSettings()
    bus: BusSettings = BusSettings()
    store: StoreSettings = StoreSettings()
    cache: CacheSettings = CacheSettings()
    lake: LakeSettings = LakeSettings()
    api: ApiSettings = ApiSettings()
    stream: StreamSettings = StreamSettings()
    binance: BinanceSettings = BinanceSettings()
    models: ModelSettings = ModelSettings()
    assistant: AssistantSettings = AssistantSettings()

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: Path) -> Path:
        if (why := _not_a_dir(v)) is not None:
            raise ValueError(f"cannot be the data directory: {why}; choose another --data-dir")
        return v

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, v: Any) -> Any:
        if not isinstance(v, str | list | tuple):
            raise ValueError("symbols must be a list such as [\"BTCUSDT\", \"ETHUSDT\"] or \"BTCUSDT,ETHUSDT\"")
        items = [s for s in v.split(",") if s.strip()] if isinstance(v, str) else list(v)
        if not items:
            raise ValueError("at least one symbol is needed")
        out = tuple(dict.fromkeys(normalize_symbol(str(s)) for s in items))
        return out

    @property
    def store_url(self) -> str:
        return self.store.url or f"duckdb:///{(self.data_dir / 'coincast.db').resolve()}"

    @property
    def lake_url(self) -> str:
        return self.lake.url or f"file://{(self.data_dir / 'lake').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("COINCAST_CONFIG")
        if toml_path is not None and not Path(toml_path).is_file():
            why = "is a directory" if Path(toml_path).is_dir() else "does not exist"
            raise ConfigError(f"config file {toml_path!r} (COINCAST_CONFIG) {why}")
        path = toml_path or "coincast.toml"
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path!r} is not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror}") from None
        return (init_settings, env_settings, toml)


_FLAT_ENV = {
    "COINCAST_BINANCE_WS_URL": ("binance", "ws_url"),
    "COINCAST_BINANCE_REST_URL": ("binance", "rest_url"),
}


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from every layer; ``overrides`` are CLI flags (None = not given).

    Nested overrides use ``section__field`` keys: ``load_settings(api__port=9000)``.

    Raises:
        ConfigError: naming each invalid field and value.
    """
    init: dict[str, Any] = {}
    for (name, (section, key)) in _FLAT_ENV.items():
        if name in os.environ and f"COINCAST_{section.upper()}__{key.upper()}" not in os.environ:
            init.setdefault(section, {})[key] = os.environ[name]
    for key, value in overrides.items():
        if value is None:
            continue
        if "__" in key:
            section, field = key.split("__", 1)
            init.setdefault(section, {})[field] = value
        else:
            init[key] = value
    try:
        return _merge_sections(init)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:
        cause = exc.__cause__
        raise ConfigError(f"invalid settings: {exc}" + (f" ({cause})" if cause else "")) from None


def _merge_sections(init: dict[str, Any]) -> Settings:
    """Init values for a section must not wipe the section's other layers: merge them field-wise."""
    if not any(isinstance(v, dict) for v in init.values()):
        return Settings(**init)
    base = Settings(**{k: v for k, v in init.items() if not isinstance(v, dict)})
    merged = dict(init)
    for key, value in init.items():
        if isinstance(value, dict):
            merged[key] = {**getattr(base, key).model_dump(), **value}
    return Settings(**merged)


def _not_a_dir(path: Path) -> str | None:
    """Why ``path`` can never be a directory (it, or a folder it would be made in, is a file), else None."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{str(probe)!r} is a file, not a directory"
    return None


def prepare_data_dir(path: Path) -> None:
    """Make sure ``path`` can be the data directory before anything starts: created if missing, writable.

    Raises:
        ConfigError: ``path`` is a file, cannot be created, or is not writable.
    """
    if (why := _not_a_dir(path)) is not None:
        raise ConfigError(f"data directory {str(path)!r} cannot be used: {why}; choose another --data-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"data directory {str(path)!r} is not usable: {exc.strerror or exc}; choose another --data-dir"
        ) from None


_SECRET_WORDS = ("key", "secret", "password", "token")


def _shown(value: Any) -> Any:
    """A value safe to print: URLs lose their password, long text is cut."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            value = value.replace(f":{password}@", ":***@")
        return value if len(value) <= 200 else value[:200] + "..."
    return value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        value = err.get("input")
        secret = any(w in where.lower() for w in _SECRET_WORDS)
        shown = "" if isinstance(value, dict) or secret else f" = {_shown(value)!r}"
        parts.append(f"{where}{shown}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(parts)
