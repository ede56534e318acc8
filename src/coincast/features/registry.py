"""The single list of technical indicators: name, family, parameters, warm-up, outputs, inputs.

TA-Lib computes every indicator it has (its warm-up is TA-Lib's own lookback for the given
parameters); :mod:`coincast.features.custom` holds the few it lacks. An indicator whose
``requires`` names an optional klines column (quote volume, trade count, taker volume) is only
computed when the data has that column; the pipeline skips it with a note otherwise.
"""

from __future__ import annotations

import numpy as np
import talib

from coincast.features import custom
from coincast.features.bars import F64, Bars
from coincast.features.spec import Family, Indicator, Output, Scale, coincast_indicator, lookback, talib_indicator

__all__ = [
    "BY_NAME",
    "INDICATORS",
    "OUTPUTS",
    "Family",
    "Indicator",
    "Output",
    "Scale",
    "available_indicators",
    "compute_indicators",
    "indicator_columns",
]

_OHLC = ("high", "low", "close")
_ta = talib_indicator
_custom = coincast_indicator
_lookback = lookback


def _bbands(bars: Bars) -> tuple[F64, ...]:
    upper, middle, lower = talib.BBANDS(bars.close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)  # type: ignore[arg-type]
    with np.errstate(divide="ignore", invalid="ignore"):
        width = upper - lower
        pctb = np.where(width > 0, (bars.close - lower) / width, np.nan)
        bandwidth = width / middle
    return upper, middle, lower, pctb, bandwidth


def _aroon(bars: Bars) -> tuple[F64, ...]:
    down, up = talib.AROON(bars.high, bars.low, timeperiod=25)
    return up, down, up - down


def _adx(bars: Bars) -> tuple[F64, ...]:
    h, lo, c = bars.high, bars.low, bars.close
    return (
        talib.ADX(h, lo, c, timeperiod=14),
        talib.PLUS_DI(h, lo, c, timeperiod=14),
        talib.MINUS_DI(h, lo, c, timeperiod=14),
    )


def _stochrsi(bars: Bars) -> tuple[F64, ...]:
    k, d = talib.STOCHRSI(bars.close, timeperiod=14, fastk_period=14, fastd_period=3, fastd_matype=0)  # type: ignore[arg-type]
    return k, d


T, M, V, VOL = Family.TREND, Family.MOMENTUM, Family.VOLATILITY, Family.VOLUME
P, D, F, VD, Z = Scale.PRICE, Scale.PRICE_DELTA, Scale.FREE, Scale.VOLUME_DELTA, Scale.ZSCORE


def _moving_averages() -> list[Indicator]:
    out: list[Indicator] = []
    for n in (10, 20, 50, 200):
        out.append(_ta(f"sma_{n}", T, "SMA", ((f"sma_{n}", P),), f"simple moving average of close, {n}", timeperiod=n))
    for n in (12, 20, 26, 50, 200):
        out.append(_ta(f"ema_{n}", T, "EMA", ((f"ema_{n}", P),), f"exponential moving average, {n}", timeperiod=n))
    out += [
        _ta("wma_20", T, "WMA", (("wma_20", P),), "linearly weighted moving average", timeperiod=20),
        _ta("dema_20", T, "DEMA", (("dema_20", P),), "double exponential moving average", timeperiod=20),
        _ta("tema_20", T, "TEMA", (("tema_20", P),), "triple exponential moving average", timeperiod=20),
        _ta("kama_10", T, "KAMA", (("kama_10", P),), "Kaufman adaptive moving average", timeperiod=10),
    ]
    return out


def _trend() -> list[Indicator]:
    return [
        *_moving_averages(),
        _ta(
            "macd",
            T,
            "MACD",
            (("macd", D), ("macd_signal", D), ("macd_hist", D)),
            "MACD line, signal line and histogram",
            fastperiod=12,
            slowperiod=26,
            signalperiod=9,
        ),
        _custom(
            "adx_14",
            T,
            _adx,
            (("adx_14", F), ("plus_di_14", F), ("minus_di_14", F)),
            _lookback("ADX", timeperiod=14),
            _OHLC,
            "average directional index with +DI / -DI",
            timeperiod=14,
        ),
        _custom(
            "aroon_25",
            T,
            _aroon,
            (("aroon_up_25", F), ("aroon_down_25", F), ("aroon_osc_25", F)),
            _lookback("AROON", timeperiod=25),
            ("high", "low"),
            "Aroon up / down / oscillator",
            timeperiod=25,
        ),
        _custom(
            "ichimoku",
            T,
            lambda b: custom.ichimoku(b.high, b.low, 9, 26, 52),
            (("ichimoku_tenkan", P), ("ichimoku_kijun", P), ("ichimoku_span_a", P), ("ichimoku_span_b", P)),
            51 + 26,
            ("high", "low"),
            "Ichimoku cloud without the chikou span (it would need future closes)",
            tenkan=9,
            kijun=26,
            senkou=52,
        ),
        _ta(
            "psar",
            T,
            "SAR",
            (("psar", P),),
            "parabolic SAR",
            inputs=("high", "low"),
            acceleration=0.02,
            maximum=0.2,
        ),
        _custom(
            "supertrend_10",
            T,
            lambda b: custom.supertrend(b.high, b.low, b.close, 10, 3.0),
            (("supertrend_10", P), ("supertrend_dir_10", F)),
            _lookback("ATR", timeperiod=10),
            _OHLC,
            "SuperTrend line and direction (+1 / -1) on a Wilder ATR",
            window=10,
            multiplier=3.0,
        ),
        _ta(
            "linreg_slope_14",
            T,
            "LINEARREG_SLOPE",
            (("linreg_slope_14", D),),
            "slope of the least-squares line through the last closes",
            timeperiod=14,
        ),
    ]


