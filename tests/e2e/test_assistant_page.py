"""The Assistant page in headless Chromium against `coincast up --source sim`.

News comes from a local fake RSS site (tests/fakes/news_server.py) the server is pointed at. The
page must answer a suggested question and a typed one with the numbers the API gives, in both
themes, without console errors. Screenshots: artifacts/e2e/assistant.png (dark), assistant-light.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, Server, running_server
from tests.fakes.news_server import FakeNews

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTICLES = [
    ("Bitcoin climbs as traders cheer strong inflows", "Bitcoin rose strongly. Traders are optimistic and happy"),
    ("Solana network suffers outage", "Solana users report a painful failure and losses. Fear spreads"),
]


@pytest.fixture(scope="module")
def news() -> Iterator[FakeNews]:
    with FakeNews(ARTICLES) as site:
        yield site


@pytest.fixture(scope="module")
def server(chromium_path: Path, news: FakeNews, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("coincast-assistant")
    with running_server(root, {"COINCAST_ASSISTANT__NEWS_FEEDS": f"{news.url}/feed.xml"}, wait_tickers=2) as srv:
        yield srv


def test_chat_answers_with_cited_numbers_in_both_themes(server: Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text} {m.location}"))
    pg.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        pg.goto(f"{server.url}/#/assistant")
        pg.wait_for_selector("#as-suggest .as-chip-btn")
        assert pg.is_visible("#page-assistant") and not pg.is_visible("#page-market")
        assert pg.get_attribute(".nav-link[data-page='assistant']", "aria-current") == "page"

        pg.click("text=Compare ETH and SOL")
        pg.wait_for_selector(".as-bot >> nth=1 >> .as-answer")
        answer = pg.inner_text(".as-bot >> nth=1 >> .as-answer")
        assert "ETHUSDT" in answer and "SOLUSDT" in answer and "Strongest over 24 h" in answer
        assert "Not financial advice." in answer
        chips = pg.inner_text(".as-bot >> nth=1 >> .as-facts")
        assert "ETHUSDT price" in chips and "SOLUSDT 24 h" in chips
        assert "comparison" in pg.inner_text(".as-bot >> nth=1 >> .as-meta")

        pg.fill("#as-input", "what is the news sentiment on bitcoin?")
        pg.press("#as-input", "Enter")
        pg.wait_for_selector(".as-bot >> nth=2 >> .as-answer")
        news = pg.inner_text(".as-bot >> nth=2 >> .as-answer")
        assert "BTCUSDT news sentiment is positive" in news and "Bitcoin climbs" in news
        api = server.get("/health")  # the server stays healthy after the chat
        assert api["status"] == "ok"

        pg.screenshot(path=str(ARTIFACTS / "assistant.png"))
        pg.click("#theme-toggle")
        pg.wait_for_function("document.documentElement.dataset.theme === 'light'")
        pg.screenshot(path=str(ARTIFACTS / "assistant-light.png"))
        assert errors == [], errors
    finally:
        context.close()
