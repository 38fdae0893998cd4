"""Restoring a backup of the Clojure Photon (`muon replay __all__ > file`) with `photon restore`.

No such file can be fetched, so the sample is built here from the original Photon's documented
event schema (its doc/schemas.md and muon-schemas; see shared/reference PHOTON-FACTS.md and
MUON-WIRE.md): `local-id`, `server-timestamp`, `provenance`, `encoding`, a schema URL, and
order-ids `event-time*1000 + counter`, which go backwards when the counter wraps past 999.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from photon.core.events import CONFIG_STREAM
from photon.core.store import EventStore
from photon.projections.registry import REGISTERED

from .live import LiveServer, make_config
from .test_backup_cli import photon

T0 = 1_469_002_000_000  # event-time of the first event (ms)


def clojure_event(stream: str, event_type: str, ms: int, counter: int, payload: Any, **extra: Any) -> dict[str, Any]:
    event_time = T0 + ms
    return {
        "stream-name": stream,
        "event-type": event_type,
        "service-id": extra.pop("service_id", "user-service"),
        "payload": payload,
        "event-time": event_time,
        "order-id": event_time * 1000 + counter,
        **{key.replace("_", "-"): value for key, value in extra.items()},
    }


def sample() -> list[dict[str, Any]]:
    """A small Clojure Photon `__all__`, in its order."""
    clojure_template = {
        "projection-name": "user-count",
        "stream-name": "users",
        "language": "clojure",
        "reduction": "(fn [prev ev] (inc prev))",
        "initial-value": "0",
    }
    js_template = {
        "projection-name": "last-user",
        "stream-name": "users",
        "language": "javascript",
        "reduction": "function (prev, ev) { return ev.payload.name; }",
        "initial-value": '""',
    }
    gone_template = {**clojure_template, "projection-name": "scratch"}
    return [
        clojure_event(CONFIG_STREAM, "post-projection!", 0, 998, {"request": clojure_template}, service_id="photon"),
        clojure_event(CONFIG_STREAM, "post-projection!", 0, 999, {"request": js_template}, service_id="photon"),
        # The counter wraps: this order-id is smaller than the one before.
        clojure_event(
            "users",
            "UserRegistered",
            0,
            0,
            {"name": "ada"},
            local_id="9a6f1d2e-0000-4000-8000-000000000001",
            server_timestamp=T0 - 5,
            encoding="application/json",
            schema="http://schemas.example.com/user-registered-1.json",
        ),
        clojure_event(
            "emails",
            "WelcomeSent",
            3,
            1,
            {"to": "ada"},
            local_id="9a6f1d2e-0000-4000-8000-000000000002",
            provenance={
                "service-id": "user-service",
                "local-id": "9a6f1d2e-0000-4000-8000-000000000001",
                "relationship-type": "caused-by",
            },
        ),
        clojure_event("users", "UserRegistered", 4, 2, {"name": "bob"}),  # no local-id at all
        # Stored twice by the Clojure Photon (a client re-sent it): both are restored.
        clojure_event("users", "UserRenamed", 5, 3, None, local_id="9a6f1d2e-0000-4000-8000-000000000003"),
        clojure_event("users", "UserRenamed", 6, 4, None, local_id="9a6f1d2e-0000-4000-8000-000000000003"),
        clojure_event(CONFIG_STREAM, "post-projection!", 7, 5, {"request": gone_template}, service_id="photon"),
        clojure_event(CONFIG_STREAM, "delete-projection!", 8, 6, {"projection-name": "scratch"}, service_id="photon"),
    ]


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def test_a_clojure_photon_backup_restores(tmp_path: Path) -> None:
    events = sample()
    backup = write(tmp_path / "backup", events)
    db = tmp_path / "restored.db"
    result = photon("restore", str(backup), "-db.backend", "sqlite", "-sqlite.path", str(db), cwd=tmp_path)
    report = result.stderr.decode()
    assert "backup of the Clojure Photon" in report and "order-ids 1..9" in report, report
    assert "user-count, last-user, scratch" in report

    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(db)}) as store:
        restored = [e.to_dict() for e in store.read("__all__")]
        assert [e["order-id"] for e in restored] == list(range(1, 10))  # renumbered in file order
        assert [e["original-order-id"] for e in restored] == [e["order-id"] for e in events]
        assert [e["stream-version"] for e in restored if e["stream-name"] == "users"] == [1, 2, 3, 4]
        ada, welcome, bob, renamed, renamed_again = (e for e in restored if e["stream-name"] != CONFIG_STREAM)
        assert ada["id"] == ada["local-id"] == "9a6f1d2e-0000-4000-8000-000000000001"
        assert ada["event-time"] == T0 and ada["server-timestamp"] == T0 - 5  # its own event-time wins
        assert ada["schema"] == "http://schemas.example.com/user-registered-1.json"
        assert ada["encoding"] == "application/json" and ada["payload"] == {"name": "ada"}
        assert welcome["caused-by"] == ada["id"] and welcome["caused-by-relation"] == "caused-by"
        assert welcome["provenance"]["service-id"] == "user-service"
        assert bob["id"] and "local-id" not in bob
        assert renamed["payload"] == {} and renamed["id"] == renamed["local-id"]
        assert renamed_again["local-id"] == renamed["local-id"] and renamed_again["id"] != renamed["id"]
        config = [e for e in restored if e["stream-name"] == CONFIG_STREAM]
        assert config[0]["event-type"] == REGISTERED
        assert config[0]["payload"]["source"] == "(fn [prev ev] (inc prev))"

    # Listed directly on the store as a server lists them: stopped, over their own stream.
    listing = photon("projections", "list", "-db.backend", "sqlite", "-sqlite.path", str(db), cwd=tmp_path)
    assert listing.stdout.decode().splitlines() == [
        "__streams__\t__all__\tstopped\t0",
        "last-user\tusers\tstopped\t0",
        "user-count\tusers\tstopped\t0",
    ], listing.stderr

    # A server on the restored store: the Clojure projections are there, stopped, saying why.
    server = LiveServer(make_config(tmp_path, sqlite_path=str(db)))
    try:
        with server.client() as http:
            count = http.get("/api/projection/user-count").json()
            assert count["status"] == "stopped" and count["language"] == "clojure"
            assert count["reduction"] == "(fn [prev ev] (inc prev))" and count["stream-name"] == "users"
            assert "written in Clojure for the Clojure Photon" in count["last-error"]
            last = http.get("/api/projection/last-user").json()
            assert last["status"] == "stopped" and "JavaScript" in last["last-error"]
            names = http.get("/api/projection-keys").json()["projection-keys"]
            assert "scratch" not in names and {"user-count", "last-user"} <= set(names)
            # Re-sending a restored event by its local-id stores nothing new (idempotency like id).
            again = {k: v for k, v in events[2].items() if k not in ("order-id", "event-time")}
            answer = http.post("/api/event", json=again)
            assert answer.status_code == 200 and answer.json()["order-id"] == 3
            assert server.store.last_order_id() == 9
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"encoding": "text/xml"}, "encoding"),
        ({"stream-name": None}, "stream-name"),
        ({"provenance": "upstream"}, "provenance"),
    ],
)
def test_a_bad_clojure_backup_line_stops_the_restore(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    events = sample()
    events[3] = {**events[3], **bad}
    backup = write(tmp_path / "backup", events)
    db = tmp_path / "restored.db"
    result = photon("restore", str(backup), "-db.backend", "sqlite", "-sqlite.path", str(db), cwd=tmp_path, check=False)
    assert result.returncode != 0
    error = result.stderr.decode()
    assert "line 4" in error and message in error and "nothing was restored" in error, error
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(db)}) as store:
        assert store.last_order_id() == 0
