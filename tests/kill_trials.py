"""The database server killed mid-commit, again and again, under a serving Photon.

A Photon server (HTTP, projections) runs on a remote backend. Writers post batches over HTTP
without pause; two live hot-cold subscribers (NDJSON and server-sent events) and the built-in
`__streams__` projection follow `__all__`. The database server is SIGKILLed while commits are in
flight and started again on the same data, `kills` times. A random kill only now and then hits
the narrow window where the server has stored a commit but its reply is not back yet, so every
other kill is aimed there: once the server has stored a commit, it is killed before its reply
reaches the writer (which sees the same connection error as when the reply is lost). Afterwards:

- no append got a 5xx other than 503 (a 500 means the writer lost track of what is stored);
- every acknowledged event is stored;
- each subscriber received exactly what a cold read of `__all__` holds, in order, no more, no less;
- the `__streams__` projection counts exactly the events a cold read holds, per stream;
- commits that failed but were stored after all are counted (``stored_after_error``).

Used by the backend fault tests (a few kills each) and by ``python -m benchmarks.reliability``
(many kills, figures for docs/reliability.md).
"""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from photon.core.errors import BackendUnavailable

from .live import LiveServer, make_config


@dataclass
class KillReport:
    backend: str
    kills: int = 0
    acknowledged: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    aimed: int = 0
    """Kills aimed just after the server stored a commit (the reply then never arrives)."""
    stored_after_error: int = 0
    """Commits whose callers saw an error (or waited) but which the store held: published late."""
    events: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        return (
            f"{self.backend}: {self.kills} kills ({self.aimed} right after a commit was stored) in "
            f"{self.seconds:.0f} s, {self.acknowledged} events acknowledged, "
            f"{self.events} stored, {self.stored_after_error} commits found stored after an error; "
            f"answers {{{codes}}}; subscribers and projection equal to a cold read"
        )


