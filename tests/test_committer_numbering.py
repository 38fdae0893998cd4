"""The writer's numbering of a group (`photon.core.committer.Committer._commit`): order-ids, stream
versions, the stored JSON and each caller's answer, on random groups of appends (one append of
one stream, several streams, single events, expected versions, several appends of one stream in
one group), against a plain model of the rules, one event at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import orjson
import pytest

from backends.memory import MemoryBackend
from photon.core.append_waits import AppendRequest
from photon.core.backend import Query
from photon.core.broadcaster import Broadcaster
from photon.core.committer import Committer
from photon.core.errors import VersionConflict
from photon.core.events import PendingEvent, RecordedEvent, Tagless


@pytest.fixture
def writer() -> Iterator[Committer]:
    """A writer whose thread is not started: the test calls `_commit` itself."""
    backend = MemoryBackend({})
    backend.open(writer=True)
    yield Committer(backend, Broadcaster(0), 0, max_batch=10_000)
    backend.close()


def random_append(rng: random.Random, serial: list[int], versions: dict[str, int]) -> AppendRequest:
    """One append: its events, expected version and checks drawn at random (what the model
    below answers)."""
    streams = [f"s{n}" for n in range(4)]
    shape = rng.choice(["one stream", "one event", "several streams"])
    if shape == "several streams":
        names = [rng.choice(streams) for _ in range(rng.randint(2, 6))]
    else:
        names = [rng.choice(streams)] * (1 if shape == "one event" else rng.randint(2, 12))
    events = []
    for name in names:
        serial[0] += 1
        body = b'"stream-name":"%b","n":%d}' % (name.encode(), serial[0])
        events.append(PendingEvent(name, f"id-{serial[0]}", "t", 1, body, False))
    expected: int | str = "any"
    checks: dict[str, int | str] | None = None
    if len(set(names)) == 1 and rng.random() < 0.5:
        current = versions.get(names[0], 0)
        # Right most of the time, sometimes wrong (a conflict), sometimes "no-stream".
        choices: list[int | str] = [current, current, current + 1, "no-stream"]
        expected = rng.choice(choices)
    elif rng.random() < 0.3:
        checked = rng.choice(streams)
        wants: list[int | str] = [versions.get(checked, 0), versions.get(checked, 0) + 1, "any"]
        checks = {checked: rng.choice(wants)}
    held = Tagless(events) if rng.random() < 0.5 else list(events)
    return AppendRequest(held, expected, lambda: None, checks)


def model(group: list[AppendRequest], versions: dict[str, int], last: int) -> tuple[list[object], int]:
    """Each append's answer by the rules, event by event: refused with a version conflict, or its
    records numbered on from `last` and from each stream's version (earlier appends of the group
    included). Updates `versions`; returns the answers and the last order-id."""
    answers: list[object] = []
    for request in group:
        tentative = dict(versions)
        stream = request.events[0].stream_name
        refused = None
        if request.expected != "any":
            current = tentative.get(stream, 0)
            wanted = 0 if request.expected == "no-stream" else request.expected
            if current != wanted:
                refused = ("conflict", stream, request.expected, current)
        for name, want in (request.checks or {}).items():
            current = tentative.get(name, 0)
            if refused is None and want != "any" and current != (0 if want == "no-stream" else want):
                refused = ("conflict", name, want, current)
        if refused is not None:
            answers.append(refused)
            continue
        records = []
        for event in request.events:
            last += 1
            version = versions.get(event.stream_name, 0) + 1
            versions[event.stream_name] = version
            data = b'{"order-id":%d,"stream-version":%d,%b' % (last, version, event.body)
            records.append((last, event.stream_name, version, event.event_id, data))
        answers.append(records)
    return answers, last


def answer(request: AppendRequest) -> object:
    if request.error is not None:
        error = request.error
        assert isinstance(error, VersionConflict), error
        return ("conflict", error.stream, error.expected, error.current)
    return [(r.order_id, r.stream_name, r.stream_version, r.event_id, r.data) for r in request.result]


@pytest.mark.parametrize("seed", range(12))
def test_random_groups_are_numbered_as_the_rules_say(writer: Committer, seed: int) -> None:
    rng = random.Random(seed)
    serial = [0]
    versions: dict[str, int] = {}
    last = 0
    for _ in range(40):
        # Groups of one append (each its own commit) and of several (one commit together).
        group = [random_append(rng, serial, versions) for _ in range(rng.choice([1, 1, 2, 5]))]
        expected, last = model(group, versions, last)
        writer._commit(group)
        assert [answer(request) for request in group] == expected
        assert all(request.finished for request in group)
        assert writer.last_order_id == last
    # What the backend holds is what the callers were answered, in order, gapless.
    stored = writer.backend.read(Query(limit=100_000))
    assert [e.order_id for e in stored] == list(range(1, last + 1))
    for event in stored:
        assert orjson.loads(event.data)["stream-version"] == event.stream_version
    assert writer.versions == {name: v for name, v in versions.items() if v}


def test_a_group_of_one_append_hands_the_backend_tagless_records_only_when_it_came_so(writer: Committer) -> None:
    handed: list[Sequence[RecordedEvent]] = []
    original = writer.backend.append

    def append(records: Sequence[RecordedEvent]) -> None:
        handed.append(records)
        original(records)

    writer.backend.append = append  # type: ignore[method-assign,assignment]
    events = [PendingEvent("a", f"id-{n}", "t", 1, b"}", False) for n in range(3)]
    writer._commit([AppendRequest(Tagless(events[:2]), "no-stream", lambda: None)])
    writer._commit([AppendRequest(events[2:], 2, lambda: None)])
    assert [type(records) for records in handed] == [Tagless, list]
    assert [[r.stream_version for r in records] for records in handed] == [[1, 2], [3]]
