"""`GET /api/server`: what the console's server page shows, as one small JSON answer.

The same counters as `/metrics` (one registry per store), summed over their labels, beside
the version, the backend and the effective settings with secrets hidden. Rates are left to
the reader: two answers a known time apart give them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

from photon import __version__
from photon.core.metrics import metrics_for
from photon.core.store import EventStore
from photon.server.http.errors import json_response
from photon.server.http.params import accepts
from photon.server.http.schemas import ServerInfo

#: Answer key -> the Prometheus sample it sums.
_COUNTERS = {
    "events-appended": "photon_events_appended_total",
    "appends": "photon_appends_total",
    "events-replayed": "photon_events_replayed_total",
    "subscribers": "photon_replay_connections",
    "tcp-connections": "photon_tcp_connections",
}


def _totals(registry: CollectorRegistry) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    redacted = getattr(config, "redacted", None)
    if callable(redacted):
        shown: dict[str, Any] = redacted()
        return shown
    # A plain mapping (embedded use) carries no secret flags: hide what looks like one.
    return {k: ("****" if any(w in k for w in ("pass", "secret")) else v) for k, v in sorted(config.items())}


@accepts(
    answer='{"version", "backend", "db-backend", "started-at", "uptime-seconds", "last-order-id", '
    '"events-appended", "appends", "events-replayed", "subscribers", "tcp-connections", "settings": {...}}',
    response=ServerInfo,
)
async def server_info(request: Request, query: dict[str, Any]) -> Response:
    """The server's version, backend, settings (secrets hidden), counters and open subscriber streams."""
    store: EventStore = request.app.state.store
    config: Mapping[str, Any] = request.app.state.config
    started: float = request.app.state.started_at
    totals = _totals(metrics_for(store).registry)
    answer: dict[str, Any] = {
        "version": __version__,
        "backend": store.backend.describe(),
        "db-backend": config.get("db.backend"),
        "started-at": int(started * 1000),
        "uptime-seconds": round(time.time() - started, 1),
        "last-order-id": store.last_order_id(),
        "now": int(time.time() * 1000),
    }
    answer.update({key: int(totals.get(sample, 0)) for key, sample in _COUNTERS.items()})
    answer["settings"] = _settings(config)
    return json_response(answer)
