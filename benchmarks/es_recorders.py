"""The `eventsourcing` library's application recorder on Photon against the library's own modules.

``python -m benchmarks.es_recorders [--events 100000] [--repeat 3]``

One run, side by side, interleaved: the library's recorder API (``insert_events`` of one new
aggregate's events at a time, then ``select_notifications`` in pages over all of them) through

- ``photon.eventsourcing`` embedded on SQLite, against ``eventsourcing.sqlite`` (both WAL,
  ``synchronous=FULL``: every insert durable on its own);
- ``photon.eventsourcing`` embedded on PostgreSQL, against ``eventsourcing.postgres``, each on a
  fresh database of the same real server (tests/servers.py starts it);
- ``photon.eventsourcing`` remote, against a real ``photon`` server process on SQLite
  (``synchronous=FULL``) over HTTP, compared with ``eventsourcing.sqlite`` in this process.

Each recorder is built the way an application builds it: its factory from the environment.
Targets: embedded at least 1x the library's module on the same database; remote at least 0.3x.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from .summary import Row, median, table

EVENTS_PER_INSERT = 10
"""One aggregate's new events per insert, as an application's save of one aggregate gives them."""
PAGE = 1000
"""Notifications per select, as a follower or a projection pulls them."""
TOPIC = "bank_accounts.domain:BankAccount.TransactionAppended"


def make_inserts(count: int) -> list[list[StoredEvent]]:
    """`count` events as inserts of EVENTS_PER_INSERT events of a new aggregate each (JSON state)."""
    inserts = []
    for _ in range(count // EVENTS_PER_INSERT):
        originator = uuid.uuid4()
        inserts.append(
            [
                StoredEvent(
                    originator,
                    version,
                    TOPIC,
                    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-29T12:00:00+00:00"},'
                    b'"amount":{"_type_":"decimal_str","_data_":"%d.00"}}' % version,
                )
                for version in range(1, EVENTS_PER_INSERT + 1)
            ]
        )
    return inserts


def factory(env: dict[str, str]) -> InfrastructureFactory[Any]:
    return InfrastructureFactory.construct(Environment("Bench", env))


def timed_inserts(recorder: ApplicationRecorder, inserts: list[list[StoredEvent]]) -> float:
    start = time.perf_counter()
    for events in inserts:
        recorder.insert_events(events)
    return sum(map(len, inserts)) / (time.perf_counter() - start)


def timed_selects(recorder: ApplicationRecorder, expected: int) -> float:
    start = time.perf_counter()
    count, position = 0, None
    while True:
        page = recorder.select_notifications(position, PAGE, inclusive_of_start=False)
        count += len(page)
        if len(page) < PAGE:
            break
        position = page[-1].id
    elapsed = time.perf_counter() - start
    if count != expected:
        raise RuntimeError(f"selected {count} notifications, expected {expected}")
    return count / elapsed


@contextlib.contextmanager
def postgres() -> Iterator[Callable[[], tuple[str, dict[str, str]]]]:
    """A fresh database on the real test server for each call: its URL, and the library's settings for it."""
    import psycopg

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.servers import PostgresServer

    with PostgresServer() as server:

        def fresh() -> tuple[str, dict[str, str]]:
            name = f"bench_es_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            url = server.dsn.rsplit("/", 1)[0] + "/" + name
            library = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": name,
                "POSTGRES_HOST": server.host,
                "POSTGRES_PORT": str(server.port),
                "POSTGRES_USER": server.superuser,
                "POSTGRES_PASSWORD": "",
            }
            return url, library

        yield fresh


