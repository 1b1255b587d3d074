"""Swagger UI at /docs, served entirely by the app: the pinned ``fastapi-offline`` wheel ships the
Swagger UI 5 assets (FastAPI's OpenAPI 3.1 needs Swagger UI 5), mounted under /docs/assets, and the
page has no inline script or style, so it works under ``script-src 'self'; style-src 'self'``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)

ASSETS_PATH = "/docs/assets"

INIT_JS = """\
"use strict";
window.ui = SwaggerUIBundle({
  url: document.documentElement.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  validatorUrl: null,
  persistAuthorization: false,
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  showMutatedRequest: true,
});
"""

PAGE = """\
<!DOCTYPE html>
<html lang="en" data-openapi-url="{root}/openapi.json">
<head>
<meta charset="utf-8">
<title>Eterna Home API</title>
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}/docs/init.js"></script>
</body>
</html>
"""


def assets_dir() -> Path:
    """Directory of the Swagger UI files inside the installed fastapi-offline package (located without
    importing it). Raises RuntimeError when the package or its files are missing."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastapi-offline is not installed (requirements.txt pins it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (path / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"Swagger UI assets missing in {path}")
    return path


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(PAGE.format(root=root, assets=ASSETS_PATH), headers={"Cache-Control": "no-cache"})


@router.get("/docs/init.js")
def init_js() -> Response:
    return Response(INIT_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Add /docs, /docs/init.js and the /docs/assets static files to ``app``."""
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
