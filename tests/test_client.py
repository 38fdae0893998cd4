"""The Python client against a live server."""

from __future__ import annotations

import pytest

from photon.client import PhotonClient
from photon.errors import NotAuthorized, NotFound, ValidationError, VersionConflict
from photon.subscriptions import CaughtUp

from .live import LiveServer, event


@pytest.fixture
def client(live: LiveServer) -> PhotonClient:
    return PhotonClient(live.url, "admin", "p4010n")


def test_emit_one_and_many(client: PhotonClient) -> None:
    one = client.emit(event(n=1))
    assert one["order-id"] == 1
    many = client.emit([event(n=2), event(n=3)], expected_version=1)
    assert [e["stream-version"] for e in many] == [2, 3]
    with pytest.raises(VersionConflict) as conflict:
        client.emit(event(), expected_version=1)
    assert conflict.value.current == 3
    with pytest.raises(ValidationError, match="event-type"):
        client.emit({"stream-name": "s", "payload": {}})
    assert client.streams() == [{"stream-name": "orders", "total-events": 3}]


def test_replay_cold_hot_cold_and_hot(client: PhotonClient) -> None:
    client.emit([event(n=1), event(n=2)])
    assert [e["payload"]["n"] for e in client.replay("orders", stream_type="cold")] == [1, 2]
    assert [e["order-id"] for e in client.replay(stream_type="cold", from_=2)] == [2]

    items = client.replay("orders", stream_type="hot-cold")
    assert [next(items)["order-id"], next(items)["order-id"]] == [1, 2]  # type: ignore[index]
    assert next(items) == CaughtUp(2)
    client.emit(event(n=3))
    assert next(items)["payload"] == {"n": 3}  # type: ignore[index]
    items.close()  # type: ignore[attr-defined]

    hot = client.replay("orders", stream_type="hot", limit=1)
    # A hot replay starts with the caught-up marker: from here on, every new event arrives.
    assert next(hot) == CaughtUp(3)
    client.emit(event(n=4))
    assert [e["payload"]["n"] for e in hot] == [4]  # type: ignore[index]


def test_durable_subscription_with_ack(client: PhotonClient) -> None:
    client.emit([event(n=i) for i in range(1, 5)])
    sub = client.subscribe("worker", "orders", stream_type="cold")
    seen = []
    for item in sub:
        seen.append(item["payload"]["n"])  # type: ignore[index]
        if len(seen) == 2:
            sub.ack()
            break
    sub.close()
    again = client.subscribe("worker", stream_type="cold")
    assert [e["payload"]["n"] for e in again] == [3, 4]  # type: ignore[index]


def test_errors_map_to_photon_errors(live: LiveServer) -> None:
    with pytest.raises(NotAuthorized):
        PhotonClient(live.url, "admin", "wrong").streams()
    client = PhotonClient(live.url)
    with pytest.raises(NotFound):
        list(client.replay("missing", stream_type="cold"))


def test_a_server_that_does_not_answer_is_a_photon_error() -> None:
    import socket

    from photon.errors import PhotonError, ServerUnreachable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PhotonClient(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ServerUnreachable, match="cannot reach the Photon server"):
            client.streams()
        with pytest.raises(PhotonError):
            list(client.replay("cart", stream_type="cold"))
    finally:
        client.close()
