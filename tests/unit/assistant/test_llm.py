"""The LLM path against a local OpenAI-compatible server: wire format, key, fallbacks."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.llm_server import FakeLlm

from coincast.api.app import Services
from coincast.assistant.llm import SYSTEM_PROMPT, ChatClient
from coincast.assistant.service import Assistant
from coincast.assistant.templates import money


def facts_of(body: dict[str, Any]) -> dict[str, Any]:
    user = body["messages"][1]["content"]
    return json.loads(user.split("FACTS: ", 1)[1].split("\n\nDRAFT ANSWER", 1)[0])


async def test_llm_phrases_the_answer_from_the_facts(services: Services) -> None:
    def reply(body: dict[str, Any]) -> str:  # a "model" that uses only the numbers it was given
        p = facts_of(body)["price"]["BTCUSDT"]
        return f"Bitcoin trades at {money(p['price'])} USDT."

    with FakeLlm(reply, api_key="sk-test") as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "fake-model", "sk-test", 5.0)).ask("btc price?")
        body = llm.requests[0]
    assert body["model"] == "fake-model" and body["temperature"] == 0
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "Never invent a number" in SYSTEM_PROMPT
    price = a.facts["price"]["BTCUSDT"]["price"]
    assert a.answer == f"Bitcoin trades at {money(price)} USDT. Not financial advice."
    assert a.llm == {"used": True, "model": "fake-model"}


async def test_llm_timeout_falls_back_to_the_template(services: Services) -> None:
    with FakeLlm(lambda b: "too late", delay_s=10.0) as llm:
        t = time.monotonic()
        a = await Assistant(services, ChatClient(llm.base_url, "m", None, 0.3)).ask("btc price?")
        elapsed = time.monotonic() - t
    assert elapsed < 5.0
    assert a.llm["fallback"] is True and "within 0.3 s" in a.llm["error"]
    assert money(a.facts["price"]["BTCUSDT"]["price"]) in a.answer
    assert "language model did not answer" in a.answer and "built-in answer" in a.answer


async def test_llm_errors_fall_back(services: Services) -> None:
    with FakeLlm(status=503) as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "m")).ask("btc price?")
    assert a.llm["fallback"] is True and "503" in a.llm["error"]
    with FakeLlm(api_key="right") as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "m", "wrong")).ask("btc price?")
    assert "401" in a.llm["error"]
    with FakeLlm(lambda b: "  ") as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "m")).ask("btc price?")
    assert "empty" in a.llm["error"]
    a = await Assistant(services, ChatClient("http://127.0.0.1:9/v1", "m", None, 2.0)).ask("btc price?")
    assert a.llm["fallback"] is True and "ConnectError" in a.llm["error"]


async def test_llm_configured_in_settings_is_used_by_the_api(services: Services) -> None:
    import httpx
    from pydantic import SecretStr

    from coincast.api.app import create_app
    from coincast.settings import AssistantSettings

    with FakeLlm(lambda body: "Phrased by the model.", api_key="sk-1") as llm:
        services.settings = services.settings.model_copy(
            update={
                "assistant": AssistantSettings(
                    llm_url=llm.base_url, llm_model="local-model", llm_api_key=SecretStr("sk-1"), llm_timeout_s=5.0
                )
            }
        )
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://coincast.test") as c:
            r = await c.post("/api/v1/assistant/ask", json={"question": "eth price"})
        assert llm.requests[0]["model"] == "local-model"
    body = r.json()
    assert body["answer"] == "Phrased by the model. Not financial advice."
    assert body["llm"] == {"used": True, "model": "local-model"} and "ETHUSDT" in body["facts"]["price"]


async def test_llm_failures_disclose_no_url_or_exception_text(services: Services) -> None:
    """The answer and its llm field go to anonymous callers: a status or an error kind only."""
    with FakeLlm(status=503) as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "m")).ask("btc price?")
    assert a.llm["error"] == "the language model failed: HTTP 503"
    unreachable = await Assistant(services, ChatClient("http://127.0.0.1:9/v1", "m", None, 2.0)).ask("btc price?")
    assert unreachable.llm["error"] == "the language model failed: unreachable (ConnectError)"
    for answer in (a, unreachable):
        text = json.dumps(answer.as_dict())
        assert "127.0.0.1" not in text and "http" not in text and "Errno" not in text, text
