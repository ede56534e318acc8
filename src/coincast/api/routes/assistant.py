"""The market assistant's endpoint: ``POST /api/v1/assistant/ask`` and the reference alias.

``assistant_router(services)`` returns an :class:`APIRouter` the app includes::

    POST /api/v1/assistant/ask   {"question": "what is the bitcoin forecast for the next hour?"}
    POST /api/chatbot/ask        (same body and answer; the name the reference system used)

The answer is ``{answer, intent, symbols, horizon, facts, sources, llm}``: the text, what was
understood, the numbers it cites and where they came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from coincast.assistant.service import MAX_QUESTION, Assistant

if TYPE_CHECKING:
    from coincast.api.app import Services


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        min_length=1, max_length=MAX_QUESTION, examples=["what is the bitcoin forecast for the next hour?"]
    )


def assistant_router(services: Services, assistant: Assistant | None = None) -> APIRouter:
    """The assistant routes; ``assistant`` defaults to one built from ``services.settings.assistant``."""
    bot = assistant or Assistant.from_services(services)
    router = APIRouter(tags=["assistant"])

    @router.post("/api/v1/assistant/ask")
    async def ask(body: AskBody) -> dict[str, Any]:
        """Answer a market question from the platform's data (see the module docstring)."""
        return (await bot.ask(body.question)).as_dict()

    @router.post("/api/chatbot/ask", tags=["aliases"])
    async def chatbot_ask(body: AskBody) -> dict[str, Any]:
        return await ask(body)

    return router
