// Number and time formatting for prices, volumes and durations.

const cache = new Map();

function fmt(digits) {
  let f = cache.get(digits);
  if (!f) {
    f = new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    cache.set(digits, f);
  }
  return f;
}

const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Decimal places that suit a price level: 91,234.57 · 84.123 · 2.1234 · 0.15123. */
export function priceDigits(price) {
  const a = Math.abs(price);
  if (a >= 100) return 2;
  if (a >= 10) return 3;
  if (a >= 1) return 4;
  if (a >= 0.01) return 5;
  return 8;
}

export function formatPrice(price, digits = priceDigits(price)) {
  return Number.isFinite(price) ? fmt(digits).format(price) : "—";
}

export function formatCompact(x) {
  return Number.isFinite(x) ? compact.format(x) : "—";
}

export function formatInt(x) {
  return Number.isFinite(x) ? integer.format(x) : "—";
}

export function formatPct(pct) {
  if (!Number.isFinite(pct)) return "—";
  const sign = pct > 0 ? "+" : pct < 0 ? "−" : "";
  return `${sign}${Math.abs(pct).toFixed(2)}%`;
}

export function formatRate(x) {
  if (!Number.isFinite(x)) return "—";
  return x >= 100 ? integer.format(x) : x.toFixed(1);
}

/** 3725 s -> "1h 02m"; 95 s -> "1m 35s". */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (v) => String(v).padStart(2, "0");
  if (d > 0) return `${d}d ${pad(h)}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  return `${m}m ${pad(s % 60)}s`;
}

/** Candle open time in UTC, coarse for daily candles: "2026-11-23 17:05 UTC" / "2026-11-23". */
export function formatCandleTime(ms, interval) {
  if (!Number.isFinite(ms)) return "—";
  const iso = new Date(ms).toISOString();
  return interval === "1d" ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** Split BTCUSDT into ["BTC", "USDT"] for display; unknown quotes stay whole. */
export function splitSymbol(symbol) {
  for (const quote of ["USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH"]) {
    if (symbol.length > quote.length && symbol.endsWith(quote)) {
      return [symbol.slice(0, -quote.length), quote];
    }
  }
  return [symbol, ""];
}
