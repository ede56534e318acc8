"""A local fake of Binance's ``GET /api/v3/ticker/24hr?symbol=…`` on 127.0.0.1, port 0.

Known pairs answer in Binance's real response shape (numbers as strings, times as integers);
any other symbol gets Binance's real error, HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``.
``hits`` lists the symbols asked for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeBinanceTicker:
    def __init__(self, prices: Mapping[str, tuple[float, float, float, float]]) -> None:
        """``prices``: pair -> (last price, 24 h change %, 24 h high, 24 h low)."""
        self.prices = dict(prices)
        self.hits: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                symbol = parse_qs(url.query).get("symbol", [""])[0]
                fake.hits.append(symbol)
                if url.path != "/api/v3/ticker/24hr":
                    return self._send(404, {"code": -1, "msg": "not found"})
                if symbol not in fake.prices:
                    return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
                last, change, high, low = fake.prices[symbol]
                self._send(200, {
                    "symbol": symbol, "priceChange": f"{last * change / 100:.8f}",
                    "priceChangePercent": f"{change:.3f}", "weightedAvgPrice": f"{last:.8f}",
                    "prevClosePrice": f"{last:.8f}", "lastPrice": f"{last:.8f}", "lastQty": "1.00000000",
                    "bidPrice": f"{last:.8f}", "bidQty": "1.00000000", "askPrice": f"{last:.8f}",
                    "askQty": "1.00000000", "openPrice": f"{last:.8f}", "highPrice": f"{high:.8f}",
                    "lowPrice": f"{low:.8f}", "volume": "1000.00000000", "quoteVolume": "160000.00000000",
                    "openTime": 1767139200000, "closeTime": 1767225599999, "firstId": 1, "lastId": 1000,
                    "count": 1000,
                })

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("X-MBX-USED-WEIGHT-1M", "2")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeBinanceTicker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
