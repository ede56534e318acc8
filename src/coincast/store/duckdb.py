"""Embedded serving store on DuckDB: one file, versioned schema, idempotent upserts.

DuckDB is synchronous; every call runs on one worker thread (``asyncio.to_thread`` under a lock)
so the event loop never blocks on disk. Each upsert is one transaction: once it returns, the rows
are in DuckDB's write-ahead log and survive a crash of the process.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import duckdb
import pyarrow as pa

from coincast.domain import Candle, ConfigError, DeadLetter, FoldState, Interval, TransientError
from coincast.store.base import CANDLE_COLUMNS, candle_row, fold_symbols, row_candle
from coincast.store.predictions import PRED_COLUMNS, PRED_FIELDS, LivePrediction, row_prediction

T = TypeVar("T")

# Each entry moves the schema one version up; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE candles (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        open_time BIGINT NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL,
        quote_volume DOUBLE NOT NULL,
        trades BIGINT NOT NULL,
        taker_buy_volume DOUBLE NOT NULL,
        taker_buy_quote_volume DOUBLE NOT NULL,
        PRIMARY KEY (symbol, interval, open_time)
    );
    CREATE TABLE dead_letters (
        source VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        raw VARCHAR NOT NULL,
        recv_ms BIGINT NOT NULL,
        extra VARCHAR NOT NULL
    );
    """,
    # 2: live forecasts and their outcomes (coincast.store.predictions)
    """
    CREATE TABLE predictions (
        symbol VARCHAR NOT NULL,
        horizon VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        origin_time BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        target_time BIGINT NOT NULL,
        due_ms BIGINT NOT NULL,
        origin_price DOUBLE NOT NULL,
        predicted_price DOUBLE NOT NULL,
        lower DOUBLE NOT NULL,
        upper DOUBLE NOT NULL,
        prob_up DOUBLE,
        volatility DOUBLE,
        level DOUBLE NOT NULL,
        created_ms BIGINT NOT NULL,
        actual_price DOUBLE,
        scored_ms BIGINT,
        PRIMARY KEY (symbol, horizon, model_id, origin_time)
    );
    CREATE INDEX predictions_due ON predictions (due_ms);
    """,
    # 3: the candle fold's state, so a restart continues candles in progress (coincast.domain.FoldState)
    """
    CREATE TABLE open_candles (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        open_time BIGINT NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL,
        quote_volume DOUBLE NOT NULL,
        trades BIGINT NOT NULL,
        taker_buy_volume DOUBLE NOT NULL,
        taker_buy_quote_volume DOUBLE NOT NULL,
        PRIMARY KEY (symbol, interval, open_time)
    );
    CREATE TABLE fold_symbols (
        symbol VARCHAR PRIMARY KEY,
        max_trade_id BIGINT NOT NULL,
        watermark_ms BIGINT NOT NULL
    );
    """,
)



