"""`/docs`: the API's interactive reference (Swagger UI), served from this host only.

FastAPI's own /docs page loads Swagger UI from a CDN and starts it with an inline script; the
Content-Security-Policy of every answer (api/security_headers.py: scripts and styles from 'self'
only) blocked both, so the page was blank (issue 19). Here Swagger UI's files come from the
installed `swagger-ui-bundle-v2` package (no third-party file is committed here, and none is
fetched at run time) and the start-up script is a file of ours, so the page renders under the
same policy as every other answer, unchanged.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
# Only what the page loads; not the package's whole folder (its index.html opens a demo API).
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "favicon-32x32.png": "image/png"}

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hashguard API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise show a badge image from validator.swagger.io,
# another origin (blocked by the policy, and a request telling a third party who reads the docs).
_START = """window.ui = SwaggerUIBundle({
  url: "%s",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def install(app: FastAPI) -> None:
    """Add /docs (and /redoc, which FastAPI used to serve from a CDN, as a way to it). The app
    must be made with docs_url=None and redoc_url=None."""
    folder = Path(str(swagger_ui_path))
    start = _START % app.openapi_url

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE)

    @app.get(f"{DOCS_PATH}/start.js", include_in_schema=False)
    def docs_start() -> Response:
        return Response(start, media_type="text/javascript")

    @app.get(f"{ASSETS_PATH}/{{name}}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404)
        return FileResponse(folder / name, media_type=ASSETS[name])

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse(DOCS_PATH)
