"""Helpers shared by the web page tests (the fixtures are in tests/web/conftest.py)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import hashguard_serve

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEB = PROJECT_ROOT / "web"
CHROMIUM = os.environ.get("HASHGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def running_server(data_dir: Path, database_url: str | None = None, **settings: str):
    """`hashguard serve` for the page tests: tests/helpers.py's hashguard_serve (SQLite in
    `data_dir` or `database_url`; `settings` become HASHGUARD_<NAME> variables)."""
    return hashguard_serve(Path(sys.executable).with_name("hashguard"), data_dir,
                           database_url=database_url, **settings)


def artifacts_dir() -> Path:
    """test-artifacts/, which ignores itself in git: a test run leaves no untracked files."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return ARTIFACTS


def wait_until(page, expression: str, timeout: float = 60.0, interval: float = 0.05):
    """Poll a JS expression until truthy. (Playwright's wait_for_function evaluates strings with
    eval, which the page's CSP forbids, as it should.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {expression}")
        time.sleep(interval)


def wait_for_hashes(page, count: int, timeout: float = 120.0):
    """Wait until `count` files are listed and none is still being hashed."""
    wait_until(page, "document.querySelectorAll('#file-list li.file').length === %d && "
                     "!document.querySelector('#file-list li.file[data-status=hashing]')" % count,
               timeout=timeout)


def node_available() -> str:
    node = shutil.which("node")
    if not node:
        pytest.fail("the web tests need Node.js (apt-get install nodejs; `make test` installs it)",
                    pytrace=False)
    return node


def strings(lang: str) -> dict:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))



# Text a person must never see: a literal null/undefined, an unfilled {placeholder}, the
# operator's placeholder rows.
_BAD_TEXT = r"\bnull\b|\bundefined\b|\bNaN\b|\{\w+\}|placeholder|operator to fill in|\[object "


def _keys(node, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_keys(v, f"{prefix}{k}.") for k, v in node.items()))
    return {prefix[:-1]}


def text_problems(page, lang: str) -> list[str]:
    """What the shown page says that it must not: "null", "undefined", a raw i18n key (a key
    of the translation files shown as text), a placeholder line."""
    import re

    shown = page.evaluate("document.body.innerText")
    found = [m.group(0) for m in re.finditer(_BAD_TEXT, shown, re.IGNORECASE)]
    keys = _keys(strings("en")) | _keys(strings(lang))
    words = set(re.findall(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+", shown))
    return found + sorted(words & keys)


# Every element whose own text could be clipped: text-bearing leaves and inline boxes.
_OVERFLOW_JS = """() => {
  const out = [];
  for (const node of document.querySelectorAll('body *')) {
    if (!node.offsetParent && getComputedStyle(node).position !== 'fixed') continue;
    if (['HTML', 'BODY', 'SCRIPT', 'STYLE', 'svg', 'IMG', 'INPUT'].includes(node.tagName)) continue;
    const style = getComputedStyle(node);
    if (style.overflowX === 'auto' || style.overflowX === 'scroll') continue; // scrolls on purpose
    if (node.scrollWidth > node.clientWidth + 1 && node.clientWidth > 0) {
      out.push(`${node.tagName}#${node.id}.${node.className}: ${node.scrollWidth} > ${node.clientWidth} "${node.textContent.slice(0, 40)}"`);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    out.push(`page: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  }
  return out;
}"""


def overflowing(page) -> list[str]:
    """Boxes whose text is wider than the box (scrollWidth > clientWidth), and a page wider than
    the screen; boxes that scroll on purpose (a wide table) are left out."""
    return page.evaluate(_OVERFLOW_JS)


def go_to_file_picker(page, pathway: str = "adult") -> None:
    """From the first question to the file picker, clicking as a person does."""
    page.click("#view-ask button[data-go='home']")
    page.click("#view-home button[data-go='pathway']")
    page.check(f"#pathway-{pathway}")
    page.click("#pathway-form button[type=submit]")