class DuckDBStore:
    """A :class:`~coincast.store.base.CandleStore` in a DuckDB file (or ``:memory:``)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._closed = False
        migrate(conn)

    @classmethod
    def open(cls, path: str) -> Self:
        """Open (creating if needed) the database at ``path``.

        Raises:
            ConfigError: the file cannot be opened (e.g. another process holds its lock).
        """
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = duckdb.connect(path)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():  # DuckDB allows one process to write a file
                pid = re.search(r"PID (\d+)", str(exc))
                who = f"process {pid[1]}" if pid else "another process"
                raise ConfigError(
                    f"DuckDB store {path!r} is in use by {who} (a running coincast up?); DuckDB allows one "
                    "process at a time: stop it and run this again (nothing was written)"
                ) from None
            raise ConfigError(f"cannot open DuckDB store {path!r}: {exc}") from exc
        return cls(conn)

    async def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        def call() -> T:
            with self._lock:
                if self._closed:
                    raise TransientError("store is closed")
                try:
                    return fn(self._conn)
                except duckdb.Error as exc:
                    raise TransientError(f"DuckDB: {exc}") from exc

        return await asyncio.to_thread(call)

    async def upsert(self, candles: Sequence[Candle]) -> int:
        if not candles:
            return 0
        table = pa.table({
            "symbol": [c.symbol for c in candles],
            "interval": [c.interval.value for c in candles],
            "open_time": pa.array([c.open_ms for c in candles], pa.int64()),
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
            "quote_volume": [c.quote_volume for c in candles],
            "trades": pa.array([c.trades for c in candles], pa.int64()),
            "taker_buy_volume": [c.taker_buy_volume for c in candles],
            "taker_buy_quote_volume": [c.taker_buy_quote_volume for c in candles],
        })
        return await self.upsert_arrow(table)

    async def upsert_arrow(self, table: pa.Table) -> int:
        """Bulk upsert of an Arrow table with the candle columns (backfill and import)."""
        table = table.select(list(CANDLE_COLUMNS))

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.register("incoming", table)
            try:
                conn.execute("BEGIN")
                # last row wins inside one batch too, so a batch with repeats stays idempotent
                conn.execute(
                    f"INSERT OR REPLACE INTO candles SELECT {', '.join(CANDLE_COLUMNS)} FROM incoming "
                    "QUALIFY row_number() OVER (PARTITION BY symbol, interval, open_time) = 1"
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.unregister("incoming")
            return int(table.num_rows)

        return await self._run(write)

    async def history(
        self, symbol: str, interval: Interval, *, start_ms: int, end_ms: int, limit: int
    ) -> list[Candle]:
        def read(conn: duckdb.DuckDBPyConnection) -> list[Candle]:
            rows = conn.execute(
                f"SELECT {', '.join(CANDLE_COLUMNS)} FROM ("
                f"  SELECT * FROM candles WHERE symbol = ? AND interval = ? AND open_time BETWEEN ? AND ?"
                "   ORDER BY open_time DESC LIMIT ?) ORDER BY open_time",
                [symbol, interval.value, start_ms, end_ms, limit],
            ).fetchall()
            return [row_candle(r) for r in rows]

        return await self._run(read)

    async def latest(self, symbol: str, interval: Interval) -> Candle | None:
        got = await self.history(symbol, interval, start_ms=0, end_ms=2**62, limit=1)
        return got[0] if got else None

    async def count(self) -> int:
        def count(conn: duckdb.DuckDBPyConnection) -> int:
            (row,) = conn.execute("SELECT count(*) FROM candles").fetchall()
            return int(row[0]) if row else 0

        return await self._run(count)

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> int:
        if not items:
            return 0
        rows = [(d.source, d.reason, d.raw, d.recv_ms, json.dumps(d.extra)) for d in items]

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.executemany("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)", rows)
            return len(rows)

        return await self._run(write)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        def read(conn: duckdb.DuckDBPyConnection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT source, reason, raw, recv_ms, extra FROM dead_letters ORDER BY recv_ms DESC LIMIT ?",
                [limit],
            ).fetchall()
            return [DeadLetter(r[0], r[1], r[2], int(r[3]), json.loads(r[4])) for r in rows]

        return await self._run(read)

    # -- live predictions (coincast.store.predictions.PredictionStore) --------------------------

    async def add_predictions(self, items: Sequence[LivePrediction]) -> int:
        if not items:
            return 0
        # One Arrow scan, not executemany: DuckDB's per-row inserts cost milliseconds each.
        table = pa.table({col: pa.array([getattr(p, f) for p in items], _PRED_TYPES[f])
                          for f, col in zip(PRED_FIELDS, PRED_COLUMNS, strict=True)})

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.register("incoming_predictions", table)
            try:
                conn.execute(f"INSERT OR REPLACE INTO predictions ({', '.join(PRED_COLUMNS)}) "
                             f"SELECT {', '.join(PRED_COLUMNS)} FROM incoming_predictions")
            finally:
                conn.unregister("incoming_predictions")
            return int(table.num_rows)

        return await self._run(write)

    async def predictions(
        self, symbol: str, horizon: str, *, limit: int, model_id: str | None = None, scored: bool | None = None
    ) -> list[LivePrediction]:
        where, args = ["symbol = ?", "horizon = ?"], [symbol, horizon]
        if model_id is not None:
            where.append("model_id = ?")
            args.append(model_id)
        if scored is not None:
            where.append("actual_price IS NOT NULL" if scored else "actual_price IS NULL")
        sql = (f"SELECT * FROM (SELECT {', '.join(PRED_COLUMNS)} FROM predictions WHERE {' AND '.join(where)}"
               " ORDER BY origin_time DESC, created_ms DESC LIMIT ?) ORDER BY origin_time, created_ms")
        return await self._select_predictions(sql, [*args, limit])

    async def due_predictions(self, now_ms: int, *, limit: int = 1000) -> list[LivePrediction]:
        sql = (f"SELECT {', '.join(PRED_COLUMNS)} FROM predictions WHERE actual_price IS NULL AND due_ms <= ?"
               " ORDER BY due_ms LIMIT ?")
        return await self._select_predictions(sql, [now_ms, limit])

    async def _select_predictions(self, sql: str, args: list[Any]) -> list[LivePrediction]:
        return await self._run(lambda conn: [row_prediction(r) for r in conn.execute(sql, args).fetchall()])

    async def record_outcomes(self, outcomes: Sequence[LivePrediction]) -> int:
        done = [p for p in outcomes if p.actual_price is not None]
        if not done:
            return 0
        table = pa.table({
            "symbol": [p.symbol for p in done],
            "horizon": [p.horizon for p in done],
            "model_id": [p.model_id for p in done],
            "origin_time": pa.array([p.origin_ms for p in done], pa.int64()),
            "actual_price": pa.array([p.actual_price for p in done], pa.float64()),
            "scored_ms": pa.array([p.scored_ms for p in done], pa.int64()),
        })

        def write(conn: duckdb.DuckDBPyConnection) -> int:
            conn.register("outcomes", table)
            try:
                conn.execute(
                    "UPDATE predictions SET actual_price = o.actual_price, scored_ms = o.scored_ms FROM outcomes o "
                    "WHERE predictions.symbol = o.symbol AND predictions.horizon = o.horizon "
                    "AND predictions.model_id = o.model_id AND predictions.origin_time = o.origin_time")
            finally:
                conn.unregister("outcomes")
            return int(table.num_rows)

        return await self._run(write)

    async def save_fold(self, state: FoldState) -> None:
        rows = [candle_row(c) for c in state.open_candles]
        names = fold_symbols(state)
        syms = [(s, state.max_trade_ids.get(s, -1), state.watermarks_ms.get(s, 0)) for s in names]

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("BEGIN")
            try:
                conn.execute("DELETE FROM open_candles WHERE list_contains(?, symbol)", [names])
                conn.execute("DELETE FROM fold_symbols WHERE list_contains(?, symbol)", [names])
                if rows:
                    conn.executemany(f"INSERT INTO open_candles VALUES ({', '.join(['?'] * 12)})", rows)
                if syms:
                    conn.executemany("INSERT INTO fold_symbols VALUES (?, ?, ?)", syms)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(write)

    async def load_fold(self, symbols: Collection[str] | None = None) -> FoldState | None:
        where, args = ("WHERE list_contains(?, symbol)", [sorted(symbols)]) if symbols is not None else ("", [])

        def read(conn: duckdb.DuckDBPyConnection) -> FoldState | None:
            syms = conn.execute(f"SELECT symbol, max_trade_id, watermark_ms FROM fold_symbols {where}", args).fetchall()
            if not syms:
                return None
            rows = conn.execute(f"SELECT {', '.join(CANDLE_COLUMNS)} FROM open_candles {where} ORDER BY open_time",
                                args).fetchall()
            return FoldState(tuple(row_candle(r, closed=False) for r in rows),
                             {r[0]: int(r[1]) for r in syms}, {r[0]: int(r[2]) for r in syms})

        return await self._run(read)

    async def close(self) -> None:
        def shut(conn: duckdb.DuckDBPyConnection) -> None:
            conn.execute("CHECKPOINT")
            conn.close()

        if self._closed:
            return
        await self._run(shut)
        self._closed = True


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to the newest version; returns it. Refuses a database from a newer coincast."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    # fetchall, not fetchone: DuckDB keeps a partly fetched result open and refuses the next statement
    (row,) = conn.execute("SELECT max(version) FROM schema_version").fetchall()
    current = int(row[0]) if row[0] is not None else 0
    if current > len(MIGRATIONS):
        raise ConfigError(
            f"store schema version {current} is newer than this coincast supports ({len(MIGRATIONS)}); upgrade"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN")
        conn.execute(MIGRATIONS[version - 1])
        conn.execute("INSERT INTO schema_version VALUES (?)", [version])
        conn.execute("COMMIT")
    return len(MIGRATIONS)


_PRED_TYPES = {f: pa.int64() if f.endswith("_ms") else pa.float64() for f in PRED_FIELDS} | {
    f: pa.string() for f in ("symbol", "horizon", "model_id", "model", "interval")}




