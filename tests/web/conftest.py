"""Fixtures of the web page tests: the real server and headless Debian Chromium.

- `web_server`: `hashguard serve` in a subprocess on a free loopback port, SQLite in a temporary
  data dir (the same command a person runs; the page is served from web/ at `/`).
- `browser`: Debian's /usr/bin/chromium driven by Python Playwright (the pip package brings its
  own Node driver; no browser is ever downloaded). Missing Chromium fails with the command that
  installs it (`make test` does).
- `recorded_page(lang, width)`: a fresh browser context (empty profile) whose every request is
  recorded, with the page's language and viewport set.
- Screenshots go to test-artifacts/screenshots/ (git-ignored through its own .gitignore).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.web.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    SCREENSHOTS,
    artifacts_dir,
    running_server,
)


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("web-server")) as base:
        yield base


@pytest.fixture(scope="session")
def playwright_instance():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the web tests need the `playwright` Python package (the `test` extra: "
                    "pip install -e '.[test]')", pytrace=False)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: the web tests run Debian's Chromium "
                    "(apt-get install chromium; `make test` installs it)", pytrace=False)
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    artifacts_dir()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@dataclass
class RecordedRequest:
    method: str
    url: str
    headers: dict
    body: bytes | None


@dataclass
class RecordedPage:
    page: object
    context: object
    base: str
    requests: list[RecordedRequest] = field(default_factory=list)
    responses: list[tuple[int, str]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        """Console errors and failed non-API loads. (The browser logs every 4xx answer as a
        console error; the API's 404 for a wrong token is one the tests cause on purpose.)"""
        failed = [f"{status} {url}" for status, url in self.responses
                  if status >= 400 and "/v1/" not in url]
        logged = [m for m in self.console_errors if not m.startswith("Failed to load resource")]
        return failed + logged

    def goto(self, path: str = "/"):
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready='true']")


@pytest.fixture
def recorded_page(browser, web_server):
    """Factory: recorded_page(lang='en', viewport=DESKTOP, base=web_server) -> RecordedPage
    (closed after the test); `base`: another server's URL (tests that configure their own)."""
    opened = []

    def make(lang: str = "en", viewport: dict | None = None, base: str | None = None) -> RecordedPage:
        locale = {"ja": "ja-JP", "en": "en-US"}[lang]
        context = browser.new_context(locale=locale, viewport=viewport or DESKTOP,
                                      accept_downloads=True)
        page = context.new_page()
        recorded = RecordedPage(page=page, context=context, base=base or web_server)

        def on_request(request):
            recorded.requests.append(RecordedRequest(
                method=request.method, url=request.url, headers=request.headers,
                body=request.post_data_buffer))

        # Context-level: also sees the worker's requests (module imports).
        context.on("request", on_request)
        context.on("response", lambda r: recorded.responses.append((r.status, r.url)))
        page.on("console", lambda m: m.type == "error" and recorded.console_errors.append(m.text))
        page.on("pageerror", lambda e: recorded.console_errors.append(str(e)))
        opened.append(context)
        return recorded

    yield make
    for context in opened:
        context.close()


@pytest.fixture(scope="session")
def image_set(tmp_path_factory) -> list[Path]:
    """The generated varied images (tests/web/imageset.py), made once per run."""
    from tests.testdata import require_testdata
    from tests.web.imageset import make_image_set

    require_testdata()
    return make_image_set(tmp_path_factory.mktemp("image-set"))


