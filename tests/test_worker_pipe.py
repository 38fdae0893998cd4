"""The manager's end of a worker's pipe (photon.projections.worker_pipe) against a real
`multiprocessing` connection at the other end, as a worker holds it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from typing import Any

import pytest

from photon.projections.worker_pipe import READ_SIZE, WorkerPipe, frame


def _echo(conn: Any) -> None:
    """The worker's side: send back every message until None, then close."""
    while True:
        message = conn.recv()
        if message is None:
            break
        conn.send(message)
    conn.close()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_messages_of_every_size_cross_both_ways_in_order(loop_kind: str) -> None:
    # Big messages fill the socket: the rest is written when it becomes writable, and the
    # replies arrive in pieces that are put together again; small ones share a read.
    sizes = [0, 1, 100, 70_000, 5_000_000, 3, 300_000, 10, 2_000_000, *range(50)]
    messages: list[Any] = [("m", i, b"x" * size) for i, size in enumerate(sizes)]

    async def scenario() -> tuple[list[Any], bool]:
        loop = asyncio.get_running_loop()
        here, there = multiprocessing.Pipe(duplex=True)
        peer = threading.Thread(target=_echo, args=(there,), daemon=True)
        peer.start()
        received: list[Any] = []
        closed = asyncio.Event()
        pipe = WorkerPipe(here, loop, received.append, closed.set)
        for message in messages[:5]:
            pipe.send(message)
        # From another thread too: handed to the loop, in order after those sent before.
        await asyncio.to_thread(lambda: [pipe.send(m) for m in messages[5:]])
        drained = await asyncio.to_thread(pipe.flush, 10.0)
        pipe.send(None)
        await asyncio.wait_for(closed.wait(), 10)
        peer.join(5)
        return received, drained

    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        received, drained = uvloop.run(scenario())
    else:
        received, drained = asyncio.run(scenario())
    assert drained
    assert received == messages


def test_a_message_past_the_socket_is_written_by_flush_in_the_loop_thread() -> None:
    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        here, there = multiprocessing.Pipe(duplex=True)
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.append(there.recv()), daemon=True)
        reader.start()
        pipe = WorkerPipe(here, loop, lambda message: None, lambda: None)
        pipe.send(b"y" * 8_000_000)
        assert pipe.flush(10.0)  # the loop cannot run meanwhile: written here
        reader.join(10)
        pipe.close()
        there.close()
        return got

    assert asyncio.run(scenario()) == [b"y" * 8_000_000]


def test_the_other_end_closing_is_reported_once_and_sends_after_it_are_dropped() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        here, there = multiprocessing.Pipe(duplex=True)
        ends: list[None] = []
        closed = asyncio.Event()

        def on_closed() -> None:
            ends.append(None)
            closed.set()

        pipe = WorkerPipe(here, loop, lambda message: None, on_closed)
        there.close()
        await asyncio.wait_for(closed.wait(), 5)
        pipe.send("after")  # nothing to write to: dropped, no error
        assert pipe.flush(1.0)
        pipe.close()
        await asyncio.sleep(0.05)
        return len(ends)

    assert asyncio.run(scenario()) == 1


def test_a_large_message_and_the_small_ones_after_it_in_one_write_arrive_whole_and_in_order() -> None:
    # A large message is read into a buffer of its own size: the reads stop at its end, and the
    # messages written right behind it on the same write are read as usual.
    messages: list[Any] = [b"y" * (3 * READ_SIZE + 17), ("small", 1), b"z" * (READ_SIZE + 1), ("small", 2)]

    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        here, there = multiprocessing.Pipe(duplex=True)
        received: list[Any] = []
        closed = asyncio.Event()
        WorkerPipe(here, loop, received.append, closed.set)
        wire = b"".join(frame(m) for m in messages)
        await asyncio.to_thread(_write_all, there, wire)
        there.close()
        await asyncio.wait_for(closed.wait(), 10)
        return received

    assert asyncio.run(scenario()) == messages


def test_the_other_end_closing_in_the_middle_of_a_large_message_ends_the_pipe_without_it() -> None:
    async def scenario() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        here, there = multiprocessing.Pipe(duplex=True)
        received: list[Any] = []
        ends: list[bool] = []
        closed = asyncio.Event()

        def on_closed() -> None:
            ends.append(True)
            closed.set()

        WorkerPipe(here, loop, received.append, on_closed)
        cut = frame(b"q" * (2 * READ_SIZE))[: READ_SIZE + 100]
        await asyncio.to_thread(_write_all, there, frame("before") + cut)
        there.close()
        await asyncio.wait_for(closed.wait(), 10)
        await asyncio.sleep(0.05)
        return received, len(ends)

    assert asyncio.run(scenario()) == (["before"], 1)


def _write_all(conn: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(conn.fileno(), view) :]
