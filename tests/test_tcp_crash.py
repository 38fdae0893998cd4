"""TCP ingest survives SIGKILL: a `photon` process killed while one client streams events in batches
loses none it acknowledged, and stores each acknowledged event as sent, at the position its answer gave."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import orjson

from photon.core.store import EventStore

from .live import ServerProcess


def test_every_acknowledged_event_survives_sigkill_during_tcp_ingest(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    server = ServerProcess(
        tmp_path, ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(db)]
    )
    try:
        sock = socket.create_connection(("127.0.0.1", server.tcp_port), timeout=30)
        sock.sendall(orjson.dumps({"token": server.token()}) + b"\n")

        def block(start: int) -> bytes:
            return b"".join(
                orjson.dumps({"stream-name": f"crash-{i % 7}", "event-type": "sent", "payload": {"i": i}}) + b"\n"
                for i in range(start, start + 1000)
            )

        def send() -> None:
            try:
                for start in range(0, 400_000, 1000):  # far more than is stored before the kill
                    sock.sendall(block(start))
            except OSError:
                pass  # the server died

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = b""
        while received.count(b"\n") < 3000:  # several batches acknowledged: kill in the middle of the flow
            chunk = sock.recv(1 << 16)
            assert chunk, server.output()
            received += chunk
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
        sock.settimeout(10)
        try:
            while chunk := sock.recv(1 << 16):
                received += chunk
        except OSError:
            pass
        sock.close()
        sender.join(30)
    finally:
        server.terminate()
    acks = [orjson.loads(line) for line in received[: received.rfind(b"\n") + 1].splitlines()]
    assert len(acks) >= 3000 and all("order-id" in ack for ack in acks)
    assert [ack["order-id"] for ack in acks] == list(range(1, len(acks) + 1))
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(db)}, read_only=True) as store:
        assert store.last_order_id() >= len(acks)
        stored = list(store.read(to_order_id=len(acks)))
    assert [orjson.loads(e.data)["payload"]["i"] for e in stored] == list(range(len(acks)))
    versions: dict[str, int] = {}
    for ack, recorded in zip(acks, stored, strict=True):
        versions[recorded.stream_name] = versions.get(recorded.stream_name, 0) + 1
        assert recorded.stream_version == ack["stream-version"] == versions[recorded.stream_name]
