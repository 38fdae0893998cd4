"""Health routes for load balancers and orchestrators (no token needed).

- ``GET /health/live``: the process answers HTTP. Nothing else is asked, so a slow backend never
  gets a live server restarted.
- ``GET /health/ready``: the server can do its work: the backend answers, this process still
  holds the store's writer lock, and the projections have loaded. 503 with the reasons otherwise
  (and while the server shuts down), so traffic goes elsewhere until it is.

Services add their own conditions: a service with ``not_ready() -> str | None`` is asked too
(the server collects them into ``app.state.readiness``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.store import EventStore
from photon.server.http.errors import json_response
from photon.server.http.params import accepts
from photon.server.http.schemas import Live, Ready

BACKEND_TIMEOUT = 5.0
"""Seconds the backend may take to answer the readiness probe before it counts as not answering."""

ReadinessCheck = Callable[[], str | None]


@accepts(answer='{"status": "live"}', auth=False, response=Live)
async def live(request: Request, query: dict[str, Any]) -> Response:
    """The process answers (liveness): no backend is asked."""
    return json_response({"status": "live"})


@accepts(
    answer='{"status": "ready"}',
    errors={
        503: '{"status": "not ready", "reasons": [...]}: the backend does not answer, the writer lock is in '
        "doubt, projections are still loading, or the server is shutting down"
    },
    auth=False,
    response=Ready,
)
async def ready(request: Request, query: dict[str, Any]) -> Response:
    """The server can take and serve events (readiness)."""
    reasons: list[str] = []
    if getattr(request.app.state, "closing", False):
        reasons.append("the server is shutting down")
    store: EventStore = request.app.state.store
    try:
        problem = await asyncio.wait_for(aio.run_blocking(store, store.not_ready), BACKEND_TIMEOUT)
    except TimeoutError:
        problem = f"the backend did not answer within {BACKEND_TIMEOUT:g} s"
    except Exception as exc:
        problem = f"the store cannot be asked: {exc}"
    if problem:
        reasons.append(problem)
    checks: list[ReadinessCheck] = getattr(request.app.state, "readiness", [])
    reasons.extend(reason for check in checks if (reason := check()))
    if reasons:
        return json_response({"status": "not ready", "reasons": reasons}, 503)
    return json_response({"status": "ready"})


def health_routes() -> list[BaseRoute]:
    return [
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
    ]
