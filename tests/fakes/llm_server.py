"""A local fake OpenAI-compatible chat server: ``POST /v1/chat/completions`` on 127.0.0.1, port 0.

It speaks the real wire format (request ``{model, messages, temperature}``, reply
``{id, object: "chat.completion", created, model, choices: [{index, message: {role, content},
finish_reason}], usage}``), records every request body and answers with ``reply(body)``. Faults:
``delay_s`` (answer late, to test timeouts) and ``status`` (answer that HTTP status with an
OpenAI-style error body).

Use::

    with FakeLlm(reply=lambda body: "BTC is 100.") as llm:
        client = ChatClient(llm.base_url, "fake-model", "sk-test")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLlm:
    """A threaded HTTP server; ``base_url`` ends in ``/v1`` like OpenAI's."""

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], str] | None = None,
        *,
        delay_s: float = 0.0,
        status: int = 200,
        api_key: str | None = None,
    ) -> None:
        self.reply = reply or (lambda body: "ok")
        self.delay_s, self.status, self.api_key = delay_s, status, api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request"}})
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}})
                if fake.delay_s:
                    fake._release.wait(fake.delay_s)  # a test's teardown releases it early
                if fake.status != 200:
                    return self._send(fake.status, {"error": {"message": "overloaded", "type": "server_error"}})
                content = fake.reply(body)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "system_fingerprint": None,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeLlm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
