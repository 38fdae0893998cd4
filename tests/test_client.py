"""The Python client against a live server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from photon.client.blocking import AsyncPhotonClient, ConsumerPosition, PhotonClient
from photon.client.http import HttpTransport
from photon.client.http_async import AsyncHttpTransport
from photon.client.wire import Lines
from photon.core.backend import StreamInfo
from photon.core.errors import NotAuthorized, NotFound, StoreClosed, ValidationError, VersionConflict
from photon.core.events import RecordedEvent
from photon.core.subscriptions import CaughtUp

from .live import LiveServer, event


@pytest.fixture
def client(live: LiveServer) -> PhotonClient:
    return PhotonClient(live.url, "admin", "p4010n")


def test_emit_one_and_many(client: PhotonClient) -> None:
    one = client.emit(event(n=1))
    assert isinstance(one, RecordedEvent)
    assert (one.order_id, one.stream_name, one.stream_version, one.event_type) == (1, "orders", 1, "placed")
    assert one.payload == {"n": 1} and one.to_dict()["order-id"] == 1
    many = client.emit([event(n=2), event(n=3)], expected_version=1)
    assert [e.stream_version for e in many] == [2, 3]
    with pytest.raises(VersionConflict) as conflict:
        client.emit(event(), expected_version=1)
    assert conflict.value.current == 3
    with pytest.raises(ValidationError, match="event-type"):
        client.emit({"stream-name": "s", "payload": {}})
    assert client.streams() == [StreamInfo("orders", 3)]


def test_replay_cold_hot_cold_and_hot(client: PhotonClient) -> None:
    client.emit([event(n=1), event(n=2)])
    assert [e.payload["n"] for e in client.replay("orders", stream_type="cold")] == [1, 2]  # type: ignore[union-attr]
    assert [e.order_id for e in client.replay(stream_type="cold", from_=2)] == [2]

    items = client.replay("orders", stream_type="hot-cold")
    assert [next(items).order_id, next(items).order_id] == [1, 2]
    assert next(items) == CaughtUp(2)
    client.emit(event(n=3))
    assert next(items).payload == {"n": 3}  # type: ignore[union-attr]
    items.close()  # type: ignore[attr-defined]

    hot = client.replay("orders", stream_type="hot", limit=1)
    # A hot replay starts with the caught-up marker: from here on, every new event arrives.
    assert next(hot) == CaughtUp(3)
    client.emit(event(n=4))
    assert [e.payload["n"] for e in hot] == [4]  # type: ignore[union-attr]


def test_durable_subscription_with_ack(client: PhotonClient) -> None:
    client.emit([event(n=i) for i in range(1, 5)])
    seen = []
    with client.subscribe("worker", "orders", stream_type="cold") as sub:  # closed on leaving, as a group member
        for item in sub:
            seen.append(item.payload["n"])  # type: ignore[union-attr]
            if len(seen) == 2:
                sub.ack()
                break
    again = client.subscribe("worker", stream_type="cold")
    assert [e.payload["n"] for e in again] == [3, 4]  # type: ignore[union-attr]


def test_errors_map_to_photon_errors(live: LiveServer) -> None:
    with pytest.raises(NotAuthorized, match="Not authorized"):
        PhotonClient(live.url, "admin", "wrong").streams()
    # A URL naming the API rather than the server: said so, not blamed on the credentials.
    for url in (live.url + "/api", live.url + "/api/"):
        with pytest.raises(NotAuthorized, match="the URL ends in /api"):
            PhotonClient(url, "admin", "p4010n").streams()

        async def streams(url: str = url) -> None:
            async with AsyncPhotonClient(url, "admin", "p4010n") as photon:
                await photon.streams()

        with pytest.raises(NotAuthorized, match="the URL ends in /api"):
            asyncio.run(streams())
    client = PhotonClient(live.url)
    with pytest.raises(NotFound):
        list(client.replay("missing", stream_type="cold"))


def test_a_server_that_does_not_answer_is_a_photon_error() -> None:
    import socket

    from photon.core.errors import PhotonError, ServerUnreachable

    # The port stays bound (and not listening) while the client tries it: freed, another process
    # could listen on it meanwhile.
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


def test_a_closed_client_says_so(live: LiveServer) -> None:
    """Both clients, used after closing, raise StoreClosed naming it (httpx raised a RuntimeError)."""
    client = PhotonClient(live.url, "admin", "p4010n")
    client.emit(event("closing"))
    client.close()
    for call in (
        lambda: client.emit(event("closing")),
        client.streams,
        lambda: list(client.replay("closing", stream_type="cold")),
    ):
        with pytest.raises(StoreClosed, match="the client is closed"):
            call()

    async def run() -> None:
        async with AsyncPhotonClient(live.url, "admin", "p4010n") as photon:
            await photon.streams()
        with pytest.raises(StoreClosed, match="the client is closed"):
            await photon.emit(event("closing"))
        with pytest.raises(StoreClosed, match="the client is closed"):
            [item async for item in photon.replay("closing", stream_type="cold")]

    asyncio.run(run())
    assert live.store.stream_version("closing") == 1


def test_the_client_returns_what_the_embedded_store_returns(client: PhotonClient, live: LiveServer) -> None:
    stored = client.emit([event(n=1), event(n=2)])
    assert [type(e) for e in stored] == [RecordedEvent, RecordedEvent]
    assert list(client.replay("orders", stream_type="cold")) == list(live.store.read("orders"))


def test_paged_read_one_event_delete_and_consumer_positions(client: PhotonClient) -> None:
    client.emit([event(n=i) for i in range(5)])
    first = client.read("orders", limit=2)
    assert [e.payload["n"] for e in first.events] == [0, 1] and first.next == 3
    rest = client.read("orders", from_=first.next, limit=10)
    assert [e.order_id for e in rest.events] == [3, 4, 5] and rest.next is None
    assert [e.stream_version for e in client.read("orders", from_version=4).events] == [4, 5]
    assert client.event("orders", 2).payload == {"n": 1}
    with pytest.raises(NotFound):
        client.event("orders", 99)

    sub = client.subscribe("billing", "orders", stream_type="cold", limit=2)
    assert [e.order_id for e in sub] == [1, 2]  # type: ignore[union-attr]
    sub.ack()
    assert client.position("billing") == ConsumerPosition("billing", "orders", 2)
    client.forget_consumer("billing")
    with pytest.raises(NotFound):
        client.position("billing")

    assert client.delete_stream("orders") == 5
    with pytest.raises(NotFound):
        client.read("orders")


def test_async_client_has_the_same_calls(live: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncPhotonClient(live.url) as photon:
            one = await photon.emit(event(n=1))
            assert isinstance(one, RecordedEvent) and one.order_id == 1
            many = await photon.emit([event(n=2), event(n=3)], expected_version=1)
            assert [e.stream_version for e in many] == [2, 3]
            with pytest.raises(VersionConflict):
                await photon.emit(event(), expected_version=1)
            assert await photon.streams() == [StreamInfo("orders", 3)]

            page = await photon.read("orders", limit=2)
            assert [e.order_id for e in page.events] == [1, 2] and page.next == 3
            assert (await photon.event("orders", 3)).payload == {"n": 3}

            cold = [e async for e in photon.replay("orders", stream_type="cold")]
            assert cold == list(live.store.read("orders"))

            live_items = photon.replay("orders", stream_type="hot-cold", from_=3)
            assert (await anext(live_items)).order_id == 3  # type: ignore[union-attr]
            assert await anext(live_items) == CaughtUp(3)
            await photon.emit(event(n=4))
            assert (await anext(live_items)).payload == {"n": 4}  # type: ignore[union-attr]
            await live_items.aclose()  # type: ignore[attr-defined]

            seen = []
            async with photon.subscribe("worker", "orders", stream_type="cold") as sub:
                async for item in sub:
                    seen.append(item.order_id)  # type: ignore[union-attr]
                    if len(seen) == 2:
                        await sub.ack()
                        break
            assert await photon.position("worker") == ConsumerPosition("worker", "orders", 2)
            again = [e.order_id async for e in photon.subscribe("worker", stream_type="cold")]  # type: ignore[union-attr]
            assert again == [3, 4]
            await photon.forget_consumer("worker")

            await photon.add_projection(
                "count", "lambda state, event: state + 1", stream_name="orders", initial_value=0
            )
            for _ in range(100):
                if await photon.projection_value("count") == 4:
                    break
                await asyncio.sleep(0.05)
            assert await photon.projection_value("count") == 4
            assert "count" in [p["projection-name"] for p in await photon.projections()]
            await photon.remove_projection("count")

            assert await photon.delete_stream("orders") == 4
            with pytest.raises(NotFound):
                await photon.read("orders")
        async with AsyncPhotonClient(live.url, "admin", "wrong") as refused:
            with pytest.raises(NotAuthorized):
                await refused.streams()

    asyncio.run(scenario())


def test_both_clients_renew_a_refused_token_once_and_send_again(live: LiveServer) -> None:
    # A token the server does not know (expired, or from before a restart) is answered 401: the
    # client fetches a new one and sends the same request again, for plain and streaming answers.
    blocking = HttpTransport(live.url)
    blocking.token()
    blocking.session.token = "stale"
    assert blocking.request("POST", "/api/event", json=event(n=1)).json()["order-id"] == 1
    assert blocking.session.token != "stale"
    blocking.session.token = "stale"
    assert [item.order_id for item in blocking.replay("orders", {"stream-type": "cold"})] == [1]  # type: ignore[union-attr]
    blocking.close()

    async def scenario() -> None:
        transport = AsyncHttpTransport(live.url)
        await transport.token()
        transport.session.token = "stale"
        assert (await transport.request("GET", "/api/streams")).status_code == 200
        assert transport.session.token != "stale"
        transport.session.token = "stale"
        assert [item.order_id async for item in transport.replay("orders", {"stream-type": "cold"})] == [1]  # type: ignore[union-attr]
        await transport.close()

    asyncio.run(scenario())
    # Wrong credentials are not retried for ever: the renewal itself is refused.
    with pytest.raises(NotAuthorized):
        HttpTransport(live.url, "admin", "wrong").request("GET", "/api/streams")


def test_the_lines_of_a_streaming_answer_come_whole_whatever_the_chunks() -> None:
    lines = Lines()
    got = [*lines.feed(b'{"a":'), *lines.feed(b'1}\n{"b"'), *lines.feed(b":2}\n\n{"), *lines.feed(b'"c":3}')]
    assert got == [b'{"a":1}', b'{"b":2}', b""]
    assert lines.end() == [b'{"c":3}'] and lines.end() == []


def test_filtered_and_category_replays_and_subscriptions(client: PhotonClient, live: LiveServer) -> None:
    client.emit([event("account-1", "Opened"), event("orders-1", "Placed"), event("account-2", "Deposited")])

    def cold(stream: str, **options: Any) -> list[int]:
        return [e.order_id for e in client.replay(stream, stream_type="cold", **options)]  # type: ignore[union-attr]

    assert cold("__category__:account") == [1, 3]
    assert cold("__all__", filter={"stream-prefix": "orders"}) == [2]
    assert cold("__all__", filter={"event-type-prefix": ["Dep", "Pla"]}) == [2, 3]
    assert cold("__all__", filter={"stream-regex": "-1$", "category": "account"}) == [1]
    assert cold("__all__", filter={"event-type-regex": "^O"}) == [1]
    # Refused before anything is sent, naming the problem.
    with pytest.raises(ValidationError, match="stream-regex is not a valid regular expression") as bad:
        client.replay("__all__", filter={"stream-regex": "("})
    assert bad.value.field == "stream-regex"
    with pytest.raises(ValidationError, match="unknown filter key 'colour'"):
        client.replay("__all__", filter={"colour": "red"})
    with pytest.raises(ValidationError, match="has no '-'"):
        client.replay("__all__", filter={"category": "account-1"})
    # Refused by the server: a filter applies to __all__ or a category, not one stream.
    with pytest.raises(ValidationError, match="not one stream"):
        cold("orders-1", filter={"stream-prefix": "x"})
    sub = client.subscribe("accounts", "__category__:account", stream_type="cold")
    assert [e.order_id for e in sub] == [1, 3]  # type: ignore[union-attr]
    # A durable subscription to __all__ takes the same filters; its position is an order-id of
    # __all__, so acknowledging a delivered event also passes the ones the filter left out.
    deposits = client.subscribe("deposits", stream_type="cold", filter={"event-type-prefix": "Dep"})
    assert [e.order_id for e in deposits] == [3]  # type: ignore[union-attr]
    deposits.ack()
    client.emit([event("account-3", "Deposited"), event("orders-2", "Placed")])
    again = client.subscribe("deposits", stream_type="cold", filter={"event-type-prefix": "Dep"})
    assert [e.order_id for e in again] == [4]  # type: ignore[union-attr]
    assert client.position("deposits") == ConsumerPosition("deposits", "__all__", 3)
    with pytest.raises(ValidationError, match="has no '-'"):
        client.subscribe("bad", filter={"category": "account-1"})
    # Refused by the server, and no consumer is recorded for a refused first connection.
    with pytest.raises(ValidationError, match="not one stream"):
        list(client.subscribe("bad", "orders-1", stream_type="cold", filter={"category": "orders"}))
    with pytest.raises(ValidationError, match="stream-regex is not a valid regular expression"):
        client.transport.request("GET", "/api/subscription/bad", params={"stream-regex": "("})  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        client.position("bad")

    async def scenario() -> None:
        async with AsyncPhotonClient(live.url) as photon:
            got = [
                e.order_id async for e in photon.replay("__all__", stream_type="cold", filter={"category": "account"})
            ]  # type: ignore[union-attr]
            assert got == [1, 3, 4]
            sub = photon.subscribe("placed", stream_type="cold", filter={"category": "orders"})
            assert [e.order_id async for e in sub] == [2, 5]  # type: ignore[union-attr]

    asyncio.run(scenario())


@pytest.mark.parametrize("url", ["localhost:3000", "http://", "ftp://localhost:3000", ""])
def test_a_url_without_http_or_a_host_is_refused_saying_so(url: str) -> None:
    # httpx itself read "localhost:3000" as the scheme "localhost" and said only "unsupported protocol".
    for client in (PhotonClient, AsyncPhotonClient):
        with pytest.raises(ValidationError, match="must be http:// or https:// and a host") as refused:
            client(url)
        assert refused.value.field == "url"
