// REST client for the coincast API (same origin; see the contract in api/app.py).

/** An API answer that was not 2xx, with the server's {"error", "detail"} when it sent one. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

async function getJSON(path, { signal } = {}) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store", signal });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    throw new ApiError(res.status, body && body.error, body && (body.detail || body.error));
  }
  return body;
}

export const api = {
  health: (opts) => getJSON("/health", opts),
  symbols: (opts) => getJSON("/api/v1/symbols", opts),
  tickers: (opts) => getJSON("/api/v1/tickers", opts),
  /** Candles oldest first; `start` (epoch ms) limits them to that open time and later. */
  candles: (symbol, interval, limit, { start, ...opts } = {}) => {
    const q = new URLSearchParams({ interval, limit: String(limit) });
    if (start !== undefined && start !== null) q.set("start", String(start));
    return getJSON(`/api/v1/candles/${encodeURIComponent(symbol)}?${q}`, opts);
  },
};
