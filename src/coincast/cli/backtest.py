"""``coincast backtest``: trade a predictions file's forecasts with fees and slippage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to the coincast CLI."""
    app.command("backtest")(backtest)


def _names(text: str | None) -> list[str] | None:
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    return names or None


def backtest(
    predictions: Annotated[
        Path, typer.Option("--predictions", help="Predictions parquet from coincast evaluate --predictions.")
    ],
    model: Annotated[str | None, typer.Option("--model", help="Comma-separated models (default: all).")] = None,
    symbols: Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all).")] = None,
    strategy: Annotated[
        str, typer.Option("--strategy", help="long_only, long_short (sign of the forecast) or prob (prob_up).")
    ] = "long_short",
    fee_bps: Annotated[float, typer.Option("--fee-bps", help="Fee per side, basis points of notional.")] = 10.0,
    slippage_bps: Annotated[float, typer.Option("--slippage-bps", help="Slippage per trade, basis points.")] = 5.0,
    prob_long: Annotated[float, typer.Option("--prob-long", help="prob: go long above this prob_up.")] = 0.55,
    prob_short: Annotated[float, typer.Option("--prob-short", help="prob: go short below this prob_up.")] = 0.45,
    confident: Annotated[
        bool, typer.Option("--confident", help="Trade only when the interval excludes the current price.")
    ] = False,
    sizing: Annotated[str, typer.Option("--sizing", help="fixed or vol_target.")] = "fixed",
    fraction: Annotated[float, typer.Option("--fraction", help="fixed: weight of a position.")] = 1.0,
    target_vol: Annotated[float, typer.Option("--target-vol", help="vol_target: annualised target.")] = 0.5,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and trades as JSON.")] = None,
    equity_out: Annotated[Path | None, typer.Option("--equity", help="Write the equity curves as parquet.")] = None,
) -> None:
    """Backtest forecast-driven strategies against buy-and-hold, with fees and slippage.

    A position opened at a forecast's origin is held to its target; overlapping forecasts are
    skipped. Costs are charged on every position change. Persistence never trades (zero line).

    Example: coincast backtest --predictions preds.parquet --strategy long_short --fee-bps 10 --slippage-bps 5
    """
    from coincast.backtest.engine import (
        BacktestConfig,
        equity_frame,
        load_predictions,
        result_payload,
        run_backtest,
    )

    cfg = BacktestConfig(
        strategy=strategy,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        prob_long=prob_long,
        prob_short=prob_short,
        confident_only=confident,
        sizing=sizing,
        fraction=fraction,
        target_vol=target_vol,
    )
    results = run_backtest(load_predictions(predictions), cfg, models=_names(model), symbols=_names(symbols))
    cols = ("total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "max_drawdown")
    labels = ("return", "annual", "ann_vol", "sharpe", "sortino", "max_dd")
    head = f"{'symbol':<10} {'horizon':<7} {'model':<18} " + " ".join(f"{c:>11}" for c in labels)
    head += f" {'hit_rate':>8} {'trades':>7} {'turnover':>9} {'exposure':>8} {'fees':>8}"
    typer.echo(
        f"strategy {cfg.strategy}, fee {cfg.fee_bps:g} bps, slippage {cfg.slippage_bps:g} bps, sizing {cfg.sizing}"
    )
    typer.echo(head)

    def row(sym: str, hor: str, name: str, m: dict[str, float], extra: bool) -> str:
        text = f"{sym:<10} {hor:<7} {name:<18.18} " + " ".join(f"{m[c]:>11.4f}" for c in cols)
        if extra:
            text += (
                f" {m['hit_rate']:>8.3f} {int(m['trades']):>7d} {m['turnover']:>9.1f} {m['exposure']:>8.3f}"
                f" {m['fees_paid'] + m['slippage_paid']:>8.4f}"
            )
        return text

    shown: dict[tuple[str, str], dict[str, float]] = {}
    for res in results:
        key = (res.symbol, res.horizon)
        if shown.get(key) != res.buy_and_hold:  # models sharing the same span share one benchmark row
            shown[key] = res.buy_and_hold
            typer.echo(row(res.symbol, res.horizon, "buy_and_hold", res.buy_and_hold, False))
        typer.echo(row(res.symbol, res.horizon, res.model, res.metrics, True))
    if json_out is not None:
        payload = [result_payload(r, max_trades=None, max_points=None) for r in results]
        json_out.write_text(json.dumps({"config": asdict(cfg), "results": payload}, allow_nan=False))
        typer.echo(f"wrote {json_out}")
    if equity_out is not None:
        equity_frame(results).to_parquet(equity_out, index=False)
        typer.echo(f"wrote {equity_out}")
