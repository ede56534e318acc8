"""Every registry output against an independent implementation on the real hourly data.

Direct formulas (feature_refs.py) where they are short; a direct TA-Lib call with the
parameters spelled out here for the indicators TA-Lib has and whose formulas are long
(this still checks the registry's wiring: parameters, output order, warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import feature_refs as ref
import numpy as np
import pandas as pd
import pytest
import talib

from coincast.features.bars import Bars
from coincast.features.registry import INDICATORS, OUTPUTS, Family, compute_indicators

Ref = Callable[[pd.DataFrame], np.ndarray]


@pytest.fixture(scope="module")
def eth(shared_data: Path) -> pd.DataFrame:
    """4000 real ETHUSDT hours, with derived optional columns so those indicators run too."""
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "==", "ETHUSDT")])
    df = df.sort_values("open_time").iloc[6000:10000].reset_index(drop=True)
    typical = (df["high"] + df["low"] + df["close"]) / 3
    df["quote_volume"] = df["volume"] * typical
    df["trades"] = np.floor(df["volume"] / 3.0) + 1
    df["taker_buy_base"] = df["volume"] * 0.45
    return df


@pytest.fixture(scope="module")
def computed(eth: pd.DataFrame) -> dict[str, np.ndarray]:
    bars = Bars.from_frame(eth, ("quote_volume", "trades", "taker_buy_base"))
    return compute_indicators(bars)


def _a(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].to_numpy(dtype=float)


def _hlc(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _a(df, "high"), _a(df, "low"), _a(df, "close")


def _safe(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / den)


def _cci(df: pd.DataFrame) -> np.ndarray:
    tp = (_a(df, "high") + _a(df, "low") + _a(df, "close")) / 3
    win = np.lib.stride_tricks.sliding_window_view(tp, 20)
    mad = np.abs(win - win.mean(axis=1, keepdims=True)).mean(axis=1)
    out = np.full(tp.shape[0], np.nan)
    out[19:] = (tp[19:] - win.mean(axis=1)) / (0.015 * mad)
    return out


def _obv(df: pd.DataFrame) -> np.ndarray:
    c, v = _a(df, "close"), _a(df, "volume")
    out = np.empty_like(c)
    out[0] = v[0]
    for i in range(1, c.shape[0]):
        out[i] = out[i - 1] + (v[i] if c[i] > c[i - 1] else -v[i] if c[i] < c[i - 1] else 0.0)
    return out


def _ad(df: pd.DataFrame) -> np.ndarray:
    h, lo, c = _hlc(df)
    clv = np.where(h > lo, ((c - lo) - (h - c)) / np.where(h > lo, h - lo, 1.0), 0.0)
    return np.cumsum(clv * _a(df, "volume"))


def _mfi(df: pd.DataFrame) -> np.ndarray:
    tp = (_a(df, "high") + _a(df, "low") + _a(df, "close")) / 3
    flow = tp * _a(df, "volume")
    d = np.diff(tp, prepend=np.nan)
    pos, neg = np.where(d > 0, flow, 0.0), np.where(d < 0, flow, 0.0)
    p, n = ref.rolling_sum(pos, 14), ref.rolling_sum(neg, 14)
    out = 100 * p / (p + n)
    out[:14] = np.nan
    return out


def _adosc(df: pd.DataFrame) -> np.ndarray:
    """TA-Lib's Chaikin oscillator: EMAs of the A/D line seeded with its first value, shown from row 9."""
    ad = _ad(df)

    def ema_from_first(n: int) -> np.ndarray:
        out, k = np.empty_like(ad), 2 / (n + 1)
        out[0] = ad[0]
        for i in range(1, ad.shape[0]):
            out[i] = out[i - 1] + k * (ad[i] - out[i - 1])
        return out

    osc = ema_from_first(3) - ema_from_first(10)
    osc[:9] = np.nan
    return osc


def _willr(df: pd.DataFrame) -> np.ndarray:
    h, lo, c = _hlc(df)
    hh, ll = ref.rolling_max(h, 14), ref.rolling_min(lo, 14)
    return -100 * (hh - c) / (hh - ll)


def _ichimoku(df: pd.DataFrame, part: int) -> np.ndarray:
    h, lo = _a(df, "high"), _a(df, "low")

    def mid(n: int) -> np.ndarray:
        return (ref.rolling_max(h, n) + ref.rolling_min(lo, n)) / 2

    lines = [mid(9), mid(26), ref.shift((mid(9) + mid(26)) / 2, 26), ref.shift(mid(52), 26)]
    return lines[part]