def _momentum() -> list[Indicator]:
    return [
        _ta("rsi_14", M, "RSI", (("rsi_14", F),), "relative strength index (Wilder)", timeperiod=14),
        _ta(
            "stoch_14",
            M,
            "STOCH",
            (("stoch_k_14", F), ("stoch_d_14", F)),
            "slow stochastic %K / %D",
            inputs=_OHLC,
            fastk_period=14,
            slowk_period=3,
            slowk_matype=0,
            slowd_period=3,
            slowd_matype=0,
        ),
        _custom(
            "stochrsi_14",
            M,
            _stochrsi,
            (("stochrsi_k_14", F), ("stochrsi_d_14", F)),
            _lookback("STOCHRSI", timeperiod=14, fastk_period=14, fastd_period=3),
            ("close",),
            "stochastic RSI %K / %D",
            timeperiod=14,
            fastk_period=14,
            fastd_period=3,
        ),
        _ta("willr_14", M, "WILLR", (("willr_14", F),), "Williams %R", inputs=_OHLC, timeperiod=14),
        _ta("cci_20", M, "CCI", (("cci_20", F),), "commodity channel index", inputs=_OHLC, timeperiod=20),
        _ta("roc_10", M, "ROC", (("roc_10", F),), "rate of change, percent", timeperiod=10),
        _ta("mom_10", M, "MOM", (("mom_10", D),), "momentum: close - close n rows ago", timeperiod=10),
        _ta("trix_15", M, "TRIX", (("trix_15", F),), "rate of change of a triple EMA, percent", timeperiod=15),
        _ta(
            "ultosc",
            M,
            "ULTOSC",
            (("ultosc", F),),
            "Ultimate Oscillator",
            inputs=_OHLC,
            timeperiod1=7,
            timeperiod2=14,
            timeperiod3=28,
        ),
        _ta("cmo_14", M, "CMO", (("cmo_14", F),), "Chande momentum oscillator", timeperiod=14),
        _ta(
            "ppo",
            M,
            "PPO",
            (("ppo", F),),
            "percentage price oscillator",
            fastperiod=12,
            slowperiod=26,
            matype=1,
        ),
        _ta("bop", M, "BOP", (("bop", F),), "balance of power", inputs=("open", "high", "low", "close")),
    ]


def _volatility() -> list[Indicator]:
    return [
        _ta("atr_14", V, "ATR", (("atr_14", D),), "average true range (Wilder)", inputs=_OHLC, timeperiod=14),
        _ta("natr_14", V, "NATR", (("natr_14", F),), "ATR as percent of close", inputs=_OHLC, timeperiod=14),
        _custom(
            "bbands_20",
            V,
            _bbands,
            (
                ("bb_upper_20", P),
                ("bb_middle_20", P),
                ("bb_lower_20", P),
                ("bb_pctb_20", F),
                ("bb_width_20", F),
            ),
            _lookback("BBANDS", timeperiod=20),
            ("close",),
            "Bollinger bands (population std), %B, bandwidth",
            timeperiod=20,
            nbdev=2.0,
        ),
        _custom(
            "keltner_20",
            V,
            lambda b: custom.keltner(b.high, b.low, b.close, 20, 10, 2.0),
            (("kc_upper_20", P), ("kc_middle_20", P), ("kc_lower_20", P)),
            19,
            _OHLC,
            "Keltner channel: EMA 20 ± 2 × ATR 10",
            window=20,
            atr_window=10,
            multiplier=2.0,
        ),
        _custom(
            "donchian_20",
            V,
            lambda b: custom.donchian(b.high, b.low, 20),
            (("dc_upper_20", P), ("dc_lower_20", P), ("dc_middle_20", P)),
            19,
            ("high", "low"),
            "Donchian channel: highest high, lowest low, midpoint",
            window=20,
        ),
        _ta("stddev_20", V, "STDDEV", (("stddev_20", D),), "population std of close", timeperiod=20, nbdev=1.0),
        _custom(
            "realized_vol_24",
            V,
            lambda b: (custom.realized_vol(b.close, 24),),
            (("realized_vol_24", F),),
            24,
            ("close",),
            "sqrt of summed squared log returns (not annualised)",
            window=24,
        ),
        _custom(
            "parkinson_24",
            V,
            lambda b: (custom.parkinson(b.high, b.low, 24),),
            (("parkinson_24", F),),
            23,
            ("high", "low"),
            "Parkinson high-low volatility per bar",
            window=24,
        ),
        _custom(
            "garman_klass_24",
            V,
            lambda b: (custom.garman_klass(b.open, b.high, b.low, b.close, 24),),
            (("garman_klass_24", F),),
            23,
            ("open", "high", "low", "close"),
            "Garman-Klass OHLC volatility per bar",
            window=24,
        ),
    ]


