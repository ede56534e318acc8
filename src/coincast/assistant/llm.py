"""An OpenAI-compatible chat client (OpenAI, Gemini's OpenAI endpoint, Ollama, vLLM, llama.cpp...).

One ``POST {base_url}/chat/completions`` with httpx: the wire format is small and stable, and a
vendor SDK would tie the assistant to one provider.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from coincast.assistant.news import failure
from coincast.domain import TransientError

SYSTEM_PROMPT = (
    "You are coincast's market assistant. Answer the user's question in at most four short sentences, "
    "using ONLY the numbers in the FACTS JSON, quoted exactly as given (you may round). Never invent a number, "
    "price, date or news item that is not in FACTS; if FACTS lack what is asked, say so. Cite the numbers you "
    "use. Do not give financial advice or tell the user to buy or sell; end with 'Not financial advice.'"
)


class LlmError(TransientError):
    """The chat API failed, timed out or answered something unusable."""


class ChatClient:
    """Phrases an answer from facts through an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:11434/v1``.
        model: the model name the server expects.
        api_key: sent as a bearer token when given.
        timeout_s: total time allowed per request.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 15.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout_s = model, api_key, timeout_s

    async def phrase(self, question: str, facts: dict[str, Any], draft: str) -> str:
        """The model's answer to ``question`` from ``facts`` (``draft`` is the template answer as a guide).

        Raises:
            LlmError: on any transport error, timeout, non-2xx status or malformed body.
        """
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": f"QUESTION: {question}\n\nFACTS: {json.dumps(facts, default=str)}\n\n"
                    f"DRAFT ANSWER (correct but plain): {draft}",
                },
            ],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.post(self.url, json=body, headers=headers)
                resp.raise_for_status()
                data = resp.json()
        except httpx.TimeoutException as exc:
            raise LlmError(f"the language model did not answer within {self.timeout_s:g} s") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise LlmError(f"the language model failed: {failure(exc)}") from exc
        try:
            text = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LlmError("the language model's reply has no choices[0].message.content") from exc
        if not isinstance(text, str) or not text.strip():
            raise LlmError("the language model returned an empty answer")
        return text.strip()