class _StoredAfterError(logging.Handler):
    """Counts the writer's notes that an unknown commit turned out stored."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "was stored" in message:
            self.count += 1


class _Follower(threading.Thread):
    """A hot-cold replay of `__all__` over HTTP, NDJSON or SSE, keeping (order-id, id) of each event."""

    def __init__(self, url: str, token: str, sse: bool) -> None:
        super().__init__(daemon=True, name="follower-sse" if sse else "follower-ndjson")
        self.url = url
        self.token = token
        self.sse = sse
        self.received: list[tuple[int, str]] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Token {self.token}"}
        if self.sse:
            headers["Accept"] = "text/event-stream"
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
                client.stream("GET", self.url + "/api/replay/__all__", headers=headers) as response,
            ):
                response.raise_for_status()
                for line in response.iter_lines():
                    if self.stop.is_set():
                        return
                    if self.sse:
                        if not line.startswith("data: {") or "caught-up" in line[:20]:
                            continue
                        line = line[6:]
                    if not line.startswith("{") or line.startswith('{"caught-up"'):
                        continue
                    doc = orjson.loads(line)
                    self.received.append((doc["order-id"], doc["id"]))
        except BaseException as exc:  # reported by the checks
            if not self.stop.is_set():
                self.error = exc


def run_kill_trials(
    server: Any,
    store_settings: dict[str, str],
    *,
    kills: int,
    writers: int = 4,
    acks_between: int = 30,
    seed: int = 13,
    work_dir: Path | None = None,
    deadline: float = 120.0,
) -> KillReport:
    """Kill `server` (a tests.servers.Server) `kills` times under load; check the outcome (AssertionError)."""
    rng = random.Random(seed)
    report = KillReport(str(store_settings["db.backend"]))
    counter = _StoredAfterError()
    logging.getLogger("photon.store").addHandler(counter)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        live = LiveServer(make_config(Path(tmp), **store_settings))
        started = time.monotonic()
        aim = threading.Event()
        fired = threading.Event()
        backend = live.store.backend
        append = backend.append

        def append_then_kill(events: Any) -> None:
            append(events)
            if aim.is_set():
                aim.clear()
                server.kill()
                fired.set()
                raise BackendUnavailable("the server was killed after it stored this commit, before its reply")

        backend.append = append_then_kill  # type: ignore[method-assign]
        try:
            token = live.token()
            followers = [_Follower(live.url, token, sse) for sse in (False, True)]
            for follower in followers:
                follower.start()
            acked: set[str] = set()
            lock = threading.Lock()
            stop = threading.Event()
            problems: list[str] = []

            def writer(index: int) -> None:
                local = random.Random(seed * 100 + index)
                with httpx.Client(base_url=live.url, headers={"Authorization": f"Token {token}"}, timeout=60) as client:
                    while not stop.is_set():
                        batch = [
                            {
                                "stream-name": f"kill-{local.randrange(8)}",
                                "event-type": "Tick",
                                "id": str(uuid.uuid4()),
                                "payload": {"writer": index},
                            }
                            for _ in range(local.randint(1, 8))
                        ]
                        try:
                            response = client.post("/api/event", content=orjson.dumps(batch))
                        except httpx.HTTPError as exc:
                            problems.append(f"writer {index}: {exc!r}")
                            return
                        with lock:
                            report.statuses[response.status_code] += 1
                            if response.status_code == 200:
                                acked.update(e["id"] for e in batch)
                            elif response.status_code != 503:
                                problems.append(f"{response.status_code}: {response.text[:300]}")
                        if response.status_code == 503:
                            time.sleep(0.02)

            threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
            for thread in threads:
                thread.start()
            try:
                for trial in range(kills):
                    with lock:
                        target = len(acked) + acks_between * 4
                    _wait(lambda t=target: len(acked) >= t or bool(problems), deadline, "appends between kills")
                    assert not problems, problems[:5]
                    if trial % 2:
                        fired.clear()
                        aim.set()
                        _wait(fired.is_set, deadline, "a commit to aim the kill at")
                        report.aimed += 1
                    else:
                        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside a commit
                        server.kill()
                    report.kills += 1
                    time.sleep(rng.uniform(0.05, 0.3))
                    server.start()
                with lock:
                    target = len(acked) + acks_between * 4
                _wait(lambda: len(acked) >= target or bool(problems), deadline, "appends after the last restart")
            finally:
                stop.set()
                for thread in threads:
                    thread.join(60)
            assert not problems, f"{len(problems)} bad answers, e.g. {problems[:5]}"
            report.acknowledged = len(acked)

            cold = [(e.order_id, e.event_id) for e in live.store.read()]
            report.events = len(cold)
            stored_ids = {event_id for _, event_id in cold}
            lost = acked - stored_ids
            assert not lost, f"{len(lost)} acknowledged events are not stored"
            last = cold[-1][0] if cold else 0
            for follower in followers:
                _wait(
                    lambda f=follower: (bool(f.received) and f.received[-1][0] >= last) or f.error is not None,
                    deadline,
                    f"{follower.name} to reach order-id {last}",
                )
                assert follower.error is None, f"{follower.name} failed: {follower.error!r}"
                if follower.received != cold:
                    missing = sorted(set(cold) - set(follower.received))
                    extra = sorted(set(follower.received) - set(cold))
                    raise AssertionError(
                        f"{follower.name} differs from a cold read: {len(missing)} missing (e.g. {missing[:3]}), "
                        f"{len(extra)} extra (e.g. {extra[:3]}), {len(follower.received)} vs {len(cold)}"
                    )
            per_stream = Counter(stream for stream in (e.stream_name for e in live.store.read()))
            with live.client() as client:

                def projection() -> dict[str, Any]:
                    doc: dict[str, Any] = client.get("/api/projection/__streams__").raise_for_status().json()
                    return doc

                _wait(lambda: (projection().get("last-event") or 0) >= last, deadline, "__streams__ to catch up")
                value = projection()["current-value"]
            counted = {name: entry["total-events"] for name, entry in value.items() if not name.startswith("__")}
            wanted = {name: n for name, n in per_stream.items() if not name.startswith("__")}
            assert counted == wanted, f"__streams__ {counted} differs from a cold read {wanted}"
        finally:
            for follower in locals().get("followers", []):
                follower.stop.set()
            live.stop()
            logging.getLogger("photon.store").removeHandler(counter)
            report.seconds = time.monotonic() - started
    report.stored_after_error = counter.count
    return report


def _wait(condition: Any, seconds: float, what: str) -> None:
    until = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
