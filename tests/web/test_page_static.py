"""The page as served: no build step, nothing inline, nothing from other origins, nothing cached."""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

WEB = Path(__file__).resolve().parents[2] / "web"


def test_page_is_served_with_the_security_headers(web_server):
    for path in ["/", "/js/app.js", "/js/hash-worker.js", "/i18n/ja.json", "/css/style.css"]:
        response = httpx.get(web_server + path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert response.headers["cache-control"] == "no-store"
    assert httpx.get(web_server + "/js/pdq.js").headers["content-type"].startswith(
        ("text/javascript", "application/javascript"))


def test_no_inline_script_or_style_and_no_other_origin():
    for path in WEB.rglob("*"):
        if path.suffix not in {".html", ".js", ".css", ".json", ".svg"}:
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
            assert not re.search(r"\sstyle=", text), path
            assert not re.search(r"\son\w+=", text), path  # inline event handlers
            assert "<style" not in text, path
        # No absolute URL to anywhere (support numbers are tel: links, built in app.js).
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "fetch('http" not in text and 'fetch("http' not in text, path
        if path.suffix == ".js":
            for use in (r"\b(localStorage|sessionStorage)\s*[.\[]", r"\bindexedDB\s*\.",
                        r"document\.cookie\s*=", r"\bcaches\s*\.", r"serviceWorker"):
                assert not re.search(use, text), (path, use)


def test_api_answers_are_not_cached_either(web_server):
    answers = [
        httpx.get(f"{web_server}/v1/cases/HG-AAAA-AAAA", headers={"Authorization": "Bearer x"}),
        httpx.post(f"{web_server}/v1/cases", json={"pathway": "adult", "hashes": []}),
        httpx.get(f"{web_server}/support.json"),
    ]
    for response in answers:
        assert response.headers["cache-control"] == "no-store", response.url


def test_only_the_hashing_worker_may_compile_webassembly(web_server):
    """The HEIC decoder (libheif-js) is WebAssembly: the worker's own policy allows compiling it
    ('wasm-unsafe-eval'), the page's does not, and JS eval stays forbidden everywhere."""
    worker = httpx.get(web_server + "/js/hash-worker.js").headers["content-security-policy"]
    page = httpx.get(web_server + "/").headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in worker
    assert "wasm-unsafe-eval" not in page
    assert "unsafe-eval'" not in worker.replace("'wasm-unsafe-eval'", "")


def test_heic_decoder_is_served_from_the_installed_npm_package(web_server):
    root = Path(__file__).resolve().parents[2]
    installed = json.loads((root / "node_modules" / "libheif-js" / "package.json").read_text())
    locked = json.loads((root / "package.json").read_text())["dependencies"]["libheif-js"]
    assert installed["version"] == locked  # `npm ci` installs exactly the recorded version
    response = httpx.get(web_server + "/vendor/libheif/libheif-bundle.mjs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert response.content == (root / "node_modules" / "libheif-js" / "libheif-wasm"
                                / "libheif-bundle.mjs").read_bytes()
    assert httpx.get(web_server + "/vendor/libheif/LICENSE").status_code == 200
