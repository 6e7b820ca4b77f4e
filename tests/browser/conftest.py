"""The console in headless Chromium: Debian's /usr/bin/chromium driven by Playwright (``make browser`` installs
it; never ``playwright install``). One gateway and one browser per module; each test gets a fresh context."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.fake_gemini.process import FakeHandle, start_fake
from tests.support.gateway import ADMIN_TOKEN, GatewayHandle, start_gateway

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
KEYS = ["ok-console-1", "ok-console-2"]


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeHandle]:
    with start_fake() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(fake_upstream: FakeHandle) -> Iterator[GatewayHandle]:
    with start_gateway(fake_upstream.base_url, api_keys=KEYS, max_failures=1) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def new_page(browser: Browser, **context: object) -> Page:
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def login(page: Page, url: str, token: str = ADMIN_TOKEN) -> None:
    page.goto(url + "/admin")
    page.fill("#login-token", token)
    page.click("#login-form button[type=submit]")


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture()
def console(browser: Browser, gw: GatewayHandle) -> Iterator[Page]:
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    login(page, gw.url)
    page.wait_for_selector("#app:not([hidden])")
    yield page
    page.context.close()
