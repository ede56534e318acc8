"""A local fake news site: an RSS 2.0 feed, article pages and a NewsAPI ``/v2/everything``, on 127.0.0.1.

``articles`` are ``(title, body)`` pairs; the feed lists them with links to ``/article/<i>`` pages
(HTML whose main text is the body) and NewsAPI returns them in its real response shape
(``{status, totalResults, articles: [{source: {id, name}, author, title, description, url,
urlToImage, publishedAt, content}]}``), refusing requests without ``X-Api-Key: <api_key>`` with
its real 401 error body. ``hits`` counts requests per path (to check caching).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class FakeNews:
    def __init__(
        self, articles: Sequence[tuple[str, str]], newsapi: Sequence[tuple[str, str]] = (), api_key: str = "news-key"
    ) -> None:
        self.articles, self.newsapi, self.api_key = list(articles), list(newsapi), api_key
        self.hits: Counter[str] = Counter()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake.hits[path] += 1
                if path == "/feed.xml":
                    return self._send(200, "application/rss+xml", fake.rss())
                if path.startswith("/article/"):
                    i = int(path.rsplit("/", 1)[1])
                    if i >= len(fake.articles):
                        return self._send(404, "text/plain", "not found")
                    return self._send(200, "text/html", fake.page(*fake.articles[i]))
                if path == "/v2/everything":
                    if self.headers.get("X-Api-Key") != fake.api_key:
                        return self._send(
                            401,
                            "application/json",
                            json.dumps(
                                {
                                    "status": "error",
                                    "code": "apiKeyInvalid",
                                    "message": "Your API key is invalid or incorrect.",
                                }
                            ),
                        )
                    return self._send(200, "application/json", fake.newsapi_json())
                self._send(404, "text/plain", "not found")

            def _send(self, status: int, ctype: str, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{ctype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rss(self) -> str:
        items = "".join(
            f"<item><title>{escape(t)}</title><link>{self.url}/article/{i}</link>"
            f"<description>{escape(b[:80])}</description><pubDate>Mon, 23 Nov 2026 1{i % 10}:00:00 GMT</pubDate>"
            f"<guid>{self.url}/article/{i}</guid></item>"
            for i, (t, b) in enumerate(self.articles)
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Fake Crypto Wire</title>'
            f"<link>{self.url}</link><description>test feed</description>{items}</channel></rss>"
        )

    @staticmethod
    def page(title: str, body: str) -> str:
        paras = "".join(f"<p>{escape(s.strip())}.</p>" for s in body.split(".") if s.strip())
        return (
            f"<html><head><title>{escape(title)}</title></head><body><nav>Home | Markets | About</nav>"
            f"<article><h1>{escape(title)}</h1>{paras}</article><footer>(c) Fake Crypto Wire</footer>"
            f"</body></html>"
        )

    def newsapi_json(self) -> str:
        return json.dumps(
            {
                "status": "ok",
                "totalResults": len(self.newsapi),
                "articles": [
                    {
                        "source": {"id": None, "name": "Fake Newswire"},
                        "author": "A. Writer",
                        "title": t,
                        "description": b,
                        "url": f"{self.url}/newsapi/{i}",
                        "urlToImage": None,
                        "publishedAt": "2026-11-23T10:00:00Z",
                        "content": b,
                    }
                    for i, (t, b) in enumerate(self.newsapi)
                ],
            }
        )

    def __enter__(self) -> FakeNews:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
