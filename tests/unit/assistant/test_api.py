"""POST /api/v1/assistant/ask and /api/chatbot/ask through the real app, and `coincast ask`."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from coincast.api.app import Services, create_app
from coincast.assistant.templates import money
from coincast.cli import ask as ask_cmd
from coincast.cli.main import COMMAND_MODULES
from coincast.domain import ConfigError


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://coincast.test") as c:
        yield c


async def test_ask_returns_answer_and_facts(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/assistant/ask", "/api/chatbot/ask"):
        r = await client.post(path, json={"question": "what is the bitcoin forecast for the next hour?"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"answer", "intent", "symbols", "horizon", "facts", "sources", "llm"}
        assert (body["intent"], body["symbols"], body["horizon"]) == ("forecast", ["BTCUSDT"], "1h")
        assert money(body["facts"]["forecast"]["BTCUSDT"]["predicted_price"]) in body["answer"]


async def test_bad_questions_are_422(client: httpx.AsyncClient) -> None:
    for payload in ({"question": ""}, {}, {"question": "x" * 501}, {"question": "btc", "extra": 1}):
        r = await client.post("/api/v1/assistant/ask", json=payload)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = await client.post("/api/v1/assistant/ask", json={"question": "   "})
    assert r.status_code == 422 and r.json()["error"] == "empty_question"


@pytest.fixture
def server(services: Services) -> Iterator[str]:
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(500):
        if srv.started:
            started.set()
            break
        thread.join(0.01)
    assert started.is_set(), "uvicorn did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def cli() -> typer.Typer:
    app = typer.Typer()
    ask_cmd.register(app)
    app.command("noop")(lambda: None)  # two commands, so `ask` is a sub-command as in coincast's CLI
    return app


def test_cli_ask_prints_the_answer(server: str) -> None:
    assert "coincast.cli.ask" in COMMAND_MODULES
    r = CliRunner().invoke(cli(), ["ask", "compare eth and sol", "--url", server])
    assert r.exit_code == 0, r.output
    assert "Strongest over 24 h" in r.output and "[intent: comparison; symbols: ETHUSDT, SOLUSDT" in r.output
    r = CliRunner().invoke(cli(), ["ask", "btc price", "--url", server, "--json"])
    assert r.exit_code == 0 and '"intent": "price"' in r.output


def test_cli_ask_without_a_server_says_how_to_start_one() -> None:
    r = CliRunner().invoke(cli(), ["ask", "btc price", "--url", "http://127.0.0.1:9"])
    assert isinstance(r.exception, ConfigError) and "coincast up" in str(r.exception)
