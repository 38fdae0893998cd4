"""The request model (photon.core.requests): one parser and one set of bounds for every way in.

The first tests are the request-parsing defects found on the code before the model, each over
a real socket against a server on SQLite (where an integer past 64 bits reached the driver):
each answered 500, or 200 and then an aborted connection. Now: 400 naming the problem, and
nothing stored.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import orjson
import pytest

from photon.core.batches import split_batches
from photon.core.consumers import ConsumerPositions
from photon.core.errors import Conflict, EventTooLarge, NotFound, ValidationError
from photon.core.events import PendingEvent
from photon.core.requests import (
    MAX_INT64,
    REQUEST_TYPES,
    PageOptions,
    ReplayOptions,
    from_json,
    from_query,
    options_of,
    parse_integer,
    to_json,
)
from photon.core.store import EventStore
from photon.server.http.errors import STATUS_OF_ERROR, status_of

from .live import LiveServer, event

TOO_BIG = str(1 << 63)


def bad_request(answer: httpx.Response, *fragments: str) -> dict[str, Any]:
    assert answer.status_code == 400, (answer.status_code, answer.text)
    body: dict[str, Any] = answer.json()
    for fragment in fragments:
        assert fragment in body["error"], body
    return body


# -- the defects, over a real socket ----------------------------------------------------------


def test_expected_version_past_64_bits_is_400_and_stores_nothing(live: LiveServer, api: httpx.Client) -> None:
    answer = api.post("/api/event", params={"expected-version": "1180591620717411303424"}, json=event("orders"))
    bad_request(answer, "expected-version must be a stream version (0 to 9223372036854775807)")
    in_body = api.post("/api/event", json={"events": [event("orders")], "expected-version": 1 << 63})
    bad_request(in_body, "expected-version")
    for text in ("1_0", "+1", "\u0663", "\u00b2"):
        bad_request(api.post("/api/event", params={"expected-version": text}, json=event("orders")), "expected-version")
    assert live.store.last_order_id() == 0


def test_stream_contents_from_past_64_bits_is_400(api: httpx.Client) -> None:
    assert api.post("/api/event", json=event("S")).status_code == 200
    body = bad_request(
        api.get("/api/stream-contents/S", params={"from": TOO_BIG}), "'from'", "at most 9223372036854775807"
    )
    assert body["parameter"] == "from"
    # The largest number is a position like any other: an empty page, not an error.
    assert api.get("/api/stream-contents/S", params={"from": str(MAX_INT64)}).json()["results"] == []


def test_event_by_order_id_past_64_bits_or_not_ascii_is_400(api: httpx.Client) -> None:
    bad_request(api.get(f"/api/event/__all__/{TOO_BIG}"), "'order-id'", "at most")
    bad_request(api.get("/api/event/__all__/%C2%B2"), "'order-id'", "ASCII digits only")
    bad_request(api.get("/api/event/__all__/%D9%A3"), "ASCII digits only")
    assert api.get(f"/api/event/__all__/{MAX_INT64}").status_code == 404


def test_cold_replay_from_time_past_64_bits_is_400_before_any_answer(api: httpx.Client) -> None:
    assert api.post("/api/event", json=event("S")).status_code == 200
    answer = api.get("/api/replay/S", params={"stream-type": "cold", "from-time": TOO_BIG})
    bad_request(answer, "'from-time'", "at most 9223372036854775807")
    assert api.get("/api/replay/S", params={"stream-type": "cold", "from-time": str(MAX_INT64)}).text == ""


@pytest.mark.parametrize("text", ["1_0", "+1", "-1", "\u0663", "\uff11", "\u00b2", " 1", "1.0", "0x1"])
def test_query_integers_are_ascii_digits_only(api: httpx.Client, text: str) -> None:
    for path, name in [
        ("/api/stream-contents/__all__", "from"),
        ("/api/stream-contents/__all__", "limit"),
        ("/api/streams", "limit"),
        ("/api/replay/__all__?stream-type=cold", "to"),
    ]:
        answer = api.get(path, params={name: text})
        bad_request(answer, f"{name!r} must be a whole number")


def test_payload_integers_beyond_64_bits_are_refused_not_turned_into_floats(
    live: LiveServer, api: httpx.Client
) -> None:
    body = b'{"stream-name": "n", "event-type": "t", "payload": {"big": 18446744073709551616}}'
    answer = api.post("/api/event", content=body, headers={"Content-Type": "application/json"})
    bad_request(answer, "18446744073709551616", "beyond 64 bits", "as strings")
    negative = body.replace(b"18446744073709551616", b"-9223372036854775809")
    bad_request(api.post("/api/event", content=negative), "beyond 64 bits")
    assert live.store.last_order_id() == 0
    # What 64 bits hold is kept exactly, as are long digit strings.
    kept = (
        b'{"stream-name": "n", "event-type": "t", "payload": {"u": 18446744073709551615, "s": "123456789012345678901"}}'
    )
    stored = api.post("/api/event", content=kept)
    assert stored.status_code == 200 and b'"u":18446744073709551615' in stored.content
    assert b'"s":"123456789012345678901"' in stored.content


def test_stored_numbers_past_64_bits_are_400(live: LiveServer, api: httpx.Client) -> None:
    # orjson reads 2^63..2^64-1 exactly, but no backend stores them: the driver failed (5xx).
    for body in ({**event("t"), "event-time": 1 << 63}, [event("t"), {**event("t"), "event-time": (1 << 64) - 1}]):
        bad_request(api.post("/api/event", json=body), "'event-time'", "at most 9223372036854775807")
    assert live.store.last_order_id() == 0
    bad_request(api.put("/api/stream-metadata/t", json={"max-count": 1 << 63}), "'max-count'", "9223372036854775807")


def test_payload_integers_beyond_64_bits_are_refused_over_tcp(live: LiveServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", live.tcp_port), timeout=30) as sock:
        sock.sendall(orjson.dumps({"token": live.token()}) + b"\n")
        sock.sendall(b'{"stream-name": "n", "event-type": "t", "payload": {"big": 1180591620717411303424}}\n')
        sock.sendall(orjson.dumps(event("n")) + b"\n")
        sock.shutdown(socket.SHUT_WR)
        lines = b""
        while chunk := sock.recv(65536):
            lines += chunk
    first, second = (orjson.loads(line) for line in lines.splitlines())
    assert "beyond 64 bits" in first["error"]
    assert second["order-id"] == 1


def test_consumer_ack_past_64_bits_is_400(api: httpx.Client) -> None:
    assert api.post("/api/event", json=event("S")).status_code == 200
    with api.stream("GET", "/api/subscription/c1", params={"stream-type": "cold"}) as answer:
        assert answer.status_code == 200
        answer.read()
    bad_request(api.post("/api/subscription/c1/ack", content=b'{"order-id": 18446744073709551616}'), "beyond 64")
    bad_request(api.post("/api/subscription/c1/ack", json={"order-id": 1 << 63}), "'order-id'", "at most")
    bad_request(api.post("/api/subscription/c1/ack", json={"order-id": "1"}), "'order-id' must be a whole number")
    assert api.post("/api/subscription/c1/ack", json={"order-id": 1}).json()["acked"] == 1


# -- the parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text", "fragment"),
    [
        ("1_0", True, "ASCII digits only"),
        ("+1", True, "ASCII digits only"),
        ("\u00b2", True, "ASCII digits only"),
        ("\u0663", True, "ASCII digits only"),
        ("", True, "ASCII digits only"),
        ("1" * 5000, True, "at most"),
        (TOO_BIG, True, "at most 9223372036854775807 (a signed 64-bit number)"),
        (1 << 63, False, "at most"),
        (-1, False, "at least 0"),
        (True, False, "whole number"),
        (1.0, False, "whole number"),
        ("5", False, "whole number"),
    ],
)
def test_parse_integer_refuses(value: Any, text: bool, fragment: str) -> None:
    with pytest.raises(ValidationError, match="'n'") as caught:
        parse_integer(value, "n", text=text)
    assert fragment in str(caught.value) and caught.value.field == "n"


def test_parse_integer_takes() -> None:
    assert parse_integer("007", "n", text=True) == 7
    assert parse_integer(str(MAX_INT64), "n", text=True) == MAX_INT64
    assert parse_integer("0" * 30 + "5", "n", text=True) == 5
    assert parse_integer(0, "n") == 0


def test_replay_options_one_model_for_query_and_json() -> None:
    from_text = from_query(ReplayOptions, {"from": ["3"], "event-types": ["a,b", "c"], "stream-type": ["cold"]})
    from_fields = from_json(ReplayOptions, {"from": 3, "event-types": ["a", "b", "c"], "stream-type": "cold"})
    assert from_text == from_fields
    assert to_json(from_text) == {"stream-type": "cold", "from": 3, "event-types": ["a", "b", "c"]}
    assert from_text.subscribe_args()["from_order_id"] == 3
    # Muon's args may hold numbers as text; AMQP's JSON fields may not.
    assert from_json(ReplayOptions, {"limit": "5"}, numbers_as_text=True).limit == 5
    with pytest.raises(ValidationError, match="'limit' must be a whole number"):
        from_json(ReplayOptions, {"limit": "5"})
    with pytest.raises(ValidationError, match="unknown field 'form'"):
        from_json(ReplayOptions, {"form": 1})
    with pytest.raises(ValidationError, match="did you mean 'from'"):
        from_query(ReplayOptions, {"form": ["1"]})
    with pytest.raises(ValidationError, match="stream-regex"):
        from_json(ReplayOptions, {"stream-regex": "("})


def test_every_option_has_help_and_the_model_has_json_schemas() -> None:
    for model in (ReplayOptions, PageOptions):
        for option in options_of(model):
            assert option.help, (model, option.name)
    _, components = msgspec.json.schema_components(REQUEST_TYPES)
    replay = components["ReplayOptions"]["properties"]
    assert replay["from"]["anyOf"][0]["maximum"] == MAX_INT64
    assert replay["limit"]["anyOf"][0]["minimum"] == 1
    assert components["EmitEnvelope"]["required"] == ["events"]


# -- the core pieces front ends share ------------------------------------------------------------


def pending(event_id: str, client_id: bool = True) -> PendingEvent:
    return PendingEvent("s", event_id, "t", 0, b"}", client_id)


def test_batches_split_at_a_repeated_client_id_and_at_the_size() -> None:
    events = [pending("a"), pending("b"), pending("a"), pending("x", False), pending("x", False), pending("b")]
    assert [[e.event_id for e in batch] for batch in split_batches(events, 10)] == [
        ["a", "b"],
        ["a", "x", "x", "b"],
    ]
    assert [len(batch) for batch in split_batches([pending(str(n)) for n in range(5)], 2)] == [2, 2, 1]
    assert list(split_batches([], 2)) == []


def test_consumer_positions_live_in_the_core(tmp_path: Any) -> None:
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(tmp_path / "p.db")}) as store:
        store.append([event("s"), event("s")])
        consumers = ConsumerPositions(store)
        assert consumers.open("c", "s").acked == 0
        assert consumers.ack("c", 2).acked == 2
        assert consumers.ack("c", 1).acked == 2  # only forward
        with pytest.raises(Conflict, match="past the newest"):
            consumers.ack("c", 3)
        with pytest.raises(Conflict, match="follows stream 's'"):
            consumers.open("c", "t")
        assert [p.to_json() for p in consumers.list()] == [{"consumer": "c", "stream": "s", "acked": 2}]
        consumers.delete("c")
        with pytest.raises(NotFound):
            consumers.require("c")
        with pytest.raises(ValidationError, match="consumer name"):
            consumers.open("x" * 201, None)
        with pytest.raises(ValidationError, match="must not be '.': URLs resolve it"):
            consumers.open(".", None)
        assert consumers.list() == []


def test_one_table_maps_core_errors_to_statuses() -> None:
    assert status_of(EventTooLarge("event too large: ...")) == 413
    assert status_of(ValidationError("event too large, said in a message of another error")) == 400
    assert status_of(Conflict("x")) == 409
    kinds = [kind for kind, _ in STATUS_OF_ERROR]
    for index, kind in enumerate(kinds):  # most specific first: no entry is shadowed by an earlier one
        assert not any(issubclass(kind, earlier) for earlier in kinds[:index]), kind
