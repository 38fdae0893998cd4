"""No input gives a 5xx: generated parameters and bodies for every route of the HTTP API.

The routes are read from the running application (path, methods, declared query parameters),
so a new route is covered without touching this file. The bulk runs in-process (starlette's
TestClient on the live server's app, where an exception escaping the app, even after the
answer's head went out, fails the test); a smaller run goes over a real socket.

Endless answers (a hot replay, a group's delivery stream, a projection's updates) are asked for
cold where the route takes a stream type; over the socket only their status is read; in-process
the routes that have no end are left to the socket run.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from photon.server.http.params import RouteDoc

from .live import LiveServer, event, make_config

IN_PROCESS_EXAMPLES = 12
BODY_EXAMPLES = 40
"""Routes that take a body get more: their input space is larger."""
SOCKET_EXAMPLES = 3
ENDLESS = ("/api/group/{name}/stream", "/api/projection/{name}/updates")
"""Routes whose answer has no end whatever the parameters (read over the socket, head only)."""

INTEGER_TEXTS = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "-1",
        "+1",
        "1_0",
        "\u00b2",
        "\u0663",
        "\uff11",
        " 1",
        "1.0",
        "1e3",
        "0x10",
        "",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "1180591620717411303424",
        "1" * 400,
    ]
) | st.integers(min_value=-(1 << 70), max_value=1 << 70).map(str)
NAMES = st.sampled_from(
    [
        "s",
        "orders",
        "__all__",
        "__config__",
        "missing",
        "cat-1",
        "cat",
        "**",
        "a/b",
        "1",
        "9223372036854775808",
        "\u00b2",
    ]
) | st.text(string.printable + "\u00e9\u00b2\u0663", min_size=1, max_size=12)
TEXT = st.text(max_size=16)
FIELD_NAMES = [
    "stream-name",
    "event-type",
    "payload",
    "id",
    "event-time",
    "tags",
    "events",
    "expected-version",
    "expected-versions",
    "condition",
    "query",
    "after",
    "limit",
    "order-id",
    "from",
    "event-types",
    "projection-name",
    "reduction",
    "language",
    "initial-value",
    "metadata",
    "max-count",
    "max-age",
    "name",
    "member",
]
BIG_INTEGERS = st.sampled_from([0, 1, -1, (1 << 63) - 1, 1 << 63, 1 << 64, -(1 << 63) - 1, 1 << 70])
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 66), max_value=1 << 66)
    | BIG_INTEGERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | NAMES
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELD_NAMES) | TEXT, inner, max_size=5),
    max_leaves=12,
)
EVENTS = st.fixed_dictionaries(
    {"stream-name": NAMES, "event-type": NAMES | TEXT, "payload": st.dictionaries(TEXT, JSON, max_size=3)},
    optional={"id": NAMES | JSON_SCALARS, "event-time": BIG_INTEGERS | JSON_SCALARS, "tags": JSON},
)
BODIES = (
    JSON.map(lambda value: json.dumps(value).encode())
    | EVENTS.map(lambda value: json.dumps(value).encode())
    | st.fixed_dictionaries(
        {"events": st.lists(EVENTS, max_size=3)},
        optional={"expected-version": JSON_SCALARS | INTEGER_TEXTS, "expected-versions": JSON, "condition": JSON},
    ).map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=40)
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    doc: RouteDoc

    @property
    def endless(self) -> bool:
        return self.path in ENDLESS


def operations(app: Any) -> list[Operation]:
    """Every method of every route of the app (HEAD left out: it is GET without the body)."""
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        doc = getattr(route.endpoint, "route_doc", None) or RouteDoc()
        path = route.path.replace(":path}", "}")
        for method in sorted(route.methods - {"HEAD"}):
            found.append(Operation(method, path, doc))
    return found


def param_values(doc: RouteDoc) -> st.SearchStrategy[dict[str, str]]:
    strategies: dict[str, st.SearchStrategy[str]] = {}
    for param in doc.params:
        if param.kind == "integer":
            strategies[param.name] = INTEGER_TEXTS | TEXT
        elif param.choices:
            strategies[param.name] = st.sampled_from(param.choices) | TEXT
        elif param.kind == "boolean":
            strategies[param.name] = st.sampled_from(["true", "false", "1", "0", "yes", "maybe"]) | TEXT
        else:
            strategies[param.name] = NAMES | TEXT
    unknown = st.dictionaries(st.sampled_from(["colour", "form", "access_token", "stream-type"]), TEXT, max_size=1)
    return st.builds(lambda known, extra: {**extra, **known}, st.fixed_dictionaries({}, optional=strategies), unknown)


@st.composite
def requests(draw: st.DrawFn, operation: Operation) -> tuple[str, dict[str, str], bytes | None]:
    path = operation.path
    while "{" in path:
        start = path.index("{")
        end = path.index("}", start)
        value = draw(NAMES | INTEGER_TEXTS.filter(bool))
        path = path[:start] + quote(value, safe="/" if path[start:end].startswith("{stream") else "") + path[end + 1 :]
    params = draw(param_values(operation.doc))
    if operation.doc.streaming and any(p.name == "stream-type" for p in operation.doc.params):
        params["stream-type"] = "cold"  # a hot replay never ends
    body = draw(BODIES) if operation.method in ("POST", "PUT") else None
    return path, params, body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path, **{"payload.max.bytes": "2000", "rest.body.max.bytes": "20000"}))
    try:
        with live.client() as api:  # some history for the reads to find
            for stream in ("s", "orders", "cat-1", "a/b"):
                assert api.post("/api/event", json=[event(stream), event(stream, "other")]).status_code == 200
        yield live
    finally:
        live.stop()


Send = Callable[[Operation, str, dict[str, str], bytes | None], tuple[int, str]]


def fuzz(operation: Operation, send: Send, examples: int) -> None:
    """Send `examples` generated requests for `operation`; none may answer 5xx."""

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(requests(operation))
    def run(request: tuple[str, dict[str, str], bytes | None]) -> None:
        path, params, body = request
        status, text = send(operation, path, params, body)
        assert status < 500, f"{operation.method} {path} {params} {body!r:.200}: {status} {text[:300]}"

    run()


def test_no_input_gives_a_server_error_in_process(server: LiveServer) -> None:
    headers = {"Authorization": f"Token {server.token()}"}
    found = [op for op in operations(server.app) if not op.endless]
    assert len(found) > 30  # the route listing works
    with TestClient(server.app, raise_server_exceptions=True) as client:

        def send(operation: Operation, path: str, params: dict[str, str], body: bytes | None) -> tuple[int, str]:
            answer = client.request(operation.method, path, params=params, content=body, headers=headers)
            return answer.status_code, answer.text

        for operation in found:
            fuzz(operation, send, BODY_EXAMPLES if operation.method in ("POST", "PUT") else IN_PROCESS_EXAMPLES)


def test_no_input_gives_a_server_error_over_a_socket(server: LiveServer) -> None:
    with server.client() as api:

        def send(operation: Operation, path: str, params: dict[str, str], body: bytes | None) -> tuple[int, str]:
            with api.stream(operation.method, path, params=params, content=body, timeout=30) as answer:
                if operation.endless:
                    return answer.status_code, ""
                answer.read()  # a stream cut off after its head raises here
                return answer.status_code, answer.text

        for operation in operations(server.app):
            fuzz(operation, send, SOCKET_EXAMPLES)
