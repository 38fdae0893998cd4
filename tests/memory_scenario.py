"""Memory under stalled readers: a real `photon` process, large events, readers that read nothing.

Four hot-cold replays of `__all__` connect and then read nothing while `events` events of about
`size` bytes are written; then one cold replay reads everything at full speed while the four
still read nothing. The server's resident memory (its own process; the projection workers are
separate processes, reported apart) is sampled all along. Then the four drain: each must receive
exactly every event, in order, once (a `fell-behind` notice tells them they came from the store
again). Last, the memory kept once every reader has left.

Used by tests/test_memory.py and by ``python -m benchmarks.reliability --memory``.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from .live import ServerProcess

MB = 1 << 20


@dataclass
class MemoryReport:
    events: int
    size: int
    stalled: int
    peak_rss: int = 0
    """The server process's peak resident memory (VmHWM), bytes: its own memory and the pages of
    the store's file it maps (SQLite's readers map the file, `sqlite.mmap.mib`)."""
    peak_anon: int = 0
    """The highest of the server's own (anonymous) resident memory sampled every 0.2 s (RssAnon),
    bytes: what the readers' buffers hold, without the mapped file pages the system may take back."""
    rss_after_write: int = 0
    rss_after_replay: int = 0
    rss_after_readers_left: int = 0
    rss_idle_start: int = 0
    workers_peak_rss: int = 0
    fell_behind_notices: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    samples: list[int] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.events} events of {self.size // 1000} kB ({self.events * self.size / MB:.0f} MiB), "
            f"{self.stalled} stalled readers + 1 full-speed cold replay: server RSS at start "
            f"{self.rss_idle_start / MB:.0f} MiB, peak {self.peak_rss / MB:.0f} MiB (its own memory at most "
            f"{self.peak_anon / MB:.0f} MiB, the rest mapped file pages), after the writes "
            f"{self.rss_after_write / MB:.0f} MiB, after the replay {self.rss_after_replay / MB:.0f} MiB, "
            f"after every reader left {self.rss_after_readers_left / MB:.0f} MiB; projection worker peak "
            f"{self.workers_peak_rss / MB:.0f} MiB; {self.fell_behind_notices} fell-behind notices; "
            f"every reader drained exactly; {self.seconds:.0f} s ("
            + ", ".join(f"{name} done at {at:.0f} s" for name, at in self.phases.items())
            + ")"
        )


def _status(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class _StalledReader:
    """A hot-cold replay of `__all__` over a bare socket, read only when told to drain."""

    def __init__(self, url: str, token: str) -> None:
        address = urlsplit(url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=60)
        # A small receive buffer: the kernel holds little, the server must hold the rest or not.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.sendall(
            f"GET /api/replay/__all__ HTTP/1.0\r\nHost: x\r\nAuthorization: Token {token}\r\n\r\n".encode()
        )

    def drain(self, until: int) -> tuple[list[int], int]:
        """Read until the event of order-id `until` arrived; the order-ids read and fell-behind notices."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MB)
        buffer = b""
        order_ids: list[int] = []
        notices = 0
        head_done = False
        while not order_ids or order_ids[-1] < until:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError(f"the replay ended after order-id {order_ids[-1] if order_ids else 0}")
            buffer += chunk
            if not head_done:
                head, sep, rest = buffer.partition(b"\r\n\r\n")
                if not sep:
                    continue
                assert head.startswith(b"HTTP/1.1 200"), head
                head_done, buffer = True, rest
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            for line in lines:
                if line.startswith(b'{"order-id":'):
                    order_ids.append(int(line[12 : line.index(b",")]))
                elif line.startswith(b'{"fell-behind":'):
                    notices += 1
        self.sock.close()
        return order_ids, notices


def run_memory_scenario(
    *,
    events: int = 20_000,
    size: int = 60_000,
    stalled: int = 4,
    work_dir: Path | None = None,
    settings: dict[str, str] | None = None,
) -> MemoryReport:
    """Run the scenario; `settings` are extra server keys (e.g. other bounds)."""
    report = MemoryReport(events, size, stalled)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        path = Path(tmp)
        server = ServerProcess(
            path,
            ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(path / "m.db")]
            + [arg for key, value in (settings or {}).items() for arg in (f"-{key}", value)],
        )
        pid = server.proc.pid
        stop = threading.Event()
        workers_peak = [0]

        def sample() -> None:
            while not stop.is_set():
                report.samples.append(_status(pid, "VmRSS"))
                report.peak_anon = max(report.peak_anon, _status(pid, "RssAnon"))
                workers = sum(_status(child, "VmRSS") for child in _children(pid))
                workers_peak[0] = max(workers_peak[0], workers)
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        try:
            token = server.token()
            report.rss_idle_start = _status(pid, "VmRSS")
            sampler.start()
            readers = [_StalledReader(server.url, token) for _ in range(stalled)]
            blob = "x" * (size - 120)
            batch = 40
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {token}"}, timeout=120) as api:
                for start in range(0, events, batch):
                    body = [
                        {"stream-name": f"big-{n % 7}", "event-type": "Blob", "payload": {"n": n, "blob": blob}}
                        for n in range(start, min(events, start + batch))
                    ]
                    api.post("/api/event", content=orjson.dumps(body)).raise_for_status()
                report.rss_after_write = _status(pid, "VmRSS")
                report.phases["write"] = time.monotonic() - started
                # One cold replay at full speed while the others still read nothing.
                expected = 1
                with api.stream("GET", "/api/replay/__all__", params={"stream-type": "cold"}) as answer:
                    answer.raise_for_status()
                    for line in answer.iter_lines():
                        if line.startswith('{"order-id":'):
                            order_id = int(line[12 : line.index(",")])
                            assert order_id == expected, f"the cold replay sent {order_id} where {expected} was due"
                            expected += 1
                assert expected == events + 1, f"the cold replay ended after {expected - 1} of {events} events"
                report.rss_after_replay = _status(pid, "VmRSS")
                report.phases["cold replay"] = time.monotonic() - started
            for reader in readers:
                order_ids, notices = reader.drain(events)
                assert order_ids == list(range(1, events + 1)), (
                    f"a stalled reader got {len(order_ids)} events, not exactly 1..{events} in order"
                )
                report.fell_behind_notices += notices
            report.phases["drain"] = time.monotonic() - started
            time.sleep(3)  # the server gives memory back a moment after readers leave
            report.rss_after_readers_left = _status(pid, "VmRSS")
            report.peak_rss = _status(pid, "VmHWM")
        finally:
            stop.set()
            if sampler.is_alive():
                sampler.join(5)
            server.terminate()
        report.workers_peak_rss = workers_peak[0]
    report.seconds = time.monotonic() - started
    return report
