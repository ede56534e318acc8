"""``coincast backfill`` and ``coincast import``: history into the Parquet lake and the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from coincast.domain import Interval, InvalidRequest, SystemClock

if TYPE_CHECKING:
    from coincast.settings import Settings
    from coincast.sources.binance.backfill import BackfillReport
    from coincast.sources.files import ImportResult


def _ms(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from coincast.lake.parquet import to_ms

    try:
        return to_ms(text)
    except ValueError:
        raise InvalidRequest(f"--{what} {text!r}: expected a date like 2023-01-01 or 2023-01-01T12:00") from None


def backfill_cmd(
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols (default: the configured ones).")] = None,
    interval: Annotated[str, typer.Option(help="Kline interval: 1m 3m 5m 15m 30m 1h 4h 1d.")] = "1h",
    start: Annotated[str, typer.Option(help="First open time, UTC (e.g. 2023-01-01).")] = "2023-01-01",
    end: Annotated[str | None, typer.Option(help="End (exclusive), UTC (default: now).")] = None,
    lake: Annotated[str | None, typer.Option(help="Lake URL or path (default: <data_dir>/lake).")] = None,
    rest_url: Annotated[str | None, typer.Option(help="Binance REST root (default: https://api.binance.com).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: ./data).")] = None,
    store: Annotated[bool, typer.Option(help="Also upsert into the serving store.")] = True,
) -> None:
    """Download closed klines from Binance REST into the Parquet lake and the serving store.

    Resumable: candles already in the lake are not fetched again, so re-running after an
    interruption (or to extend the range) costs only what is missing. Respects Binance's request
    weight (pauses near the limit, waits on HTTP 429, stops on 418).

    Example: coincast backfill --symbols BTCUSDT,ETHUSDT --interval 1h --start 2023-01-01
    """
    from coincast.settings import load_settings

    settings = load_settings(symbols=symbols, data_dir=data_dir, binance__rest_url=rest_url, lake__url=lake)
    iv = Interval.parse(interval)
    start_ms = _ms(start, "start")
    assert start_ms is not None
    end_ms = _ms(end, "end") or SystemClock().now_ms()
    report = asyncio.run(_backfill(settings, list(settings.symbols), iv, start_ms, end_ms, store))
    for sym in settings.symbols:
        typer.echo(
            f"{sym} {iv.value}: {report.fetched.get(sym, 0)} fetched, {report.already.get(sym, 0)} already there"
        )
    typer.echo(f"lake: {settings.lake_url}" + (f"; store: {settings.store_url}" if store else ""))


async def _backfill(
    settings: Settings, symbols: list[str], iv: Interval, start_ms: int, end_ms: int, with_store: bool
) -> BackfillReport:
    from tqdm import tqdm

    from coincast.lake.parquet import open_lake
    from coincast.sources.binance.backfill import backfill
    from coincast.sources.binance.rest import BinanceRest

    lake = open_lake(settings.lake_url)
    rest = BinanceRest.from_url(settings.binance.rest_url)
    store = None
    if with_store:
        from coincast.wiring import open_store

        store = open_store(settings.store_url)
    bar = tqdm(total=0, unit="candle", desc=f"backfill {iv.value}", disable=None)

    def total(n: int) -> None:
        bar.reset(total=n)

    try:
        return await backfill(
            rest, lake, symbols, iv, start_ms, end_ms, store=store, on_total=total, on_progress=bar.update
        )
    finally:
        bar.close()
        await rest.close()
        if store is not None:
            await store.close()


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".csv", ".zip", ".parquet"))
        else:
            out.append(p)
    return out


def import_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.csv, .zip, .parquet).")],
    symbol: Annotated[str | None, typer.Option(help="Symbol when the file name does not say it.")] = None,
    interval: Annotated[
        str | None, typer.Option(help="Klines interval if not in the name; candle size for trades (default 1m).")
    ] = None,
    lake: Annotated[str | None, typer.Option(help="Lake URL or path (default: <data_dir>/lake).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default: ./data).")] = None,
    store: Annotated[bool, typer.Option(help="Also upsert into the serving store.")] = True,
    show: Annotated[int, typer.Option(help="Bad rows listed per file.")] = 20,
) -> None:
    """Import Binance public-data CSV (klines, trades, aggTrades; zipped or not, with or without
    header, ms or µs times), Yahoo daily CSV (Date,Open,High,Low,Close,Adj Close,Volume) or Parquet.

    Rows are validated (time strictly increasing, high >= max(open, close), low <= min(open,
    close), positive prices, no negative volume); bad rows are listed with file and line and not
    imported, the rest are. Exit status 1 when any row was bad.

    Example: coincast import BTCUSDT-1h-2023-01.zip BTC-USD.csv --symbol BTCUSDT
    """
    from coincast.settings import load_settings, prepare_data_dir
    from coincast.sources.files import read_market_file

    settings = load_settings(data_dir=data_dir, lake__url=lake)
    prepare_data_dir(settings.data_dir)
    iv = Interval.parse(interval) if interval else None
    files = _expand(paths)
    if not files:
        raise InvalidRequest("no .csv, .zip or .parquet files found in the given paths")
    results = [r for f in files for r in read_market_file(f, symbol=symbol, interval=iv)]  # nothing written yet
    asyncio.run(_write(settings, results, store))
    n_bad = 0
    for r in results:
        n_bad += len(r.bad)
        typer.echo(
            f"{r.file}: {r.kind} {r.symbol} {r.interval.value}: {r.rows} rows, "
            f"{r.frame.height} candles imported, {len(r.bad)} bad rows"
        )
        for b in r.bad[:show]:
            typer.echo(f"  {b}", err=True)
        if len(r.bad) > show:
            typer.echo(f"  ... and {len(r.bad) - show} more", err=True)
    typer.echo(f"lake: {settings.lake_url}" + (f"; store: {settings.store_url}" if store else ""))
    if n_bad:
        typer.echo(f"error: {n_bad} bad rows were not imported (listed above with file:line)", err=True)
        raise typer.Exit(1)


async def _write(settings: Settings, results: list[ImportResult], to_store: bool) -> None:
    """Lake, then store, so the two hold the same rows.

    The store opens first: when it cannot (DuckDB locked by a running ``coincast up``), the import
    stops with that message before the lake is written. Both writes are idempotent, so an import
    interrupted between them is repaired by running it again.
    """
    from coincast.lake.parquet import frame_to_candles, open_lake
    from coincast.wiring import open_store

    store = open_store(settings.store_url) if to_store else None
    try:
        if store is not None:
            # an empty read: PostgreSQL connects and migrates lazily, so its errors come now too
            await store.history("BTCUSDT", Interval.M1, start_ms=0, end_ms=0, limit=1)
        lake = open_lake(settings.lake_url)
        for r in results:
            lake.write(r.frame, r.interval)
        if store is not None:
            candles = [c for r in results for c in frame_to_candles(r.frame, r.interval)]
            for i in range(0, len(candles), 10_000):
                await store.upsert(candles[i : i + 10_000])
    finally:
        if store is not None:
            await store.close()


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill_cmd)
    app.command("import")(import_cmd)