def _vol_estimators(df: pd.DataFrame, kind: str) -> np.ndarray:
    o, (h, lo, c) = _a(df, "open"), _hlc(df)
    if kind == "rv":
        r = ref.logret(c)
        return np.sqrt(ref.rolling_sum(r * r, 24))
    hl = np.log(h / lo)
    if kind == "park":
        return np.sqrt(ref.sma(hl * hl, 24) / (4 * math.log(2)))
    co = np.log(c / o)
    return np.sqrt(ref.sma(0.5 * hl * hl - (2 * math.log(2) - 1) * co * co, 24))


def _cmf(df: pd.DataFrame) -> np.ndarray:
    h, lo, c = _hlc(df)
    v = _a(df, "volume")
    mfm = np.array(
        [((ci - li) - (hi - ci)) / (hi - li) if hi > li else 0.0 for hi, li, ci in zip(h, lo, c, strict=True)]
    )
    return _safe(ref.rolling_sum(mfm * v, 20), ref.rolling_sum(v, 20))


def _vwap(df: pd.DataFrame) -> np.ndarray:
    h, lo, c = _hlc(df)
    v = _a(df, "volume")
    return _safe(ref.rolling_sum((h + lo + c) / 3 * v, 24), ref.rolling_sum(v, 24))


def _volume_z(df: pd.DataFrame) -> np.ndarray:
    v = _a(df, "volume")
    return (v - ref.sma(v, 24)) / ref.windows(v, 24, lambda w, axis: np.std(w, axis=axis, ddof=1))


def _ratio24(df: pd.DataFrame, num: str, den: str) -> np.ndarray:
    return _safe(ref.rolling_sum(_a(df, num), 24), ref.rolling_sum(_a(df, den), 24))


def _bb(df: pd.DataFrame, i: int) -> np.ndarray:
    up, mid, lo = ref.bbands(_a(df, "close"))
    c = _a(df, "close")
    return [up, mid, lo, (c - lo) / (up - lo), (up - lo) / mid][i]


def _keltner(df: pd.DataFrame, i: int) -> np.ndarray:
    mid = ref.ema(_a(df, "close"), 20)
    a = ref.atr(*_hlc(df), 10)
    return [mid + 2 * a, mid, mid - 2 * a][i]


def _donchian(df: pd.DataFrame, i: int) -> np.ndarray:
    up, lo = ref.rolling_max(_a(df, "high"), 20), ref.rolling_min(_a(df, "low"), 20)
    return [up, lo, (up + lo) / 2][i]


def _tl(fn: str, cols: tuple[str, ...], i: int = 0, **kw: float) -> Ref:
    """A direct TA-Lib call (output ``i``) with explicit parameters."""

    def run(df: pd.DataFrame) -> np.ndarray:
        out = getattr(talib, fn)(*(_a(df, c) for c in cols), **kw)
        return out[i] if isinstance(out, tuple) else out

    return run


C, HL, HLC, HLCV = ("close",), ("high", "low"), ("high", "low", "close"), ("high", "low", "close", "volume")

