"""/docs is served from this host's installed files (issue 19): no inline script (the CSP would
block it), nothing from another origin, and only the files the page loads."""
from __future__ import annotations

import re


def test_docs_page_loads_only_same_origin_files_and_no_inline_script(client):
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources
    assert re.findall(r"<script>", page.text) == []  # every script has a src
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "SwaggerUIBundle" in client.get("/docs/start.js").text


def test_only_the_pages_assets_are_served(client):
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    for name in ("index.html", "swagger-initializer.js", "swagger-ui.js.map", "..%2F__init__.py"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name
