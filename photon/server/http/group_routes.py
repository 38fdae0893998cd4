"""Consumer groups over HTTP: `/api/groups`, `/api/group/{name}[/...]`.

A member connects with ``GET /api/group/{name}/stream`` and receives its deliveries as NDJSON (or
server-sent events): a first line ``{"group": name, "member": id}``, then one line per delivery,
``{"attempt": n, "event": <the stored event>}``. It acknowledges with ``POST .../ack`` and
``POST .../nack``, many order-ids per call, over any connection (keep-alive: one for all acks).
When the stream's connection goes away, the member's unacknowledged events go to the others.
The rules are the core's (`photon.groups`); these routes only translate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from photon.core import aio
from photon.core.errors import StoreClosed
from photon.groups import NACK_ACTIONS, Delivery, Member
from photon.groups.definition import MAX_IN_FLIGHT_LIMIT
from photon.server.http.errors import RequestError
from photon.server.http.json_calls import answer, json_body, json_object, parse_json, store_of
from photon.server.http.limits import read_body
from photon.server.http.params import Param, accepts
from photon.server.http.schemas import (
    DeliveryLine,
    Done,
    GroupAck,
    GroupChanges,
    GroupDefinition,
    GroupDescription,
    GroupNack,
    GroupOutcome,
    GroupReset,
    Groups,
    Joined,
    Replayed,
)

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
IDLE_SECONDS = 1.0
SSE_KEEPALIVE_IDLES = 15
BODY_LIMIT = 4 * 1024 * 1024

GROUP_DOC = (
    '{"group-name", "stream" (a stream, __all__ or __category__:<name>), "filter" ({"stream-prefix", '
    '"event-type-prefix", "stream-regex", "event-type-regex", "category", "event-types"}), "start" (begin, end '
    'or an order-id), "strategy" (round-robin or pinned), "max-in-flight", "ack-timeout-ms", "max-retries", "serial"}'
)
DESCRIPTION = "the group's definition, checkpoint, members and counters"


def delivery_line(delivery: Delivery) -> bytes:
    return b'{"attempt":%d,"event":' % delivery.attempt + delivery.event.data + b"}"


@accepts(answer='{"groups": [' + DESCRIPTION + "]}", response=Groups)
async def list_groups(request: Request, query: dict[str, Any]) -> Response:
    """Every consumer group with its position and members."""
    return await answer(request, lambda store: store.groups.list(), lambda groups: {"groups": groups})


@accepts(
    body=GROUP_DOC,
    answer=DESCRIPTION,
    errors={400: "a bad definition (the key is named)", 409: "a group of that name exists"},
    request=GroupDefinition,
    response=GroupDescription,
    status=201,
)
async def create_group(request: Request, query: dict[str, Any]) -> Response:
    """Create a consumer group (recorded in __config__)."""
    doc = await json_object(request, "a group definition is a JSON object", limit=BODY_LIMIT)
    return await answer(request, lambda store: store.groups.create(doc), status=201)


@accepts(answer=DESCRIPTION, errors={404: "no such group"}, response=GroupDescription)
async def describe_group(request: Request, query: dict[str, Any]) -> Response:
    """One consumer group: definition, checkpoint, in-flight events, members, counters."""
    name = request.path_params["name"]
    return await answer(request, lambda store: store.groups.describe(name))


@accepts(
    body="the keys to change (any of the definition's but group-name and start)",
    answer=DESCRIPTION,
    errors={400: "a bad value (the key is named)", 404: "no such group"},
    request=GroupChanges,
    response=GroupDescription,
)
async def update_group(request: Request, query: dict[str, Any]) -> Response:
    """Change a group's settings; its position stays (a new source or strategy reconnects its members)."""
    name = request.path_params["name"]
    doc = await json_body(request, BODY_LIMIT)
    return await answer(request, lambda store: store.groups.update(name, doc))


