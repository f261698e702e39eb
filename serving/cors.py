"""BentoML's CORS for the answers the service gives ahead of BentoML's own CORS middleware.

BentoML runs a service's ASGI middlewares outside its CORS middleware, so an answer one of them
gives itself (`POST /predict`, `/predict_batch` and `GET /risk` answered ahead of routing, the
body guard's refusals) would lack the CORS headers every routed answer carries. `with_cors`
wraps such an answer in the same middleware with the same settings (`http.cors` of the
service's BentoML configuration); preflight requests (OPTIONS) are left to the routes, where
BentoML's answers them.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp


def cors_options() -> dict[str, Any] | None:
    """BentoML's CORS settings as its CORS middleware takes them; None with CORS off."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    if not BentoMLContainer.http.cors.enabled.get():
        return None
    return BentoMLContainer.access_control_options.get()


def with_cors(app: ASGIApp, options: dict[str, Any] | None) -> ASGIApp:
    """`app` behind BentoML's CORS middleware with `options` (`cors_options`), or itself."""
    return app if options is None else CORSMiddleware(app, **options)
