"""The service as shipped: the HTTP API of `serving.service` with live operation added.

`serving.service.Flushcast` answers /predict, /predict_batch, /explain, /model and /report. This
module adds live operation (`live`) to that service: its routes (/risk, /alerts, /reload,
/monitor), the middleware answering GET /risk before routing (a lookup, not a route), the live
state started in each worker when `FLUSHCAST_LIVE` names a folder (otherwise every live route
answers 503), and its metrics. `flushcast serve` and the bento (`bentofile.yaml`) serve this
module's `Flushcast`; `python -m flushcast.service` rewrites the committed OpenAPI spec from it.
"""

from __future__ import annotations

from flushcast.live.engine import Live
from flushcast.live.routes import RiskAnswer, router
from flushcast.serving import openapi
from flushcast.serving.service import Flushcast, routes

routes.include_router(router)
Flushcast.add_asgi_middleware(RiskAnswer)  # inside ClientErrors; the body guard passes GETs on
Flushcast.inner.live_operation = staticmethod(Live.start)

__all__ = ["Flushcast"]

if __name__ == "__main__":
    print(f"wrote {openapi.write(Flushcast)}")
