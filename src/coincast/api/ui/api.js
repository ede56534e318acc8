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

/**
 * fetch() a JSON API route; non-2xx answers throw ApiError with the server's {"error", "detail"}.
 * @param {string} method
 * @param {string} path
 * @param {{body?: object, key?: string, signal?: AbortSignal}} options
 */
export async function requestJSON(method, path, { body, key, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["X-API-Key"] = key;
  const res = await fetch(path, {
    method, headers, cache: "no-store", signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data && data.error, data && (data.detail || data.error));
  return data;
}

const getJSON = (path, opts = {}) => requestJSON("GET", path, opts);

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
