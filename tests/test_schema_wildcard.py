"""Two things of the Clojure Photon: GET /api/schema/{stream}, and the `**` wildcard in cold reads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from photon.client.blocking import PhotonClient
from photon.core.errors import NotFound, ValidationError
from photon.core.store import EventStore

from .live import LiveServer


def _ev(stream: str, n: int, **extra: object) -> dict[str, object]:
    return {"stream-name": stream, "event-type": "t", "payload": {"n": n}, **extra}


def test_schema_route_gives_the_inferred_schemas_per_version(live: LiveServer) -> None:
    with PhotonClient(live.url) as client, live.client() as api:
        client.emit(
            [
                {"stream-name": "orders", "event-type": "placed", "payload": {"sku": "A", "qty": 2}},
                {
                    "stream-name": "orders",
                    "event-type": "placed",
                    "schema": 2,
                    "payload": {"sku": "B", "lines": {"n": 1}},
                },
            ]
        )
        deadline = time.monotonic() + 30
        while (answer := api.get("/api/schema/orders")).status_code == 404:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert answer.json() == {
            "stream-name": "orders",
            "schemas": {
                "__unversioned__": {"sku": "string", "qty": "number"},
                "2": {"sku": "string", "lines": {"n": "number"}},
            },
        }
        missing = api.get("/api/schema/nothing")
        assert missing.status_code == 404 and "no schema known for stream 'nothing'" in missing.json()["error"]
    assert httpx.get(live.url + "/api/schema/orders").status_code == 401  # a token, as every /api route


def test_wildcard_cold_replay_and_read(live: LiveServer) -> None:
    with PhotonClient(live.url) as client:
        client.emit([_ev("orders-1", 1), _ev("carts-1", 2), _ev("orders-2", 3), _ev("orders-1", 4)])
        replayed = [(e.stream_name, e.payload["n"]) for e in client.replay("orders-**", stream_type="cold")]  # type: ignore[union-attr]
        assert replayed == [("orders-1", 1), ("orders-2", 3), ("orders-1", 4)]
        assert [e.order_id for e in client.replay("orders-**", stream_type="cold", limit=2)] == [1, 3]
        # `**` alone is every client stream: the internal __config__ is not matched
        assert len(list(client.replay("**", stream_type="cold"))) == 4
        assert [e.stream_name for e in client.replay("**-1", stream_type="cold", from_=2)] == ["carts-1", "orders-1"]
        assert list(client.replay("nothing-**", stream_type="cold")) == []
        page = client.read("orders-**", limit=2)
        assert [e.order_id for e in page.events] == [1, 3] and page.next == 4
        live_items = client.replay("orders-**", stream_type="hot-cold", from_=4)
        assert next(live_items).order_id == 4  # type: ignore[union-attr]
        next(live_items)  # caught up
        client.emit([_ev("carts-2", 5), _ev("orders-3", 6)])
        assert next(live_items).stream_name == "orders-3"  # type: ignore[union-attr]
        live_items.close()  # type: ignore[attr-defined]
    assert [e.order_id for e in live.store.read("orders-**", limit=2)] == [1, 3]
    with pytest.raises(ValidationError, match="from-version applies to a stream"):
        list(live.store.read("orders-**", from_version=2))


def test_wildcard_on_the_command_line(tmp_path: Path) -> None:
    import subprocess

    from .live import PHOTON

    path = tmp_path / "w.db"
    with EventStore.open(db_backend="sqlite", sqlite_path=str(path)) as store:
        store.append([_ev("a-1", 1), _ev("b-1", 2), _ev("a-2", 3)])
    result = subprocess.run(
        [PHOTON, "replay", "a-**", "-db.backend", "sqlite", "-sqlite.path", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert [line.count('"a-') for line in result.stdout.splitlines()] == [1, 1]


def test_a_plain_missing_stream_is_still_not_found(live: LiveServer) -> None:
    with PhotonClient(live.url) as client, pytest.raises(NotFound):
        list(client.replay("orders-1", stream_type="cold"))
