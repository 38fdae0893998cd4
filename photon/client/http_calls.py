"""The HTTP API's calls as values, for both clients: the method, the path, the parameters or body,
and what to take from the answer. Nothing here does I/O: the blocking transport sends a call with
`HttpTransport.call`, the asyncio one with `await AsyncHttpTransport.call`, so each client's
method is one line over the same description of the route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import httpx
import orjson

from photon.client.groups import ack_body, group_changes, group_settings, nack_body
from photon.client.wire import (
    page_answer,
    page_params,
    position_answer,
    projection_template,
    streams_answer,
)
from photon.client.wire import quote_segment as _quote
from photon.core.events import RecordedEvent


def _json(response: httpx.Response) -> Any:
    return response.json()


class HttpCall(NamedTuple):
    """One request of the HTTP API and how to read its answer."""

    method: str
    path: str
    options: dict[str, Any]
    """httpx's keyword arguments: `params`, `json`, `content`."""
    answer: Callable[[httpx.Response], Any] = _json


def _nothing(_response: httpx.Response) -> None:
    return None


# -- streams ------------------------------------------------------------------------------------


def streams() -> HttpCall:
    return HttpCall("GET", "/api/streams", {}, lambda r: streams_answer(r.content))


def read(stream: str, from_: int | None, from_version: int | None, limit: int | None) -> HttpCall:
    params = page_params(from_, from_version, limit)
    return HttpCall(
        "GET", f"/api/stream-contents/{_quote(stream)}", {"params": params}, lambda r: page_answer(r.content)
    )


def event(stream: str, order_id: int) -> HttpCall:
    return HttpCall("GET", f"/api/event/{_quote(stream)}/{order_id}", {}, lambda r: RecordedEvent.from_json(r.content))


def read_matching(body: Mapping[str, Any]) -> HttpCall:
    return HttpCall(
        "POST", "/api/read-matching", {"content": orjson.dumps(dict(body))}, lambda r: orjson.loads(r.content)
    )


def stream_metadata(stream: str) -> HttpCall:
    return HttpCall("GET", f"/api/stream-metadata/{_quote(stream)}", {}, lambda r: dict(r.json()["metadata"]))


def set_stream_metadata(stream: str, metadata: Mapping[str, Any]) -> HttpCall:
    content = orjson.dumps(dict(metadata))
    return HttpCall(
        "PUT", f"/api/stream-metadata/{_quote(stream)}", {"content": content}, lambda r: dict(r.json()["metadata"])
    )


def delete_stream(stream: str, hard: bool) -> HttpCall:
    options = {"params": {"hard": "true"}} if hard else {}
    return HttpCall("DELETE", f"/api/stream/{_quote(stream)}", options, lambda r: int(r.json()["deleted-events"]))


def scavenge() -> HttpCall:
    return HttpCall("POST", "/api/admin/scavenge", {})


def redact(stream: str | None, event_ids: Sequence[str] | None, reason: str | None) -> HttpCall:
    body: dict[str, Any] = {"reason": reason} if reason else {}
    if stream is not None:
        body["stream-name"] = stream
    if event_ids is not None:
        body["ids"] = list(event_ids)
    return HttpCall("POST", "/api/redact", {"content": orjson.dumps(body)}, lambda r: int(r.json()["redacted-events"]))


# -- durable consumers --------------------------------------------------------------------------


def ack(name: str, order_id: int) -> HttpCall:
    return HttpCall("POST", f"/api/subscription/{_quote(name)}/ack", {"json": {"order-id": order_id}})


def position(consumer: str) -> HttpCall:
    return HttpCall(
        "GET", f"/api/subscription/{_quote(consumer)}/position", {}, lambda r: position_answer(consumer, r.content)
    )


def forget_consumer(consumer: str) -> HttpCall:
    return HttpCall("DELETE", f"/api/subscription/{_quote(consumer)}", {}, _nothing)


# -- projections --------------------------------------------------------------------------------


def projections() -> HttpCall:
    return HttpCall("GET", "/api/projections", {})


def projection_value(name: str, key: str | None) -> HttpCall:
    if key is not None:
        return HttpCall("GET", f"/api/projection/{_quote(name)}/{_quote(key)}", {})
    return HttpCall("GET", f"/api/projection/{_quote(name)}", {}, lambda r: r.json()["current-value"])


def add_projection(name: str, reduction: str, language: str, fields: Mapping[str, Any]) -> HttpCall:
    content = projection_template(name, reduction, language, fields)
    return HttpCall("POST", "/api/projection", {"content": content}, lambda r: dict(r.json()["projection"]))


def remove_projection(name: str) -> HttpCall:
    return HttpCall("DELETE", f"/api/projection/{_quote(name)}", {}, _nothing)


# -- consumer groups ----------------------------------------------------------------------------


def group_path(name: str) -> str:
    return f"/api/group/{_quote(name)}"


def create_group(name: str, settings: Mapping[str, Any]) -> HttpCall:
    return HttpCall("POST", "/api/groups", {"json": {"group-name": name, **group_settings(settings)}})


def update_group(name: str, changes: Mapping[str, Any]) -> HttpCall:
    return HttpCall("PUT", group_path(name), {"json": group_changes(changes)})


def delete_group(name: str) -> HttpCall:
    return HttpCall("DELETE", group_path(name), {}, _nothing)


def groups() -> HttpCall:
    return HttpCall("GET", "/api/groups", {}, lambda r: list(r.json()["groups"]))


def group(name: str) -> HttpCall:
    return HttpCall("GET", group_path(name), {})


def reset_group(name: str, from_: int) -> HttpCall:
    return HttpCall("POST", f"{group_path(name)}/reset", {"json": {"from": from_}})


def replay_parked(name: str) -> HttpCall:
    return HttpCall("POST", f"{group_path(name)}/replay-parked", {}, lambda r: int(r.json()["replayed"]))


def _ids(order_ids: int | Sequence[int]) -> list[int]:
    return [order_ids] if isinstance(order_ids, int) else list(order_ids)


def ack_group(name: str, order_ids: int | Sequence[int]) -> HttpCall:
    return HttpCall("POST", f"{group_path(name)}/ack", {"json": ack_body(_ids(order_ids))})


def nack_group(name: str, order_ids: int | Sequence[int], action: str, reason: str) -> HttpCall:
    return HttpCall("POST", f"{group_path(name)}/nack", {"json": nack_body(_ids(order_ids), action, reason)})


def member_stream(
    name: str, member: str | None, max_in_flight: int | None, limit: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The path and parameters of a group member's stream of deliveries."""
    return f"{group_path(name)}/stream", {"member": member, "max-in-flight": max_in_flight, "limit": limit}
