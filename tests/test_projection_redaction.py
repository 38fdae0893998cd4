"""Projections after a redaction: those whose state may hold a redacted payload fold again from the
start, live and at a restart from a checkpoint; the others are not disturbed. In process (real
worker processes) and on a running server over HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from photon.core.events import CONFIG_STREAM
from photon.core.redaction import REDACTED
from photon.core.store import EventStore
from photon.projections.checkpoints import checkpoint_key
from photon.projections.offline import fold
from photon.projections.registry import projections as registered_projections

from .live import LiveServer
from .projection_helpers import caught_up, make_config, running, wait_for

SECRET = "alice@example.com"


def collect(name: str, stream: str, **extra: Any) -> dict[str, Any]:
    """A projection that keeps every payload it folds."""
    return {
        "projection-name": name,
        "language": "python",
        "stream-name": stream,
        "initial-value": [],
        "reduction": "lambda state, event: state + [event['payload']]",
        **extra,
    }


ALL = collect("all-payloads", "__all__")
PERSON = collect("person", "person-1")
CATEGORY = collect("people", "__category__:person")
OTHER = collect("other", "orders-1")
OTHER_TYPES = collect("shipped-only", "__all__", **{"event-types": ["Shipped"]})
TEMPLATES = (ALL, PERSON, CATEGORY, OTHER, OTHER_TYPES)


def fill(store: EventStore) -> None:
    store.append([{"stream-name": "person-1", "event-type": "Registered", "payload": {"email": SECRET}}])
    store.append([{"stream-name": "orders-1", "event-type": "Placed", "payload": {"total": 3}}])
    store.append([{"stream-name": "orders-1", "event-type": "Shipped", "payload": {"to": "Main St"}}])
    store.append([{"stream-name": "person-1", "event-type": "Renamed", "payload": {"name": "Al"}}])


def holds_secret(value: Any) -> bool:
    return SECRET.encode() in orjson.dumps(value)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_redaction_refolds_the_projections_that_folded_it_and_no_others(tmp_path: Path, backend: str) -> None:
    config = make_config(tmp_path, backend)
    store = EventStore.open(config)
    fill(store)

    async def scenario() -> None:
        async with running(store, config) as manager:
            for template in TEMPLATES:
                await manager.create(template)
            await caught_up(manager)
            for name in ("all-payloads", "person", "people"):
                assert holds_secret(manager.value(name)), name
            untouched = {name: manager.projections[name] for name in ("other", "shipped-only", "__streams__")}
            values = {name: manager.value(name) for name in ("other", "shipped-only")}

            await asyncio.to_thread(store.redact, stream="person-1", reason="erasure")
            await wait_for(
                lambda: not any(holds_secret(manager.value(n)) for n in ("all-payloads", "person", "people")),
                what="the affected projections to fold again without the payload",
            )
            await caught_up(manager)
            assert manager.refolds == 3
            assert [p["redacted"] for p in manager.value("person")] == [True, True]
            assert len(manager.value("all-payloads")) == store.last_order_id()  # each event once, none twice
            for name, record in untouched.items():
                assert manager.projections[name] is record, f"{name} was started again"
            assert {name: manager.value(name) for name in values} == values

            # Redacting by id touches the projections of that event's stream and type only.
            shipped = next(e for e in store.read("orders-1") if e.event_type == "Shipped")
            await asyncio.to_thread(store.redact, event_ids=[shipped.event_id])
            await wait_for(lambda: manager.refolds == 6, what="three more refolds")
            await caught_up(manager)
            assert manager.value("shipped-only")[0]["redacted"] is True
            assert manager.value("other")[1]["redacted"] is True

    asyncio.run(scenario())
    store.close()


def test_a_checkpoint_from_before_a_redaction_is_not_resumed(tmp_path: Path) -> None:
    config = make_config(tmp_path, "sqlite", projections_checkpoint_events=1)
    store = EventStore.open(config)
    fill(store)

    async def first_run() -> None:
        async with running(store, config) as manager:
            for template in (ALL, OTHER):
                await manager.create(template)
            await caught_up(manager)

    asyncio.run(first_run())
    assert holds_secret(store.read_checkpoint(checkpoint_key("all-payloads"))["state"])
    # Redacted with no server running (as `photon redact -db.backend ...` does).
    store.redact(event_ids=[next(iter(store.read("person-1"))).event_id])
    record = list(store.read(CONFIG_STREAM, event_types=[REDACTED]))[-1].payload
    assert record["stream-names"] == ["person-1"] and record["event-types"] == ["Registered"]
    assert record["from-order-id"] == 1

    # `photon projections` on the store folds from the start too.
    specs = registered_projections(store)
    offline = fold(store, specs["all-payloads"])
    assert offline.resumed_from == 0 and not holds_secret(offline.value)
    assert fold(store, specs["other"]).resumed_from > 0

    async def second_run() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert manager.get("all-payloads")["resumed-from"] == 0
            assert not holds_secret(manager.value("all-payloads"))
            assert manager.get("other")["resumed-from"] > 0  # its source holds no redacted event
            await wait_for(
                lambda: not holds_secret(store.read_checkpoint(checkpoint_key("all-payloads"))["state"]),
                what="the checkpoint to be written over",
            )

    asyncio.run(second_run())
    store.close()


def test_on_a_server_a_projection_no_longer_holds_a_redacted_payload(live: LiveServer, api: httpx.Client) -> None:
    for template in (PERSON, OTHER):
        created = api.post("/api/projection", json=template)
        assert created.status_code in (200, 201), created.text
    api.post(
        "/api/event",
        json=[
            {"stream-name": "person-1", "event-type": "Registered", "payload": {"email": SECRET}},
            {"stream-name": "orders-1", "event-type": "Placed", "payload": {"total": 3}},
        ],
    )

    def value(name: str) -> Any:
        return api.get(f"/api/projection/{name}").json()

    deadline = time.monotonic() + 30
    while not (holds_secret(value("person")["current-value"]) and value("other")["current-value"]):
        assert time.monotonic() < deadline, "the projections did not fold the events"
        time.sleep(0.05)
    before = value("other")

    assert api.post("/api/redact", json={"stream-name": "person-1", "reason": "erasure"}).status_code == 200
    # The projection starts again from the start: until it has folded the stream again its
    # value may be its initial one, so wait for the redacted event to be in it.
    while holds_secret(current := value("person")["current-value"]) or not current:
        assert time.monotonic() < deadline + 30, "the projection kept the redacted payload"
        time.sleep(0.05)
    assert current[0]["redacted"] is True
    after = value("other")
    assert after["init-time"] == before["init-time"] and after["current-value"] == before["current-value"]