REFS: dict[str, Ref] = {
    **{f"sma_{n}": partial(lambda d, n: ref.sma(_a(d, "close"), n), n=n) for n in (10, 20, 50, 200)},
    **{f"ema_{n}": partial(lambda d, n: ref.ema(_a(d, "close"), n), n=n) for n in (12, 20, 26, 50, 200)},
    "wma_20": lambda d: ref.wma(_a(d, "close"), 20),
    "dema_20": lambda d: 2 * ref.ema(_a(d, "close"), 20) - ref.ema(ref.ema(_a(d, "close"), 20), 20),
    "tema_20": lambda d: (lambda e1: 3 * e1 - 3 * ref.ema(e1, 20) + ref.ema(ref.ema(e1, 20), 20))(
        ref.ema(_a(d, "close"), 20)
    ),
    "kama_10": _tl("KAMA", C, timeperiod=10),
    "macd": lambda d: ref.macd(_a(d, "close"))[0],
    "macd_signal": lambda d: ref.macd(_a(d, "close"))[1],
    "macd_hist": lambda d: ref.macd(_a(d, "close"))[2],
    "adx_14": _tl("ADX", HLC, timeperiod=14),
    "plus_di_14": _tl("PLUS_DI", HLC, timeperiod=14),
    "minus_di_14": _tl("MINUS_DI", HLC, timeperiod=14),
    "aroon_up_25": _tl("AROON", HL, 1, timeperiod=25),
    "aroon_down_25": _tl("AROON", HL, 0, timeperiod=25),
    "aroon_osc_25": _tl("AROONOSC", HL, timeperiod=25),
    "ichimoku_tenkan": lambda d: _ichimoku(d, 0),
    "ichimoku_kijun": lambda d: _ichimoku(d, 1),
    "ichimoku_span_a": lambda d: _ichimoku(d, 2),
    "ichimoku_span_b": lambda d: _ichimoku(d, 3),
    "psar": _tl("SAR", HL, acceleration=0.02, maximum=0.2),
    "supertrend_10": lambda d: ref.supertrend(*_hlc(d))[0],
    "supertrend_dir_10": lambda d: ref.supertrend(*_hlc(d))[1],
    "linreg_slope_14": _tl("LINEARREG_SLOPE", C, timeperiod=14),
    "rsi_14": lambda d: ref.rsi(_a(d, "close"), 14),
    "stoch_k_14": _tl("STOCH", HLC, 0, fastk_period=14, slowk_period=3, slowd_period=3),
    "stoch_d_14": _tl("STOCH", HLC, 1, fastk_period=14, slowk_period=3, slowd_period=3),
    "stochrsi_k_14": _tl("STOCHRSI", C, 0, timeperiod=14, fastk_period=14, fastd_period=3),
    "stochrsi_d_14": _tl("STOCHRSI", C, 1, timeperiod=14, fastk_period=14, fastd_period=3),
    "willr_14": _willr,
    "cci_20": _cci,
    "roc_10": lambda d: (_a(d, "close") / ref.shift(_a(d, "close"), 10) - 1) * 100,
    "mom_10": lambda d: _a(d, "close") - ref.shift(_a(d, "close"), 10),
    "trix_15": _tl("TRIX", C, timeperiod=15),
    "ultosc": _tl("ULTOSC", HLC, timeperiod1=7, timeperiod2=14, timeperiod3=28),
    "cmo_14": _tl("CMO", C, timeperiod=14),
    "ppo": lambda d: (lambda c: (ref.ema(c, 12) - ref.ema(c, 26)) / ref.ema(c, 26) * 100)(_a(d, "close")),
    "bop": lambda d: _safe(_a(d, "close") - _a(d, "open"), _a(d, "high") - _a(d, "low")),
    "atr_14": lambda d: ref.atr(*_hlc(d), 14),
    "natr_14": lambda d: ref.atr(*_hlc(d), 14) / _a(d, "close") * 100,
    **{f"bb_{p}_20": partial(_bb, i=i) for i, p in enumerate(("upper", "middle", "lower", "pctb", "width"))},
    **{f"kc_{p}_20": partial(_keltner, i=i) for i, p in enumerate(("upper", "middle", "lower"))},
    **{f"dc_{p}_20": partial(_donchian, i=i) for i, p in enumerate(("upper", "lower", "middle"))},
    "stddev_20": lambda d: ref.windows(_a(d, "close"), 20, np.std),
    "realized_vol_24": lambda d: _vol_estimators(d, "rv"),
    "parkinson_24": lambda d: _vol_estimators(d, "park"),
    "garman_klass_24": lambda d: _vol_estimators(d, "gk"),
    "obv": _obv,
    "ad": _ad,
    "adosc": _adosc,
    "mfi_14": _mfi,
    "cmf_20": _cmf,
    "vwap_24": _vwap,
    "volume_z_24": _volume_z,
    "vwap_quote_24": lambda d: _ratio24(d, "quote_volume", "volume"),
    "avg_trade_size_24": lambda d: _ratio24(d, "volume", "trades"),
    "taker_buy_ratio_24": lambda d: _ratio24(d, "taker_buy_base", "volume"),
}


def test_registry_shape() -> None:
    names = [i.name for i in INDICATORS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    columns = [c for i in INDICATORS for c in i.columns]
    assert len(set(columns)) == len(columns)
    assert {i.family for i in INDICATORS} == set(Family)
    assert all(i.warmup >= 0 and i.outputs and i.requires for i in INDICATORS)


def test_every_output_has_a_reference() -> None:
    assert set(REFS) == set(OUTPUTS)


@pytest.mark.parametrize("column", sorted(OUTPUTS))
def test_output_matches_reference(column: str, eth: pd.DataFrame, computed: dict[str, np.ndarray]) -> None:
    got, want = computed[column], REFS[column](eth)
    assert got.shape == want.shape
    valid = ~np.isnan(want)
    assert np.array_equal(np.isnan(got), ~valid), f"{column}: NaN positions differ"
    scale = np.nanmax(np.abs(want)) or 1.0
    np.testing.assert_allclose(got[valid], want[valid], rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("ind", INDICATORS, ids=lambda i: i.name)
def test_warmup_is_exact(ind, computed: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    arrays = [computed[c] for c in ind.columns]
    assert all(not np.isnan(a[ind.warmup :]).any() for a in arrays), "a value is missing after warm-up"
    if ind.warmup:
        assert any(np.isnan(a[ind.warmup - 1]) for a in arrays), "warm-up is longer than needed"
