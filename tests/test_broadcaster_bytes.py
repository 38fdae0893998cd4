"""A listener's bound in bytes (`photon.core.broadcaster.Listener`): the bytes it counts are those
of the events it queued, whichever of its filters picked them, and it overflows past its bound."""

from __future__ import annotations

import random

import pytest

from photon.core.broadcaster import Broadcaster, Listener
from photon.core.events import RecordedEvent


def events(rng: random.Random, first: int, count: int) -> list[RecordedEvent]:
    return [
        RecordedEvent(n, rng.choice("ab"), n, f"id-{n}", rng.choice("xy"), 0, b"d" * rng.randint(1, 500))
        for n in range(first, first + count)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_the_bytes_counted_are_those_of_the_queued_events(seed: int) -> None:
    rng = random.Random(seed)
    broadcaster = Broadcaster(0)
    listeners = [
        Listener(None, None, 1_000_000),
        Listener(None, frozenset({"x"}), 1_000_000),
        Listener(None, None, 1_000_000, check=lambda e: e.order_id % 3 == 0),
        Listener("a", None, 1_000_000),
    ]
    for listener in listeners:
        broadcaster.register(listener)
    first = 1
    for _ in range(30):
        count = rng.randint(1, 20)
        broadcaster.publish(events(rng, first, count))
        first += count
        for listener in listeners:
            assert listener.queued_bytes == sum(len(e.data) for e in listener.queue)
            if rng.random() < 0.3:  # a reader takes some (as a subscription does)
                listener.queue.clear()
                listener.queued_bytes = 0


def test_a_listener_past_its_bytes_is_dropped_and_told() -> None:
    broadcaster = Broadcaster(0)
    listener = Listener(None, None, 1_000, limit_bytes=1_000)
    broadcaster.register(listener)
    rng = random.Random(1)
    batch = [RecordedEvent(n, "a", n, f"id-{n}", "x", 0, b"d" * 400) for n in range(1, 3)]
    broadcaster.publish(batch)
    assert listener.queued_bytes == 800 and not listener.overflowed
    broadcaster.publish([*events(rng, 3, 1), RecordedEvent(4, "a", 4, "id-4", "x", 0, b"d" * 400)])
    assert listener.overflowed
    assert broadcaster.stats() == (0, 0)