@accepts(answer='{"correct": true}', errors={404: "no such group"}, response=Done)
async def delete_group(request: Request, query: dict[str, Any]) -> Response:
    """Delete a group and its position (its parked stream stays)."""
    name = request.path_params["name"]
    return await answer(request, lambda store: store.groups.delete(name), lambda _: {"correct": True})


@accepts(
    body='{"from": <order-id>}',
    answer=DESCRIPTION,
    errors={400: "from missing or not an order-id", 404: "no such group"},
    request=GroupReset,
    response=GroupDescription,
)
async def reset_group(request: Request, query: dict[str, Any]) -> Response:
    """Start the group over from an order-id; its members reconnect."""
    name = request.path_params["name"]
    doc = await json_body(request, BODY_LIMIT)
    if isinstance(doc, dict) and (unknown := sorted(set(doc) - {"from"})):
        raise RequestError(f'unknown key {unknown[0]!r}; the body is {{"from": <order-id>}}', field=unknown[0])
    if not isinstance(doc, dict) or "from" not in doc:
        raise RequestError('the body must be {"from": <order-id>}', field="from")
    return await answer(request, lambda store: store.groups.reset(name, doc["from"]))


@accepts(
    answer='{"replayed": n}',
    errors={400: "a body holding options (it takes none)", 404: "no such group"},
    response=Replayed,
)
async def replay_parked(request: Request, query: dict[str, Any]) -> Response:
    """Hand the events parked so far back to the group, to be delivered again."""
    name = request.path_params["name"]
    body = await read_body(request, BODY_LIMIT)
    if body.strip():
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise RequestError("replay-parked takes no options: send no body or {}")
        if doc:
            key = sorted(doc)[0]
            raise RequestError(f"unknown key {key!r}; replay-parked takes no options (no body or {{}})", field=key)
    return await answer(request, lambda store: store.groups.replay_parked(name), lambda n: {"replayed": n})


def _order_ids(doc: Any, allowed: set[str]) -> list[int]:
    if isinstance(doc, dict) and (unknown := sorted(set(doc) - allowed)):
        raise RequestError(f"unknown key {unknown[0]!r}; the body has {', '.join(sorted(allowed))}", field=unknown[0])
    if not isinstance(doc, dict) or ("order-ids" in doc) == ("order-id" in doc):
        raise RequestError('the body must hold "order-ids": [<order-id>, ...] (or one "order-id")', field="order-ids")
    ids = doc["order-ids"] if "order-ids" in doc else [doc["order-id"]]
    if not isinstance(ids, list) or not ids:
        raise RequestError("order-ids must be a non-empty list of order-ids", field="order-ids")
    for value in ids:
        if type(value) is not int or value < 1:
            raise RequestError(f"order-ids must be whole numbers of at least 1, got {value!r}", field="order-ids")
    return ids


@accepts(
    body='{"order-ids": [n, ...]} (or {"order-id": n})',
    answer='{"done": <events acknowledged>, "unknown": [order-ids not delivered or already done]}',
    errors={400: "no order-ids, or not numbers", 404: "no such group"},
    request=GroupAck,
    response=GroupOutcome,
)
async def ack(request: Request, query: dict[str, Any]) -> Response:
    """Acknowledge delivered events; answers once the acknowledgement is durable."""
    name = request.path_params["name"]
    ids = _order_ids(await json_body(request, BODY_LIMIT), {"order-ids", "order-id"})
    return await answer(request, lambda store: store.groups.ack(name, ids), lambda outcome: outcome.to_json())


