"""Plain answers from facts: one short paragraph per intent, citing the numbers it uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from coincast.assistant.intent import Intent

NOT_ADVICE = "Not financial advice."
HELP_TEXT = (
    "I answer questions about the market from coincast's own data: prices and 24 h change, live forecasts "
    "with their intervals and track record, technical indicators (RSI, EMA, MACD, Bollinger, ATR), "
    "comparisons, risk (volatility, drawdown, VaR), news sentiment and the models behind the forecasts. "
    'Try: "what is the bitcoin forecast for the next hour?", "compare eth and sol", "is btc overbought?", '
    '"how risky is solana?", "bitcoin news".'
)


def money(x: float | None) -> str:
    """A price with thousands separators: 2 decimals from 1 up, 6 significant digits below."""
    if x is None:
        return "n/a"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.6g}"


def pct(x: float | None, nd: int = 2, sign: bool = True) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.{nd}f}%" if sign else f"{x:.{nd}f}%"


def num(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def price_line(p: dict[str, Any]) -> str:
    return (
        f"{p['symbol']} is at {money(p['price'])} USDT, {pct(p['change_24h_pct'])} over 24 h "
        f"(range {money(p['low_24h'])} to {money(p['high_24h'])})."
    )


def forecast_line(f: dict[str, Any]) -> str:
    level = round(f["level"] * 100)
    text = (
        f"The live {f['model']} forecast for {f['symbol']} {f['horizon']} ahead is {money(f['predicted_price'])} "
        f"({pct(f['change_pct'])} from {money(f['origin_price'])}), {level}% interval {money(f['lower'])} to "
        f"{money(f['upper'])}"
    )
    text += f", P(up) {f['prob_up']:.2f}." if f.get("prob_up") is not None else "."
    tr = f["track_record"]
    if tr.get("n"):
        mase = tr.get("mase")
        verdict = "" if mase is None else (" (beats no-change)" if mase < 1 else " (no better than no-change)")
        cov = tr.get("interval_coverage")
        text += (
            f" Live track record over {tr['n']} scored forecasts: MASE {num(mase, 3)} vs persistence{verdict}, "
            f"direction hit rate {pct(None if tr.get('direction_hit_rate') is None else tr['direction_hit_rate'] * 100, 1, False)}, "  # noqa: E501
            f"interval coverage {pct(None if cov is None else cov * 100, 1, False)}."
        )
    else:
        text += " None of its live forecasts has been scored yet, so it has no live track record."
    return text


def technical_line(t: dict[str, Any]) -> str:
    text = f"{t['symbol']} {t['interval']}: "
    parts = []
    if t.get("rsi_14") is not None:
        parts.append(f"RSI 14 is {num(t['rsi_14'], 1)} ({t['rsi_zone']})")
    if t.get("ema_20") is not None and t.get("ema_50") is not None:
        parts.append(
            f"close {money(t['close'])} vs EMA 20 {money(t['ema_20'])} and EMA 50 {money(t['ema_50'])}, "
            f"trend {t['trend']}"
        )
    if t.get("macd_hist") is not None:
        mom = "positive" if t["macd_hist"] > 0 else "negative"
        parts.append(f"MACD histogram {num(t['macd_hist'], 4)} ({mom} momentum)")
    if t.get("bb_lower_20") is not None:
        parts.append(f"Bollinger 20/2 band {money(t['bb_lower_20'])} to {money(t['bb_upper_20'])}")
    if t.get("atr_14") is not None:
        parts.append(f"ATR 14 {money(t['atr_14'])}")
    if not parts:
        return text + f"too few candles for the indicators yet ({t['source']})."
    return text + "; ".join(parts) + "."


def risk_line(r: dict[str, Any]) -> str:
    return (
        f"{r['symbol']} over the last {r['days']} days of hourly candles: annualised volatility "
        f"{pct(r['volatility_annual_pct'], sign=False)}, max drawdown {pct(r['max_drawdown_pct'])}, "
        f"1-hour 95% VaR {pct(r['var_95_1h_pct'], 3, False)}, return {pct(r['return_pct'])}."
    )


def news_line(n: dict[str, Any], symbols: tuple[str, ...]) -> str:
    if not n.get("available"):
        if n.get("detail") == "news is not configured":
            return "No news available: no news source is configured."
        if n.get("errors") or "reachable" in str(n.get("detail", "")):
            return "No news available: the news sources could not be reached just now."
        return "No news available: the news sources have no recent articles."
    parts = []
    for sym in symbols:
        s = n["by_symbol"].get(sym)
        if s:
            parts.append(
                f"{sym} news sentiment is {s['label']} (mean VADER score {s['sentiment']:+.3f} over "
                f"{s['articles']} article{'' if s['articles'] == 1 else 's'}: "
                f"{s['positive']} positive, {s['negative']} negative)"
            )
        else:
            parts.append(f"no recent article mentions {sym}")
    if not symbols and n.get("sentiment") is not None:
        parts.append(
            f"crypto news sentiment is {n['label']} (mean VADER score {n['sentiment']:+.3f} over "
            f"{n['matched']} articles)"
        )
    joined = "; ".join(parts)
    text = joined[:1].upper() + joined[1:] + "."
    if n["articles"]:
        a = n["articles"][0]
        text += f' Latest: "{a["title"]}" ({a["source"]}, {a["label"]}).'
    return text


def model_line(m: dict[str, Any]) -> str:
    metrics = m["metrics"]
    shown = ", ".join(
        f"{k} {num(v, 3) if isinstance(v, float) else v}"
        for k, v in list(metrics.items())[:4]
        if isinstance(v, (int, float))
    )
    return (
        f"The live model for {m['symbol']} {m['horizon']} is {m['model']} ({m['model_id']}), trained on "
        f"{m['interval']} candles from {_day(m['train_start_ms'])} to {_day(m['train_end_ms'])} with "
        f"{m['features']} features ({m['feature_set']})" + (f"; validation {shown}." if shown else ".")
    )


def render(intent: Intent, symbols: tuple[str, ...], horizon: str, facts: dict[str, Any]) -> str:
    """The template answer for ``intent`` over ``facts`` (keyed by kind, then symbol)."""
    if intent is Intent.HELP:
        return HELP_TEXT
    lines: list[str] = []
    missing: list[str] = []
    for sym in symbols:
        p = facts.get("price", {}).get(sym)
        if intent is Intent.PRICE:
            lines.append(price_line(p)) if p else missing.append(f"no price for {sym} yet")
        elif intent is Intent.FORECAST:
            f = facts.get("forecast", {}).get(sym)
            if f:
                lines.append(forecast_line(f))
            else:
                missing.append(
                    f"no live {horizon} forecast for {sym} yet: no model is serving it (train one on the "
                    f"Models page)"
                )
                if p:
                    lines.append(price_line(p))
        elif intent is Intent.TECHNICAL:
            t = facts.get("technical", {}).get(sym)
            lines.append(technical_line(t)) if t else missing.append(f"no candles for {sym} yet")
        elif intent is Intent.RISK:
            r = facts.get("risk", {}).get(sym)
            lines.append(risk_line(r)) if r else missing.append(f"too few hourly candles for {sym} to measure risk")
        elif intent is Intent.MODEL:
            m = facts.get("model", {}).get(sym)
            lines.append(model_line(m)) if m else missing.append(f"no model is live for {sym} {horizon}")
            f = facts.get("forecast", {}).get(sym)
            if f:
                lines.append(forecast_line(f))
    if intent is Intent.COMPARISON:
        lines.extend(_comparison(symbols, facts))
    if intent is Intent.NEWS:
        lines.append(news_line(facts.get("news", {}), symbols))
    text = " ".join(lines + [m[0].upper() + m[1:] + "." for m in missing])
    return f"{text} {NOT_ADVICE}".strip()


def _comparison(symbols: tuple[str, ...], facts: dict[str, Any]) -> list[str]:
    rows = []
    for sym in symbols:
        p, r = facts.get("price", {}).get(sym), facts.get("risk", {}).get(sym)
        if p is None:
            rows.append(f"{sym}: no price yet")
            continue
        text = f"{sym} {money(p['price'])} ({pct(p['change_24h_pct'])} 24 h"
        if r:
            text += (
                f", volatility {pct(r['volatility_annual_pct'], sign=False)}/yr, max drawdown "
                f"{pct(r['max_drawdown_pct'])}"
            )
        rows.append(text + ")")
    out = ["; ".join(rows) + "."]
    priced = [(facts["price"][s]["change_24h_pct"], s) for s in symbols if facts.get("price", {}).get(s)]
    if len(priced) >= 2:
        best, worst = max(priced), min(priced)
        out.append(f"Strongest over 24 h: {best[1]} ({pct(best[0])}); weakest: {worst[1]} ({pct(worst[0])}).")
    return out


def unknown_line(unknown: Sequence[str], followed: Sequence[str], looked: Sequence[dict[str, Any]]) -> str:
    """Coins asked about that coincast does not follow, with what Binance says about them."""
    names = ", ".join(unknown)
    text = f"coincast does not follow {names}; it follows {', '.join(followed)}."
    for f in looked:
        if f["status"] == "found":
            text += (f" On Binance, {f['symbol']} is at {money(f['price'])} USDT, {pct(f['change_24h_pct'])} over "
                     f"24 h (range {money(f['low_24h'])} to {money(f['high_24h'])}).")
        elif f["status"] == "unlisted":
            text += f" Binance lists no {f['symbol']} pair either."
        else:
            text += f" Binance could not be reached to look up {f['symbol']}."
    return text


_MARKDOWN = (
    (re.compile(r"```[a-z]*\n?|`"), ""),  # code fences and inline code marks
    (re.compile(r"\[([^\]]+)\]\((\S+?)\)"), r"\1 (\2)"),  # [text](url)
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # italics
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.M), ""),  # headings
    (re.compile(r"^\s*(?:[-*+]|\d+\.)\s+", re.M), ""),  # list markers
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"\s*\n\s*"), " "),  # one paragraph
)


def plain(text: str) -> str:
    """``text`` without markdown syntax, as one paragraph (chat models like to format)."""
    for pattern, repl in _MARKDOWN:
        text = pattern.sub(repl, text)
    return text.strip()
