"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real ``ptw serve``.

Every request the pages make is checked: one to any other host than the server is aborted and recorded,
and the test that caused it fails. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, Route, sync_playwright

from tests.e2e.conftest import REPO, Server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


class Browser:
    """One Chromium profile; ``foreign`` lists the URLs of requests that tried to leave the server."""

    def __init__(self, playwright: Playwright, profile: Path, server: Server) -> None:
        self.server = server
        self.origin = urlsplit(server.url).netloc
        self.foreign: list[str] = []
        self.page_errors: list[str] = []
        self.opened: list[Page] = []
        self.context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        self.context.route("**/*", self._only_the_server)

    def _only_the_server(self, route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == self.origin:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def page(self) -> Page:
        page = self.context.new_page()
        self.opened.append(page)
        page.set_default_timeout(20_000)
        # WebSockets do not pass through routes; they are checked as they open.
        page.on(
            "websocket",
            lambda ws: None if urlsplit(ws.url).netloc == self.origin else self.foreign.append(ws.url),
        )
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page

    def signed_in(self, path: str = "/") -> Page:
        """A new tab signed in with the server's admin key, at ``path``."""
        page = self.page()
        page.goto(self.server.url + "/")
        page.fill("input[name=key]", self.server.key)
        page.click("button[type=submit]")
        page.wait_for_selector(".topbar")
        if path != "/":
            page.goto(self.server.url + path)
        return page


def shoot(page: Page, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("ptw-browser"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = Browser(playwright, tmp_path_factory.mktemp("chromium-profile"), server)
        try:
            yield chromium
        finally:
            chromium.context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Browser]:
    """The browser, checked after each test for requests that left the server and uncaught errors."""
    browser.foreign.clear()
    browser.page_errors.clear()
    yield browser
    for page in browser.opened:
        page.close()
    browser.opened.clear()
    assert browser.foreign == [], f"requests to other hosts than the server: {browser.foreign}"
    assert browser.page_errors == [], f"uncaught errors in the pages: {browser.page_errors}"
