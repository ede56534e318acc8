"""Response models of the API, for the OpenAPI spec: what each route answers, with examples.

They document; the routes build their answers themselves (the same dicts the dashboard reads).
``extra="allow"`` where an answer carries more than is listed (analytics tables, model metrics),
so a test can validate the real answers against these models (tests/unit/api/test_docs.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CandleOut(_Doc):
    symbol: str = Field(examples=["BTCUSDT"])
    interval: str = Field(examples=["1m"])
    open_time: int = Field(description="epoch ms, inclusive", examples=[1767225600000])
    close_time: int = Field(description="epoch ms, open_time + interval - 1", examples=[1767225659999])
    open: float = Field(examples=[94950.1])
    high: float = Field(examples=[95010.0])
    low: float = Field(examples=[94920.5])
    close: float = Field(examples=[94999.9])
    volume: float = Field(description="base asset", examples=[12.5])
    quote_volume: float = Field(examples=[1187000.0])
    trades: int = Field(examples=[3600])
    taker_buy_volume: float = Field(examples=[6.1])
    taker_buy_quote_volume: float = Field(examples=[579000.0])
    closed: bool = Field(description="false for the candle in progress", examples=[True])


class CandlesOut(_Doc):
    symbol: str = Field(examples=["BTCUSDT"])
    interval: str = Field(examples=["1m"])
    candles: list[CandleOut] = Field(description="oldest first; the one in progress last")


class SymbolsOut(_Doc):
    symbols: list[str] = Field(examples=[["BTCUSDT", "ETHUSDT"]])
    intervals: list[str] = Field(description="streamed intervals", examples=[["1m", "5m", "1h", "1d"]])


class TickerOut(_Doc):
    symbol: str = Field(examples=["BTCUSDT"])
    price: float = Field(examples=[95000.0])
    open_24h: float = Field(examples=[94000.0])
    change_24h_pct: float = Field(examples=[1.06])
    high_24h: float = Field(examples=[95500.0])
    low_24h: float = Field(examples=[93800.0])
    volume_24h: float = Field(examples=[21000.5])
    time: int = Field(description="epoch ms of the last trade", examples=[1767225659000])


class TickersOut(_Doc):
    tickers: list[TickerOut]


class CryptoOut(_Doc):
    symbol: str = Field(examples=["BTCUSDT"])
    ticker: TickerOut | None = Field(description="null before the first trade")


class IndicatorsOut(_Open):
    symbol: str = Field(examples=["BTCUSDT"])
    interval: str = Field(examples=["1m"])
    ready: bool | None = Field(None, description="every indicator has warmed up")
    as_of: int | None = Field(None, description="open time (ms) of the last closed candle used")
    closed: dict[str, float | None] | None = Field(None, examples=[{"rsi_14": 55.2, "ema_20": 94990.3}])
    provisional: dict[str, float | None] | None = Field(None, description="with the candle in progress")


class HealthOut(_Open):
    status: str = Field(description="ok or degraded", examples=["ok"])
    version: str = Field(examples=["0.1.0"])
    uptime_s: float = Field(examples=[3600.5])
    source: dict[str, Any] = Field(description="name, simulated (and why), connection, staleness, gaps")
    rates: dict[str, float] = Field(examples=[{"trades_per_s": 180.0, "candles_per_s": 0.5}])
    counts: dict[str, int] = Field(examples=[{"trades": 1000, "late_trades": 0, "candles_closed": 40}])
    symbols: list[str]
    models: dict[str, Any] | None = Field(description="live models and reloads")
    history: dict[str, Any] | None = Field(None, description="the background history download, when streaming "
                                                              "from Binance: status, percent, per interval")


class TrackRecordOut(_Open):
    n: int = Field(description="scored forecasts", examples=[120])
    mae: float | None = None
    mase: float | None = Field(None, description="error relative to persistence; below 1 beats it")
    direction_hit_rate: float | None = None
    interval_coverage: float | None = None


class PredictionsOut(_Open):
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = Field(examples=["1h"])
    serving: bool = Field(description="a live model serves forecasts now")
    reason: str | None = Field(description="why not, when not serving")
    model: dict[str, Any] | None
    latest: dict[str, Any] | None = Field(description="the newest forecast: predicted_price, lower, upper, prob_up")
    forecasts: list[dict[str, Any]]
    track_record: dict[str, TrackRecordOut]


class ForecastStep(_Doc):
    step: int = Field(examples=[1])
    target_ms: int = Field(examples=[1767229200000])
    target_time: str = Field(examples=["2026-01-01T01:00:00.000Z"])
    predicted_price: float = Field(examples=[95050.0])
    lower: float = Field(examples=[94300.0])
    upper: float = Field(examples=[95800.0])


class PredictOut(_Doc):
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = Field(examples=["1h"])
    model_id: str = Field(examples=["BTCUSDT-1h-lightgbm-20260101T000000Z-abcdef"])
    model: str = Field(examples=["lightgbm"])
    level: float = Field(description="confidence of the interval", examples=[0.9])
    origin_ms: int
    origin_price: float
    prob_up: float | None
    volatility: float | None
    forecasts: list[ForecastStep]


class JobOut(_Open):
    job_id: str = Field(examples=["job-1737bdfdd1d6"])
    status: str = Field(examples=["queued"])
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = Field(examples=["1h"])
    model: str = Field(examples=["lightgbm"])


class JobsOut(_Doc):
    jobs: list[JobOut]


class ModelVersionOut(_Open):
    id: str = Field(examples=["BTCUSDT-1h-lightgbm-20260101T000000Z-abcdef"])
    symbol: str = Field(examples=["BTCUSDT"])
    horizon: str = Field(examples=["1h"])
    model: str = Field(examples=["lightgbm"])
    metrics: dict[str, Any] = Field(description="walk-forward scores next to persistence", examples=[{"mase": 0.98}])
    live: bool = Field(description="serving live forecasts")


class ModelsOut(_Doc):
    models: list[ModelVersionOut]
    live: dict[str, str] = Field(description="'SYMBOL/horizon' -> live version id",
                                 examples=[{"BTCUSDT/1h": "BTCUSDT-1h-lightgbm-20260101T000000Z-abcdef"}])


class FamilyModel(_Doc):
    name: str = Field(examples=["lightgbm"])
    description: str = Field(examples=["LightGBM regressor of the forward return"])


class Family(_Doc):
    family: str = Field(examples=["gbm"])
    models: list[FamilyModel]


class FamiliesOut(_Doc):
    families: list[Family]


class AnalyticsOut(_Open):
    period: str = Field(examples=["30d"])
    interval: str = Field(examples=["1h"])
    symbols: list[str]
    source: str = Field(description="lake or store", examples=["lake"])
    available: bool | None = Field(None, description="false (with error and detail) when asked with missing_ok")
    kpis: list[dict[str, Any]] | None = Field(None, description="per coin: prices, returns, volatility, drawdown, "
                                                                "VaR/CVaR, Sharpe/Sortino")
    correlation: dict[str, Any] | None = None
    portfolios: list[dict[str, Any]] | None = None


class BacktestFilesOut(_Doc):
    files: list[dict[str, Any]] = Field(description="predictions files: path (relative to the data directory), rows")
    live: bool = Field(description="live forecasts can be paper-traded")
    symbols: list[str]


class BacktestOut(_Open):
    config: dict[str, Any] = Field(description="strategy, sizing, fees and slippage used")
    results: list[dict[str, Any]] = Field(description="per (symbol, model): return, Sharpe, max drawdown, trades, "
                                                      "next to buy-and-hold")


class AnswerOut(_Doc):
    answer: str = Field(examples=["BTCUSDT is at 95,000.00 USDT, +1.06% over 24 h (range 93,800.00 to 95,500.00). "
                                  "Not financial advice."])
    intent: str = Field(examples=["price"])
    symbols: list[str] = Field(examples=[["BTCUSDT"]])
    horizon: str = Field(examples=["1h"])
    facts: dict[str, Any] = Field(description="the numbers the answer cites, by kind then symbol")
    sources: list[str] = Field(examples=[["BTCUSDT ticker (live)"]])
    llm: dict[str, Any] = Field(examples=[{"used": False}])


#: (method, path) -> the model of the success answer (text answers: None).
RESPONSES: dict[tuple[str, str], type[BaseModel] | None] = {
    ("GET", "/health"): HealthOut,
    ("GET", "/metrics"): None,
    ("GET", "/api/v1/symbols"): SymbolsOut,
    ("GET", "/api/v1/candles/{symbol}"): CandlesOut,
    ("GET", "/api/v1/indicators/{symbol}"): IndicatorsOut,
    ("GET", "/api/v1/tickers"): TickersOut,
    ("GET", "/api/crypto/{symbol}"): CryptoOut,
    ("GET", "/api/crypto/history/{symbol}"): CandlesOut,
    ("GET", "/api/v1/predictions/{symbol}"): PredictionsOut,
    ("GET", "/api/crypto/predictions/{symbol}"): PredictionsOut,
    ("POST", "/api/v1/predict"): PredictOut,
    ("POST", "/api/v1/train"): JobOut,
    ("GET", "/api/v1/train"): JobsOut,
    ("GET", "/api/v1/train/{job_id}"): JobOut,
    ("GET", "/api/v1/model-families"): FamiliesOut,
    ("GET", "/api/v1/models"): ModelsOut,
    ("GET", "/api/v1/models/{model_id}"): ModelVersionOut,
    ("POST", "/api/v1/models/{model_id}/promote"): ModelVersionOut,
    ("GET", "/api/v1/analytics"): AnalyticsOut,
    ("GET", "/api/v1/analytics.csv"): None,
    ("GET", "/api/v1/backtest/files"): BacktestFilesOut,
    ("POST", "/api/v1/backtest"): BacktestOut,
    ("POST", "/api/v1/assistant/ask"): AnswerOut,
    ("POST", "/api/chatbot/ask"): AnswerOut,
}
