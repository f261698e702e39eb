"""The docs page at `/`: Swagger UI from a packaged copy, so it loads nothing from outside.

BentoML's own page loads Google Tag Manager and its spec pulls badge images from three outside
hosts; a risk desk's browser must not. The page here is served by the service itself: Swagger
UI's files from the `swagger-ui-bundle` package (a maintained bundle, pinned in the lock) under
`ASSETS`, the spec from `SPEC` (`/docs.json` in the OpenAPI 3.0 dialect that bundle renders),
the online validator switched off (Swagger UI would otherwise send the spec to
validator.swagger.io), and a Content-Security-Policy that allows the page this origin only.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = "/docs-assets"
SPEC = "/docs-ui.json"
"""The spec as the page's Swagger UI (4.x, OpenAPI 3.0) reads it; `/docs.json` is the 3.1 one."""
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'"
)
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
<style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "{spec}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}};
</script>
</body>
</html>
"""


def assets() -> StaticFiles:
    """Swagger UI's packaged files."""
    from swagger_ui_bundle import swagger_ui_path

    return StaticFiles(directory=swagger_ui_path)


def index(title: str) -> HTMLResponse:
    """The page, titled `title`, allowed to load from this origin only."""
    page = PAGE.format(title=escape(title), assets=ASSETS, spec=SPEC)
    return HTMLResponse(page, headers={"Content-Security-Policy": POLICY})
