"""Muon's `rpc` protocol: the request endpoints the Clojure Photon served.

``muon.request("rpc://photon/<endpoint>", body, callback)``. The client sends step
``request.made`` with ``{"url", "body", "content_type"}`` (the body as byte values); Photon
answers ``request.response`` with ``{"status", "body", "content_type"}``. `status` is 200 with
the answer, or 400 (bad input), 404 (no such thing), 409 (version conflict), 500; an error's
body is ``{"error": ..., "kind": ..., "field": ...}`` as in Photon's own AMQP protocol.

| endpoint | body | answer |
|---|---|---|
| ``stream-names`` | anything | ``{"streams": [{"stream-name", "total-events"}]}`` |
| ``projection-keys`` | anything | ``{"projection-keys": [names]}`` |
| ``projection`` | ``{"projection-name"}`` | the projection's descriptor |
| ``projection`` | ``{"projection-name", "query-key"}`` | one key of its value |
| ``projection`` | ``{"projection-name", "action": "delete"}`` | ``{"correct": true}`` |
| ``projections`` | a projection template | ``{"correct": true, "projection": descriptor}`` |
| ``events`` | an event, a list, or the emit wrapper (``{"events", "expected-version"}``...) | the stored events |
| ``stream/delete`` | ``{"stream-name"}`` | ``{"correct": true, "deleted-events": n}`` |
| ``rest-url`` | anything | the HTTP API's URL, e.g. ``"http://localhost:3000"`` |
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from photon.core.append_request import parse_emit
from photon.core.errors import NotFound, PhotonError, ValidationError
from photon.server.amqp import muon_wire as wire
from photon.wire.amqp import error_body

if TYPE_CHECKING:
    from photon.projections.manager import ProjectionManager
    from photon.server.amqp.muon_context import MuonContext
    from photon.server.amqp.muon_transport import Outlet

log = logging.getLogger("photon.amqp.muon")

PROTOCOL: Final = "rpc"
REQUEST: Final = "request.made"
RESPONSE: Final = "request.response"
_STATUS: Final = {"validation": 400, "internal-stream": 400, "not-found": 404, "version-conflict": 409}

Handler = Callable[["MuonContext", Any], Awaitable[Any]]


def endpoint_of(url: str) -> str:
    """``rpc://photon/stream/delete`` -> ``stream/delete``."""
    return urllib.parse.urlsplit(url).path.strip("/")


def _field(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"missing required field {name!r} (a string)", name)
    return value


def _manager(context: MuonContext) -> ProjectionManager:
    if context.projections is None:
        raise NotFound("projections are not served by this Photon")
    return context.projections


async def stream_names(context: MuonContext, body: Any) -> Any:
    streams = await context.loop.run_in_executor(None, context.store.streams)
    return {"streams": [{"stream-name": s.stream_name, "total-events": s.total_events} for s in streams]}


async def projection_keys(context: MuonContext, body: Any) -> Any:
    return {"projection-keys": _manager(context).names()}


async def projection(context: MuonContext, body: Any) -> Any:
    manager = _manager(context)
    name = _field(body, "projection-name")
    action = body.get("action")
    if action is not None:
        if action != "delete":
            raise ValidationError(f"action {action!r} not recognized; the one action is 'delete'", "action")
        await manager.delete(name)
        return {"correct": True}
    key = body.get("query-key")
    if key is not None:
        return manager.get_key(name, str(key))
    return manager.get(name)


async def create_projection(context: MuonContext, body: Any) -> Any:
    descriptor = await _manager(context).create(body)
    return {"correct": True, "projection": descriptor}


async def post_events(context: MuonContext, body: Any) -> Any:
    request = parse_emit(body)
    stored = await context.store.append_request_async(request.events, request.options)
    events = [orjson.Fragment(event.data) for event in stored]
    return events[0] if isinstance(body, dict) and "events" not in body else events


async def delete_stream(context: MuonContext, body: Any) -> Any:
    stream = _field(body, "stream-name")
    removed = await context.loop.run_in_executor(None, context.store.delete_stream, stream)
    return {"correct": True, "deleted-events": removed}


async def rest_url(context: MuonContext, body: Any) -> Any:
    if context.rest_url is not None:
        url = context.rest_url()
        if url:
            return url
    config = context.config
    scheme = "https" if config.get("rest.keystore") else "http"
    return f"{scheme}://{config.get('rest.host')}:{config.get('rest.port')}"


ENDPOINTS: Final[dict[str, Handler]] = {
    "stream-names": stream_names,
    "projection-keys": projection_keys,
    "projection": projection,
    "projections": create_projection,
    "events": post_events,
    "stream/delete": delete_stream,
    "rest-url": rest_url,
}


class RpcSession:
    def __init__(self, context: MuonContext, outlet: Outlet) -> None:
        self.context = context
        self.outlet = outlet

    def receive(self, inner: dict[str, Any]) -> None:
        if inner.get("step") != REQUEST:
            return  # the client's own channel housekeeping
        try:
            request = wire.decode_payload(inner.get("payload"))
            url = str(request.get("url") or "")
            body = wire.decode_payload(request.get("body")) if request.get("body") is not None else {}
        except (PhotonError, AttributeError):
            self._answer(400, error_body(ValidationError("an rpc request needs {url, body}")))
            return
        handler = ENDPOINTS.get(endpoint_of(url))
        if handler is None:
            known = ", ".join(sorted(ENDPOINTS))
            self._answer(404, error_body(NotFound(f"no rpc endpoint {endpoint_of(url)!r}; Photon serves {known}")))
            return
        self.context.run(self._serve(handler, body))

    async def _serve(self, handler: Handler, body: Any) -> None:
        try:
            answer = orjson.dumps(await handler(self.context, body))
            status = 200
        except PhotonError as exc:
            answer = error_body(exc)
            status = _STATUS.get(orjson.loads(answer)["kind"], 500)
        except Exception as exc:
            log.exception("a Muon rpc request failed")
            answer, status = error_body(exc), 500
        self._answer(status, answer)

    def _answer(self, status: int, body: bytes) -> None:
        content = {"status": status, "body": list(body), "content_type": wire.JSON}
        self.outlet.send(self.outlet.message(PROTOCOL, RESPONSE, content))
        self.outlet.finish()

    def close(self, reason: str) -> None:
        pass
