"""`/docs` renders in headless Chromium under the page's Content-Security-Policy (issue 19: it was
blank, its CDN scripts and inline start-up script blocked), loading nothing from another origin."""
from __future__ import annotations

from urllib.parse import urlsplit

from tests.web.helpers import DESKTOP

# Before any script of the page runs: what the browser reports as a CSP violation.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_docs_renders_the_operations_under_the_csp(browser, web_server, screenshot_dir):
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        console, urls = [], []
        page.on("console", lambda m: m.type in ("error", "warning") and console.append(m.text))
        page.on("pageerror", lambda e: console.append(str(e)))
        context.on("request", lambda r: urls.append(r.url))
        page.add_init_script(RECORD_VIOLATIONS)

        response = page.goto(web_server + "/docs")
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "style-src 'self';" in csp  # the policy unchanged
        # Swagger UI's block for GET /v1/partner/hashes (id: operations-<tag>-<operationId>).
        pull = page.wait_for_selector("#operations-partners-pull_v1_partner_hashes_get",
                                      timeout=30_000)
        assert "/v1/partner/hashes" in pull.inner_text()
        assert page.locator(".opblock").count() >= 15
        # The declared security schemes give the page its "Authorize" button.
        assert page.locator("button.authorize").count() == 1
        page.screenshot(path=screenshot_dir / "api-docs.png", full_page=False)

        assert page.evaluate("window.__violations") == []
        assert not [m for m in console if "Content Security Policy" in m or "Refused" in m]
        assert not [m for m in console if "error" in m.lower()], console
        origin = urlsplit(web_server).netloc
        assert {urlsplit(u).netloc for u in urls if u.startswith("http")} == {origin}
    finally:
        context.close()


def test_redoc_leads_to_docs(browser, web_server):
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(web_server + "/redoc")
        assert urlsplit(page.url).path == "/docs"
    finally:
        context.close()
