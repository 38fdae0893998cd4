"""The steps of a route that takes a JSON body and answers with what a store call returns.

Read the body (within a limit) and parse it strictly, check that it is an object with known
fields, call the store in the blocking pool (never on the event loop), answer JSON. The errors a
call raises are the core's and are answered by the one table in `photon.server.http.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from photon.core import aio, json_input
from photon.core.store import EventStore
from photon.server.http.errors import RequestError, json_response
from photon.server.http.limits import body_limit, read_body

T = TypeVar("T")


def store_of(request: Request) -> EventStore:
    store: EventStore = request.app.state.store
    return store


def parse_json(body: bytes) -> Any:
    """A request body's JSON, read strictly (`photon.core.json_input`); an empty or malformed one is refused."""
    if not body.strip():
        raise RequestError("empty request body: expected JSON")
    try:
        return json_input.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None


async def json_body(request: Request, limit: int | None = None) -> Any:
    """The request's JSON body, of at most `limit` bytes (default: `rest.body.max.bytes`)."""
    return parse_json(await read_body(request, body_limit(request) if limit is None else limit))


async def json_object(
    request: Request, shape: str, *, fields: Sequence[str] | None = None, limit: int | None = None
) -> dict[str, Any]:
    """The request's JSON body, which must be an object (else refused with `shape`, the message
    saying what it should be) holding only `fields` when given."""
    doc = await json_body(request, limit)
    if type(doc) is not dict:
        raise RequestError(shape)
    if fields is not None:
        unknown = sorted(doc.keys() - set(fields))
        if unknown:
            listed = f"{', '.join(fields[:-1])} and {fields[-1]}" if len(fields) > 1 else fields[0]
            raise RequestError(f"unknown field {unknown[0]!r}; the body has the fields {listed}")
    return doc


async def in_thread(request: Request, call: Callable[[EventStore], T]) -> T:
    """`call(store)` in the store's blocking pool."""
    store = store_of(request)
    return await aio.run_blocking(store, call, store)


async def answer(
    request: Request,
    call: Callable[[EventStore], T],
    to_json: Callable[[T], Any] | None = None,
    *,
    status: int = 200,
) -> Response:
    """`call(store)` in the store's blocking pool, answered as JSON (through `to_json` when given)."""
    result = await in_thread(request, call)
    return json_response(result if to_json is None else to_json(result), status)
