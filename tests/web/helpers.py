"""Helpers shared by the web page tests (the fixtures are in tests/web/conftest.py)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(data_dir: Path, database_url: str | None = None, **settings: str):
    """`hashguard serve` on a free loopback port with SQLite in `data_dir` (or `database_url`);
    yields its base URL. `settings` become HASHGUARD_<NAME> environment variables (e.g.
    max_hashes_per_request)."""
    port = _free_port()
    exe = Path(sys.executable).with_name("hashguard")
    env = {**os.environ, "HASHGUARD_DATA_DIR": str(data_dir)}
    env.pop("HASHGUARD_DATABASE_URL", None)
    env.update({f"HASHGUARD_{name.upper()}": str(value) for name, value in settings.items()})
    log = open(data_dir / "server.log", "wb")
    server = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--database-url", database_url or f"sqlite:///{data_dir / 'hashguard.db'}"],
        cwd=data_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # start-up takes 25 s on a loaded 2-core machine
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("hashguard serve did not start:\n"
                                     + (data_dir / "server.log").read_text(errors="replace"))
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
