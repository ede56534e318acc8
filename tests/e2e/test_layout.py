"""Every page fits the screen, on a desktop and a phone, in both themes (headless Chromium).

For each page at 1440x900 and 390x844, dark and light: the document is never wider than the
window (wide tables, charts and chat scroll inside their panels), every visible control has an
accessible name, and the keyboard focus is drawn. On the phone the page links collapse into a
menu that opens, navigates and closes. Screenshots: artifacts/e2e/layout-<page>-<width>-<theme>.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: page hash -> a selector that exists once the page has drawn its content
PAGES = {
    "market": ("/", "#markets tbody tr"),
    "analytics": ("/#/analytics", "#page-analytics table tbody tr"),
    "models": ("/#/models", "#mdl-train button[type=submit]"),
    "backtest": ("/#/backtest", "#bt-run"),
    "assistant": ("/#/assistant", "#as-suggest .as-chip-btn"),
}
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}

# Elements wider than the window, outside any panel that scrolls or clips them (for the message).
_OVERFLOW = """() => {
  const W = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [...document.querySelectorAll("body *")].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > W + 1 && !clipped(el) && el.id !== "js-plotly-tester";
  }).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + [...el.classList].join("."));
  return {W, doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, wide: wide.slice(0, 8)};
}"""

# Visible controls without an accessible name (a placeholder is not a label).
_UNLABELLED = """() => [...document.querySelectorAll("button, input, select, textarea")].filter((el) => {
  if (el.type === "hidden" || !el.getClientRects().length || getComputedStyle(el).visibility === "hidden") return false;
  const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.title
    || (el.labels && el.labels.length) || (el.tagName === "BUTTON" && el.textContent.trim());
  return !named;
}).map((el) => el.outerHTML.slice(0, 120))"""


@pytest.fixture(scope="module")
def ready(server: Server) -> Server:
    server.wait_for(lambda: len(server.get("/api/v1/tickers")["tickers"]) >= 10, timeout=60, what="tickers")
    return server


@contextmanager
def opened(browser: Any, url: str, width: int, height: int, theme: str = "dark") -> Iterator[Any]:
    """A page of a fresh context at ``url``, once the market overview has drawn."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    try:
        pg.goto(url + "/")
        pg.wait_for_selector("#markets tbody tr")
        yield pg
    finally:
        context.close()


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_no_page_is_wider_than_the_screen(ready: Server, browser: Any, device: str, theme: str) -> None:
    width, height = VIEWPORTS[device]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        for name, (path, drawn) in PAGES.items():
            pg.goto(ready.url + path)
            pg.wait_for_selector(drawn, state="attached", timeout=60_000)  # the first analytics run takes a while
            pg.wait_for_timeout(500)  # charts settle to their final size
            assert pg.evaluate("document.documentElement.dataset.theme") == theme
            got = pg.evaluate(_OVERFLOW)
            assert got["doc"] <= got["W"] and got["body"] <= got["W"], (name, device, theme, got)
            assert pg.evaluate(_UNLABELLED) == [], (name, device)
            pg.screenshot(path=str(ARTIFACTS / f"layout-{name}-{width}-{theme}.png"))
        assert errors == []
    finally:
        context.close()


def test_phone_menu_collapses_opens_navigates_and_closes(ready: Server, browser: Any) -> None:
    with opened(browser, ready.url, 390, 844) as pg:
        assert pg.is_visible("#nav-toggle") and not pg.is_visible(".nav-link[data-page='models']")
        pg.click("#nav-toggle")
        assert pg.get_attribute("#nav-toggle", "aria-expanded") == "true"
        assert pg.is_visible(".nav-link[data-page='models']")
        pg.screenshot(path=str(ARTIFACTS / "layout-menu-390-dark.png"))
        pg.click(".nav-link[data-page='models']")
        pg.wait_for_selector("#mdl-train")
        assert pg.get_attribute("#nav-toggle", "aria-expanded") == "false"
        assert not pg.is_visible(".nav-link[data-page='analytics']")
        pg.click("#nav-toggle")
        pg.keyboard.press("Escape")
        assert not pg.is_visible(".nav-link[data-page='analytics']")
        assert pg.evaluate("document.activeElement.id") == "nav-toggle"


def test_desktop_shows_the_links_and_draws_the_keyboard_focus(ready: Server, browser: Any) -> None:
    with opened(browser, ready.url, 1440, 900, "light") as pg:
        assert not pg.is_visible("#nav-toggle") and pg.is_visible(".nav-link[data-page='models']")
        for _ in range(4):  # brand, then the page links
            pg.keyboard.press("Tab")
            style = pg.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; }""")
            assert style[1] != "none" and style[2] != "0px", style


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_work_offline(ready: Server, browser: Any, page: str) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(ready.url)
                  else (outside.append(route.request.url), route.abort()))
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        pg.goto(ready.url + page)
        if page == "/docs":
            pg.wait_for_selector(".opblock")
            pg.click("button.authorize")
            pg.fill(".modal-ux input", (ready.log.parent / "data" / "api_key").read_text().strip())
            pg.click(".modal-ux button.authorize")
            pg.click(".modal-ux button.btn-done")
        else:
            pg.wait_for_selector("text=Live data")
        pg.screenshot(path=str(ARTIFACTS / f"api{page.replace('/', '-')}.png"))
        assert outside == []  # nothing from a CDN: the pages work with no network
    finally:
        context.close()