@accepts(
    body='{"order-ids": [n, ...], "action": "retry" (default), "park" or "skip", "reason": "..."}',
    answer='{"done": <events nacked>, "unknown": [order-ids not delivered or already done]}',
    errors={400: "no order-ids, or an unknown action", 404: "no such group"},
    request=GroupNack,
    response=GroupOutcome,
)
async def nack(request: Request, query: dict[str, Any]) -> Response:
    """Refuse delivered events: retry (redeliver, counted), park (to the parked stream) or skip."""
    name = request.path_params["name"]
    doc = await json_body(request, BODY_LIMIT)
    ids = _order_ids(doc, {"order-ids", "order-id", "action", "reason"})
    action = doc.get("action", "retry")
    if action not in NACK_ACTIONS:
        raise RequestError(f"action must be one of {', '.join(NACK_ACTIONS)}, got {action!r}", field="action")
    reason = doc.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise RequestError("reason must be a string of at most 2000 characters", field="reason")
    return await answer(
        request, lambda store: store.groups.nack(name, ids, action, reason), lambda outcome: outcome.to_json()
    )


def _encode(deliveries: list[Delivery], sse: bool) -> bytes:
    if not sse:
        return b"\n".join([delivery_line(d) for d in deliveries]) + b"\n"
    return b"".join(b"id: %d\ndata: " % d.event.order_id + delivery_line(d) + b"\n\n" for d in deliveries)


@accepts(
    Param(
        "member", "string", "This member's id (default: a new one); a member joining under a present id replaces it."
    ),
    Param(
        "max-in-flight",
        "integer",
        "This member's own limit of unacknowledged deliveries (a prefetch; default and upper bound: the group's).",
        minimum=1,
        maximum=MAX_IN_FLIGHT_LIMIT,
    ),
    Param(
        "limit",
        "integer",
        "Deliveries this member takes in all (a fetch): it is given no more, so none is spent by its leaving "
        "(default: no end).",
        minimum=1,
    ),
    answer='NDJSON: {"group": name, "member": id}, then one line per delivery {"attempt": n, "event": {...}}; '
    "server-sent events with Accept: text/event-stream",
    errors={404: "no such group"},
    streaming=True,
    response=(Joined, DeliveryLine),
)
async def member_stream(request: Request, query: dict[str, Any]) -> Response:
    """Join a group as a member and receive its share of the events until the connection closes."""
    store = store_of(request)
    name = request.path_params["name"]
    member: Member = await aio.run_blocking(
        store, store.groups.join, name, query["member"], query["max-in-flight"], query["limit"]
    )
    sse = "text/event-stream" in request.headers.get("accept", "")
    hello = orjson.dumps({"group": name, "member": member.id})

    async def body() -> AsyncIterator[bytes]:
        idles = 0
        try:
            yield (b"event: joined\ndata: " + hello + b"\n\n") if sse else hello + b"\n"
            while True:
                try:
                    batch = await member.next_batch(IDLE_SECONDS)
                except StoreClosed:
                    return
                if batch:
                    yield _encode(batch, sse)
                    continue
                if getattr(request.app.state, "closing", False) or await request.is_disconnected():
                    return
                idles += 1
                if sse and idles % SSE_KEEPALIVE_IDLES == 0:
                    yield b": keep-alive\n\n"
        finally:
            # The member's unacknowledged events go back to the group (parking may write).
            with contextlib.suppress(BaseException):
                await asyncio.shield(aio.run_blocking(store, member.close))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=SSE if sse else NDJSON, headers=headers)


def group_routes() -> list[BaseRoute]:
    return [
        Route("/api/groups", list_groups, methods=["GET"]),
        Route("/api/groups", create_group, methods=["POST"]),
        Route("/api/group/{name}", describe_group, methods=["GET"]),
        Route("/api/group/{name}", update_group, methods=["PUT"]),
        Route("/api/group/{name}", delete_group, methods=["DELETE"]),
        Route("/api/group/{name}/stream", member_stream, methods=["GET"]),
        Route("/api/group/{name}/ack", ack, methods=["POST"]),
        Route("/api/group/{name}/nack", nack, methods=["POST"]),
        Route("/api/group/{name}/reset", reset_group, methods=["POST"]),
        Route("/api/group/{name}/replay-parked", replay_parked, methods=["POST"]),
    ]