def _volume() -> list[Indicator]:
    hlcv = ("high", "low", "close", "volume")
    return [
        _ta("obv", VOL, "OBV", (("obv", Z),), "on-balance volume", inputs=("close", "volume")),
        _ta("ad", VOL, "AD", (("ad", Z),), "Chaikin accumulation/distribution line", inputs=hlcv),
        _ta(
            "adosc",
            VOL,
            "ADOSC",
            (("adosc", VD),),
            "Chaikin oscillator (EMA 3 - EMA 10 of A/D)",
            inputs=hlcv,
            fastperiod=3,
            slowperiod=10,
        ),
        _ta("mfi_14", VOL, "MFI", (("mfi_14", F),), "money flow index", inputs=hlcv, timeperiod=14),
        _custom(
            "cmf_20",
            VOL,
            lambda b: (custom.chaikin_money_flow(b.high, b.low, b.close, b.volume, 20),),
            (("cmf_20", F),),
            19,
            hlcv,
            "Chaikin money flow",
            window=20,
        ),
        _custom(
            "vwap_24",
            VOL,
            lambda b: (custom.rolling_vwap(b.high, b.low, b.close, b.volume, 24),),
            (("vwap_24", P),),
            23,
            hlcv,
            "rolling VWAP of the typical price",
            window=24,
        ),
        _custom(
            "volume_z_24",
            VOL,
            lambda b: (custom.zscore(b.volume, 24),),
            (("volume_z_24", F),),
            23,
            ("volume",),
            "volume z-score against its rolling mean / sample std",
            window=24,
        ),
        _custom(
            "vwap_quote_24",
            VOL,
            lambda b: (custom.rolling_ratio(b.column("quote_volume"), b.volume, 24),),
            (("vwap_quote_24", P),),
            23,
            ("quote_volume", "volume"),
            "exact rolling VWAP from quote volume / base volume",
            window=24,
        ),
        _custom(
            "avg_trade_size_24",
            VOL,
            lambda b: (custom.rolling_ratio(b.volume, b.column("trades"), 24),),
            (("avg_trade_size_24", Z),),
            23,
            ("volume", "trades"),
            "base volume per trade",
            window=24,
        ),
        _custom(
            "taker_buy_ratio_24",
            VOL,
            lambda b: (custom.rolling_ratio(b.column("taker_buy_base"), b.volume, 24),),
            (("taker_buy_ratio_24", F),),
            23,
            ("taker_buy_base", "volume"),
            "share of volume bought by takers",
            window=24,
        ),
    ]


INDICATORS: tuple[Indicator, ...] = (*_trend(), *_momentum(), *_volatility(), *_volume())
BY_NAME: dict[str, Indicator] = {ind.name: ind for ind in INDICATORS}
OUTPUTS: dict[str, Output] = {o.name: o for ind in INDICATORS for o in ind.outputs}


def indicator_columns(indicators: tuple[Indicator, ...] = INDICATORS) -> list[str]:
    """Output column names in registry order."""
    return [c for ind in indicators for c in ind.columns]


def available_indicators(bars: Bars) -> tuple[Indicator, ...]:
    """The registry entries whose input columns ``bars`` has."""
    return tuple(i for i in INDICATORS if all(getattr(bars, c) is not None for c in i.requires))


def compute_indicators(bars: Bars, indicators: tuple[Indicator, ...] | None = None) -> dict[str, F64]:
    """Every output column of ``indicators`` (default: all those ``bars`` has inputs for)."""
    out: dict[str, F64] = {}
    for ind in available_indicators(bars) if indicators is None else indicators:
        values = ind.compute(bars)
        if len(values) != len(ind.outputs):
            raise RuntimeError(f"indicator {ind.name} returned {len(values)} arrays for {len(ind.outputs)} outputs")
        for spec, arr in zip(ind.outputs, values, strict=True):
            out[spec.name] = np.asarray(arr, dtype=np.float64)
    return out
