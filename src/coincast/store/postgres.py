"""Serving store on PostgreSQL: many processes (ingest, process, serve) share one database.

Same contract and schema as the DuckDB store; upserts are ``INSERT … ON CONFLICT DO UPDATE`` in
one transaction per batch. The adapter takes a ready async connection pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from typing import Any, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from coincast.domain import Candle, ConfigError, DeadLetter, FoldState, Interval, TransientError
from coincast.store.base import CANDLE_COLUMNS, candle_row, fold_symbols, row_candle
from coincast.store.predictions import PRED_COLUMNS, LivePrediction, prediction_row, row_prediction

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE candles (
        symbol TEXT NOT NULL,
        interval TEXT NOT NULL,
        open_time BIGINT NOT NULL,
        open DOUBLE PRECISION NOT NULL,
        high DOUBLE PRECISION NOT NULL,
        low DOUBLE PRECISION NOT NULL,
        close DOUBLE PRECISION NOT NULL,
        volume DOUBLE PRECISION NOT NULL,
        quote_volume DOUBLE PRECISION NOT NULL,
        trades BIGINT NOT NULL,
        taker_buy_volume DOUBLE PRECISION NOT NULL,
        taker_buy_quote_volume DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (symbol, interval, open_time)
    );
    CREATE TABLE dead_letters (
        id BIGSERIAL PRIMARY KEY,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL,
        recv_ms BIGINT NOT NULL,
        extra JSONB NOT NULL
    );
    CREATE INDEX dead_letters_recv ON dead_letters (recv_ms DESC);
    """,
    """
    CREATE TABLE open_candles (LIKE candles INCLUDING ALL);
    CREATE TABLE predictions (
        symbol TEXT NOT NULL,
        horizon TEXT NOT NULL,
        model_id TEXT NOT NULL,
        origin_time BIGINT NOT NULL,
        model TEXT NOT NULL,
        interval TEXT NOT NULL,
        target_time BIGINT NOT NULL,
        due_ms BIGINT NOT NULL,
        origin_price DOUBLE PRECISION NOT NULL,
        predicted_price DOUBLE PRECISION NOT NULL,
        lower DOUBLE PRECISION NOT NULL,
        upper DOUBLE PRECISION NOT NULL,
        prob_up DOUBLE PRECISION,
        volatility DOUBLE PRECISION,
        level DOUBLE PRECISION NOT NULL,
        created_ms BIGINT NOT NULL,
        actual_price DOUBLE PRECISION,
        scored_ms BIGINT,
        PRIMARY KEY (symbol, horizon, model_id, origin_time)
    );
    CREATE INDEX predictions_due ON predictions (due_ms) WHERE actual_price IS NULL;
    CREATE TABLE fold_symbols (
        symbol TEXT PRIMARY KEY,
        max_trade_id BIGINT NOT NULL,
        watermark_ms BIGINT NOT NULL
    );
    """,
)

_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in CANDLE_COLUMNS[3:])
_UPSERT = (
    f"INSERT INTO {{schema}}.candles ({', '.join(CANDLE_COLUMNS)}) VALUES ({', '.join(['%s'] * len(CANDLE_COLUMNS))}) "
    f"ON CONFLICT (symbol, interval, open_time) DO UPDATE SET {_UPDATE}"
)


