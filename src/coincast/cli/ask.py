"""``coincast ask "QUESTION"``: ask a running coincast server's market assistant."""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from coincast.domain import ConfigError, InvalidRequest


def register(app: typer.Typer) -> None:
    """Add ``ask`` to the coincast CLI."""
    app.command("ask")(ask)


def ask(
    question: Annotated[str, typer.Argument(help='e.g. "what is the bitcoin forecast for the next hour?"')],
    url: Annotated[str, typer.Option("--url", help="The coincast server (coincast up).")] = "http://127.0.0.1:8000",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer: facts and sources too.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the answer.")] = 60.0,
) -> None:
    """Ask the market assistant a question; the answer cites the numbers it uses.

    Example: coincast ask "compare eth and sol" --url http://127.0.0.1:8000
    """
    endpoint = url.rstrip("/") + "/api/v1/assistant/ask"
    try:
        resp = httpx.post(endpoint, json={"question": question}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"cannot reach the coincast server at {url} ({type(exc).__name__}); start it with "
            f"`coincast up` or pass --url"
        ) from exc
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise InvalidRequest(f"the server refused the question ({resp.status_code}): {detail}")
    data = resp.json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(data["answer"])
    typer.echo(f"[intent: {data['intent']}; symbols: {', '.join(data['symbols']) or '-'}; horizon: {data['horizon']}]")
    for src in data.get("sources", []):
        typer.echo(f"  source: {src}")