@contextlib.contextmanager
def photon_server(folder: Path) -> Iterator[str]:
    """A real `photon` server process on SQLite (synchronous=FULL); its URL."""
    photon = shutil.which("photon", path=str(Path(sys.executable).parent)) or "photon"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    args = ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-projections.port", "0"]
    args += ["-parallel.projections", "1", "-sqlite.path", str(folder / "photon.db"), "-sqlite.synchronous", "FULL"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen([photon, *args], cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                text = log_path.read_text(errors="replace")
                match = re.search(r"HTTP API listening on (\S+)", text)
                if "photon ready" in text and match:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"photon did not start:\n{text}")
                time.sleep(0.05)
            yield match.group(1)
        finally:
            process.terminate()
            process.wait(30)


MODES = ("sqlite", "postgres", "remote")
"""Photon's modes, each beside its peer: embedded SQLite and remote beside `eventsourcing.sqlite`,
embedded PostgreSQL beside `eventsourcing.postgres`."""


def run(events: int, repeat: int, modes: tuple[str, ...] = MODES) -> list[Row]:
    inserts = make_inserts(events)
    total = sum(map(len, inserts))
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        fresh_postgres = stack.enter_context(postgres()) if "postgres" in modes else None

        def measure(name: str, env: dict[str, str]) -> None:
            made = factory(env)
            try:
                recorder = made.application_recorder()
                runs.setdefault(f"{name} insert", []).append(timed_inserts(recorder, inserts))
                runs.setdefault(f"{name} select", []).append(timed_selects(recorder, total))
            finally:
                made.close()

        for attempt in range(repeat):
            # Interleaved, so that the machine's noise falls on every contender alike.
            base = folder / str(attempt)
            base.mkdir()
            if "sqlite" in modes:
                measure(
                    "photon sqlite",
                    {
                        "PERSISTENCE_MODULE": "photon.eventsourcing",
                        "PHOTON_DB_BACKEND": "sqlite",
                        "PHOTON_SQLITE_PATH": str(base / "photon.db"),
                        "PHOTON_SQLITE_SYNCHRONOUS": "FULL",
                    },
                )
            if "sqlite" in modes or "remote" in modes:
                library = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(base / "es.db")}
                measure("library sqlite", library)
            if fresh_postgres is not None:
                photon_url, _ = fresh_postgres()
                measure(
                    "photon postgres",
                    {
                        "PERSISTENCE_MODULE": "photon.eventsourcing",
                        "PHOTON_DB_BACKEND": "postgres",
                        "PHOTON_POSTGRES_URL": photon_url,
                    },
                )
                _, library_env = fresh_postgres()
                measure("library postgres", library_env)
            if "remote" in modes:
                with photon_server(base / "server") as url:
                    measure("photon remote", {"PERSISTENCE_MODULE": "photon.eventsourcing", "PHOTON_URL": url})

    m = {name: median(values) for name, values in runs.items()}
    one = "1 thread, 1 insert in flight"
    rows = []
    for what in ("insert", "select"):
        client = f"{EVENTS_PER_INSERT} events per insert" if what == "insert" else f"pages of {PAGE}"
        for photon, peer, target, durability in [
            ("photon sqlite", "library sqlite", 1.0, "SQLite WAL, synchronous=FULL"),
            ("photon postgres", "library postgres", 1.0, "PostgreSQL, fsync on"),
            ("photon remote", "library sqlite", 0.3, "SQLite WAL, synchronous=FULL"),
        ]:
            if photon.removeprefix("photon ") not in modes:
                continue
            rows.append(
                Row(
                    workload=f"{what}: {photon.replace('photon ', '')}",
                    photon=m[f"{photon} {what}"],
                    peer_name=f"eventsourcing.{peer.split()[1]}",
                    peer=m[f"{peer} {what}"],
                    client=client,
                    in_flight=one,
                    durability=durability,
                    target=target,
                    runs={photon: runs[f"{photon} {what}"], peer: runs[f"{peer} {what}"]},
                )
            )
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="notifications inserted and selected per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is shown)")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="Photon's modes to measure, beside their peers (comma-separated; default: %(default)s)",
    )
    args = parser.parse_args(argv)
    modes = tuple(mode.strip() for mode in args.modes.split(",") if mode.strip())
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"--modes takes some of {', '.join(MODES)}; got {args.modes!r}")
    print(
        f"eventsourcing recorders: {args.events} notifications, {args.repeat} runs, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    rows = run(args.events, args.repeat, modes)
    print(table(rows), file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