class PostgresStore:
    """A :class:`~coincast.store.base.CandleStore` in PostgreSQL.

    Args:
        pool: an open ``AsyncConnectionPool``.
        schema: the schema holding coincast's tables (created if missing); tests use their own.
    """

    def __init__(self, pool: AsyncConnectionPool, schema: str = "coincast") -> None:
        if not schema.isidentifier():
            raise ConfigError(f"invalid PostgreSQL schema name {schema!r}")
        self._pool = pool
        self._schema = schema
        self._migrated = False
        self._opening = asyncio.Lock()

    @classmethod
    def from_url(cls, dsn: str, schema: str = "coincast", *, max_size: int = 4) -> Self:
        """A store on ``dsn``; the pool opens and the schema migrates on first use."""
        # a connection wait is bounded (10 s) so a database that is down surfaces as TransientError
        return cls(AsyncConnectionPool(dsn, min_size=1, max_size=max_size, open=False, timeout=10), schema)

    async def _ready(self) -> None:
        if self._migrated:
            return
        async with self._opening:  # first uses race at start-up; the pool opens once
            if self._migrated:
                return
            try:
                await self._pool.open(wait=True, timeout=10)
            except psycopg.Error as exc:
                raise TransientError(f"cannot connect to PostgreSQL: {exc}") from exc
            await self.migrate()

    async def migrate(self) -> int:
        """Bring the schema to the newest version (serialised across processes by an advisory lock)."""
        s = self._schema
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('coincast-migrate'))")
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_version (version INTEGER NOT NULL)")
                cur = await conn.execute(f"SELECT max(version) FROM {s}.schema_version")
                row = await cur.fetchone()
                current = int(row[0]) if row and row[0] is not None else 0
                if current > len(MIGRATIONS):
                    raise ConfigError(f"store schema version {current} is newer than this coincast supports")
                for version in range(current + 1, len(MIGRATIONS) + 1):
                    await conn.execute(f"SET LOCAL search_path TO {s}")
                    await conn.execute(MIGRATIONS[version - 1])
                    await conn.execute(f"INSERT INTO {s}.schema_version VALUES (%s)", [version])
        except psycopg.Error as exc:
            raise TransientError(f"PostgreSQL migration failed: {exc}") from exc
        self._migrated = True
        return len(MIGRATIONS)

    async def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._ready()
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(sql, rows)
        except psycopg.Error as exc:
            raise TransientError(f"PostgreSQL write failed: {exc}") from exc

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        await self._ready()
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise TransientError(f"PostgreSQL read failed: {exc}") from exc

    async def upsert(self, candles: Sequence[Candle]) -> int:
        if not candles:
            return 0
        latest: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        for c in candles:  # last one wins inside a batch, as in the DuckDB store
            latest[(c.symbol, c.interval.value, c.open_ms)] = candle_row(c)
        await self._execute_many(_UPSERT.format(schema=self._schema), list(latest.values()))
        return len(candles)

    async def history(self, symbol: str, interval: Interval, *, start_ms: int, end_ms: int, limit: int) -> list[Candle]:
        rows = await self._fetch(
            f"SELECT * FROM (SELECT {', '.join(CANDLE_COLUMNS)} FROM {self._schema}.candles "
            "WHERE symbol = %s AND interval = %s AND open_time BETWEEN %s AND %s "
            "ORDER BY open_time DESC LIMIT %s) t ORDER BY open_time",
            [symbol, interval.value, start_ms, end_ms, limit],
        )
        return [row_candle(r) for r in rows]

    async def latest(self, symbol: str, interval: Interval) -> Candle | None:
        got = await self.history(symbol, interval, start_ms=0, end_ms=2**62, limit=1)
        return got[0] if got else None

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> int:
        if not items:
            return 0
        await self._execute_many(
            f"INSERT INTO {self._schema}.dead_letters (source, reason, raw, recv_ms, extra) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(d.source, d.reason, d.raw.replace("\x00", "\\u0000"), d.recv_ms, json.dumps(d.extra)) for d in items],
        )
        return len(items)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._fetch(
            f"SELECT source, reason, raw, recv_ms, extra FROM {self._schema}.dead_letters "
            "ORDER BY recv_ms DESC, id DESC LIMIT %s",
            [limit],
        )
        return [DeadLetter(r[0], r[1], r[2], int(r[3]), dict(r[4])) for r in rows]

    # -- live predictions (coincast.store.predictions.PredictionStore) ---------------------------

    async def add_predictions(self, items: Sequence[LivePrediction]) -> int:
        if not items:
            return 0
        cols = ", ".join(PRED_COLUMNS)
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in PRED_COLUMNS[4:])
        await self._execute_many(
            f"INSERT INTO {self._schema}.predictions ({cols}) VALUES ({', '.join(['%s'] * len(PRED_COLUMNS))}) "
            f"ON CONFLICT (symbol, horizon, model_id, origin_time) DO UPDATE SET {update}",
            [prediction_row(p) for p in items],
        )
        return len(items)

    async def predictions(
        self, symbol: str, horizon: str, *, limit: int, model_id: str | None = None, scored: bool | None = None
    ) -> list[LivePrediction]:
        where, args = ["symbol = %s", "horizon = %s"], [symbol, horizon]
        if model_id is not None:
            where.append("model_id = %s")
            args.append(model_id)
        if scored is not None:
            where.append("actual_price IS NOT NULL" if scored else "actual_price IS NULL")
        rows = await self._fetch(
            f"SELECT * FROM (SELECT {', '.join(PRED_COLUMNS)} FROM {self._schema}.predictions "
            f"WHERE {' AND '.join(where)} ORDER BY origin_time DESC, created_ms DESC LIMIT %s) t "
            "ORDER BY origin_time, created_ms",
            [*args, limit],
        )
        return [row_prediction(r) for r in rows]

    async def due_predictions(self, now_ms: int, *, limit: int = 1000) -> list[LivePrediction]:
        rows = await self._fetch(
            f"SELECT {', '.join(PRED_COLUMNS)} FROM {self._schema}.predictions "
            "WHERE actual_price IS NULL AND due_ms <= %s ORDER BY due_ms LIMIT %s",
            [now_ms, limit],
        )
        return [row_prediction(r) for r in rows]

    async def record_outcomes(self, outcomes: Sequence[LivePrediction]) -> int:
        done = [p for p in outcomes if p.actual_price is not None]
        if done:
            await self._execute_many(
                f"UPDATE {self._schema}.predictions SET actual_price = %s, scored_ms = %s "
                "WHERE symbol = %s AND horizon = %s AND model_id = %s AND origin_time = %s",
                [(p.actual_price, p.scored_ms, p.symbol, p.horizon, p.model_id, p.origin_ms) for p in done],
            )
        return len(done)

    async def save_fold(self, state: FoldState) -> None:
        await self._ready()
        s = self._schema
        rows = [candle_row(c) for c in state.open_candles]
        names = fold_symbols(state)
        syms = [(k, state.max_trade_ids.get(k, -1), state.watermarks_ms.get(k, 0)) for k in names]
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.execute(f"DELETE FROM {s}.open_candles WHERE symbol = ANY(%s)", [names])
                await cur.execute(f"DELETE FROM {s}.fold_symbols WHERE symbol = ANY(%s)", [names])
                if rows:
                    await cur.executemany(
                        f"INSERT INTO {s}.open_candles ({', '.join(CANDLE_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(CANDLE_COLUMNS))})",
                        rows,
                    )
                if syms:
                    await cur.executemany(f"INSERT INTO {s}.fold_symbols VALUES (%s, %s, %s)", syms)
        except psycopg.Error as exc:
            raise TransientError(f"PostgreSQL write failed: {exc}") from exc

    async def load_fold(self, symbols: Collection[str] | None = None) -> FoldState | None:
        where, args = ("WHERE symbol = ANY(%s)", [sorted(symbols)]) if symbols is not None else ("", [])
        syms = await self._fetch(f"SELECT symbol, max_trade_id, watermark_ms FROM {self._schema}.fold_symbols {where}",
                                 args)
        if not syms:
            return None
        rows = await self._fetch(
            f"SELECT {', '.join(CANDLE_COLUMNS)} FROM {self._schema}.open_candles {where} ORDER BY open_time", args
        )
        return FoldState(
            tuple(row_candle(r, closed=False) for r in rows),
            {r[0]: int(r[1]) for r in syms},
            {r[0]: int(r[2]) for r in syms},
        )

    async def close(self) -> None:
        await self._pool.close()
