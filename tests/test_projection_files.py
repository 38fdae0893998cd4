"""Projection files: the folder at start-up, watching it, loud failures, and the shipped examples."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from photon.core.events import CONFIG_STREAM
from photon.core.redaction import marker
from photon.core.store import EventStore
from photon.projections.definition import DefinitionError, load, spec_from_file

from .projection_helpers import caught_up, make_config, running, wait_for

EXAMPLES = Path(__file__).resolve().parent.parent / "projections"

COUNTER = "initial_value = 0\n\ndef reduction(state, event):\n    return state + {step}\n"


def config_events(store: EventStore) -> list[tuple[str, str]]:
    return [(e.event_type, e.payload["projection-name"]) for e in store.read(CONFIG_STREAM)]


def test_folder_at_start_up_registers_once_and_shows_bad_files_as_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "projections"
    folder.mkdir()
    (folder / "counter.py").write_text(COUNTER.format(step=1))
    (folder / "broken.hy").write_text("(defn reduction [state event] (+ state 1)")
    (folder / "no_reduction.py").write_text("initial_value = 0\n")
    (folder / "bad_initial.py").write_text("initial_value = object()\ndef reduction(s, e):\n    return s\n")
    (folder / "README.md").write_text("not a projection")
    config = make_config(tmp_path, "sqlite", projections_watch="false")
    store = EventStore.open(config)
    store.append([{"stream-name": "s", "event-type": "t", "payload": {}}] * 5)

    async def run() -> dict[str, Any]:
        async with running(store, config) as manager:
            await caught_up(manager)
            return {d["projection-name"]: d for d in manager.list()} | {"value": manager.value("counter")}

    caplog.set_level(logging.WARNING, "photon.projections")
    seen = asyncio.run(run())
    assert seen["counter"]["status"] == "running" and seen["counter"]["origin"] == "file"
    # Each file that does not load is in the log too, with its reason, not only in its descriptor.
    warned = [r.getMessage() for r in caplog.records if "does not load" in r.getMessage()]
    assert sorted(message.split("'")[1] for message in warned) == ["bad_initial", "broken", "no_reduction"]
    assert any("syntax error in broken.hy" in message for message in warned)
    assert seen["value"] >= 5
    assert seen["broken"]["status"] == "failed"
    assert "syntax error in broken.hy" in seen["broken"]["last-error"]
    assert seen["no_reduction"]["status"] == "failed"
    assert "defines no reduction" in seen["no_reduction"]["last-error"]
    assert (
        seen["bad_initial"]["status"] == "failed"
        and "'initial-value' must be JSON" in seen["bad_initial"]["last-error"]
    )
    registrations = config_events(store)
    assert sorted(registrations) == sorted(
        ("projection-registered", name) for name in ("bad_initial", "broken", "counter", "no_reduction")
    )

    # Unchanged files are not registered again at the next start.
    asyncio.run(run())
    assert config_events(store) == registrations

    # Files changed or removed while nothing ran are caught up with at start.
    (folder / "counter.py").write_text(COUNTER.format(step=100))
    (folder / "broken.hy").unlink()
    again = asyncio.run(run())
    assert config_events(store)[len(registrations) :] == [
        ("projection-deleted", "broken"),
        ("projection-registered", "counter"),
    ]
    assert "broken" not in again
    head = store.last_order_id()
    assert again["value"] == 100 * head  # every event, re-folded with the new code
    store.close()


def test_watching_the_folder_while_running(tmp_path: Path) -> None:
    folder = tmp_path / "projections"
    folder.mkdir()
    config = make_config(tmp_path, "memory")
    store = EventStore.open(config)
    store.append([{"stream-name": "s", "event-type": "t", "payload": {}}] * 10)

    async def scenario() -> None:
        async with running(store, config) as manager:
            # Written at once: the watcher may not watch yet, and must not miss it.
            (folder / "counter.py").write_text(COUNTER.format(step=1))
            await wait_for(lambda: "counter" in manager.projections, what="the new file to register")
            await caught_up(manager, ["counter"])
            first = manager.value("counter")
            assert first == store.last_order_id()  # its own registration event included

            (folder / "counter.py").write_text(COUNTER.format(step=10))
            await wait_for(
                lambda: (
                    manager.projections.get("counter") is not None
                    and manager.projections["counter"].spec.source.endswith("+ 10\n")
                ),
                what="the change to apply",
            )
            await caught_up(manager, ["counter"])
            assert manager.value("counter") % 10 == 0 and manager.value("counter") > first

            (folder / "hy_counter.hy").write_text(
                '(setv projection-name "hy-counter" initial-value 0)\n(defn reduction [s e] (+ s 1))\n'
            )
            await wait_for(lambda: "hy-counter" in manager.projections, what="the Hy file")
            (folder / "broken.py").write_text("def reduction(:\n")
            await wait_for(lambda: "broken" in manager.projections, what="the broken file")
            assert manager.get("broken")["status"] == "failed"

            (folder / "counter.py").unlink()
            await wait_for(lambda: "counter" not in manager.projections, what="the deletion")
            assert ("projection-deleted", "counter") in config_events(store)
            assert manager.get("hy-counter")["status"] == "running"

    asyncio.run(scenario())
    store.close()


def test_a_folder_created_after_the_start_is_watched_from_then(tmp_path: Path) -> None:
    folder = tmp_path / "projections"
    config = make_config(tmp_path, "memory")
    store = EventStore.open(config)
    store.append([{"stream-name": "s", "event-type": "t", "payload": {}}] * 3)

    async def scenario() -> None:
        async with running(store, config) as manager:
            folder.mkdir()
            (folder / "counter.py").write_text(COUNTER.format(step=1))
            await wait_for(lambda: "counter" in manager.projections, what="the file of the new folder to register")
            await caught_up(manager, ["counter"])
            assert manager.value("counter") == store.last_order_id()  # its registration event included

    asyncio.run(scenario())
    store.close()


def test_a_folder_removed_or_replaced_while_watched_is_watched_again(tmp_path: Path) -> None:
    folder = tmp_path / "projections"
    folder.mkdir()
    (folder / "first.py").write_text(COUNTER.format(step=1))
    config = make_config(tmp_path, "memory")
    store = EventStore.open(config)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await wait_for(lambda: "first" in manager.projections, what="the first file")
            await asyncio.sleep(1.5)  # watched
            shutil.rmtree(folder)
            await wait_for(lambda: "first" not in manager.projections, what="the removal of the folder's file")
            folder.mkdir()
            (folder / "second.py").write_text(COUNTER.format(step=1))
            await wait_for(lambda: "second" in manager.projections, what="the file of the folder made again")
            await asyncio.sleep(1.5)
            shutil.rmtree(folder)  # replaced at once, as a deployment copying a new folder in does
            folder.mkdir()
            (folder / "third.py").write_text(COUNTER.format(step=1))
            await wait_for(lambda: "third" in manager.projections, what="the file of the replacing folder")
            await wait_for(lambda: "second" not in manager.projections, what="the removal of the replaced file")
            assert manager.get("third")["status"] == "running"

    asyncio.run(scenario())
    store.close()


SAMPLE: list[dict[str, Any]] = [
    {"stream-name": "accounts", "event-type": "deposited", "payload": {"account": "alice", "amount": 100}},
    {"stream-name": "accounts", "event-type": "deposited", "payload": {"account": "bob", "amount": 30}},
    {"stream-name": "accounts", "event-type": "withdrawn", "payload": {"account": "alice", "amount": 25}},
    {"stream-name": "accounts", "event-type": "renamed", "payload": {"account": "bob", "to": "robert"}},
    {"stream-name": "shop", "event-type": "order-placed", "payload": {"item": "book"}},
    {"stream-name": "shop", "event-type": "order-shipped", "payload": {"item": "book"}},
] + [{"stream-name": "shop", "event-type": "order-placed", "payload": {"item": f"pen-{i}"}} for i in range(12)]

WANTED = {
    "events-per-type": {"deposited": 2, "withdrawn": 1, "renamed": 1, "order-placed": 13, "order-shipped": 1},
    "events-per-stream": {"accounts": 4, "shop": 14},
    "account-balances": {"alice": 75, "bob": 30},
}


def numbered(sample: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        event | {"order-id": i, "stream-version": i, "event-time": 1_700_000_000_000 + i, "id": f"e{i}"}
        for i, event in enumerate(sample, start=1)
    ]


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_each_example_loads_and_folds_the_sample(path: Path) -> None:
    definition = load(spec_from_file(path))
    state = definition.initial_value
    for event in numbered(SAMPLE):
        if definition.stream_name not in ("__all__", event["stream-name"]):
            continue
        if definition.event_types is not None and event["event-type"] not in definition.event_types:
            continue
        state = definition.reduction(state, event)
    name = {"events_per_type.py": "events-per-type", "events_per_stream.hy": "events-per-stream"}.get(path.name)
    name = name or {"account_balances.hy": "account-balances", "last_orders.py": "last-orders"}[path.name]
    if name == "last-orders":
        assert [o["payload"]["item"] for o in state] == [f"pen-{i}" for i in range(2, 12)]
        assert state[-1]["order-id"] == len(SAMPLE)
    else:
        assert state == WANTED[name]


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_each_example_folds_redacted_events(path: Path) -> None:
    """After `photon redact` a projection folds again over payloads that hold only the redaction
    marker: the shipped examples must keep running on them, not fail."""
    definition = load(spec_from_file(path))
    state = definition.initial_value
    for event in numbered(SAMPLE):
        if definition.stream_name not in ("__all__", event["stream-name"]):
            continue
        if definition.event_types is not None and event["event-type"] not in definition.event_types:
            continue
        if event["payload"].get("account") == "bob":
            event = event | {"payload": marker(1_700_000_000_000, "erasure request")}
        state = definition.reduction(state, event)
    if path.name == "account_balances.hy":
        assert state == {"alice": 75}


def test_the_docs_show_the_shipped_account_balances() -> None:
    shipped = (EXAMPLES / "account_balances.hy").read_text()
    form = shipped[shipped.index("{:projection-name") :]
    root = Path(__file__).parent.parent
    for doc in (root / "README.md", root / "docs" / "projections.md"):
        assert form in doc.read_text(), f"{doc.name} shows another account_balances.hy than the one shipped"


def test_the_examples_run_in_the_pool(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "projections")
    config = make_config(tmp_path, "sqlite", projections_watch="false")
    store = EventStore.open(config)
    store.append(SAMPLE)

    async def scenario() -> dict[str, Any]:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert {d["language"] for d in manager.list()} == {"python", "hy"}
            return {name: manager.value(name) for name in manager.names()}

    values = asyncio.run(scenario())
    assert values["account-balances"] == WANTED["account-balances"]
    assert values["events-per-stream"]["shop"] == 14 and values["events-per-stream"]["__config__"] == 4
    assert values["events-per-type"]["order-placed"] == 13
    assert len(values["last-orders"]) == 10
    assert values["__streams__"]["accounts"]["total-events"] == 4
    store.close()


def test_a_definition_that_never_finishes_loading_fails_alone(tmp_path: Path) -> None:
    folder = tmp_path / "projections"
    folder.mkdir()
    (folder / "forever.py").write_text("while True:\n    pass\n")
    (folder / "counter.py").write_text(COUNTER.format(step=1))
    config = make_config(tmp_path, "memory", projections_timeout=2.0, projections_watch="false")
    store = EventStore.open(config)
    store.append([{"stream-name": "s", "event-type": "t", "payload": {}}] * 3)

    async def scenario() -> None:
        async with running(store, config) as manager:
            await caught_up(manager)
            assert manager.get("forever")["status"] == "failed"
            assert "time limit" in manager.get("forever")["last-error"]
            assert manager.value("counter") == store.last_order_id()
            template = {"projection-name": "hang", "reduction": "import time\ntime.sleep(60)\n"}
            with pytest.raises(DefinitionError, match="time limit"):
                await manager.create(template)
            assert "hang" not in manager.names()

    asyncio.run(scenario())
    store.close()
