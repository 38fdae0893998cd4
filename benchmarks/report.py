"""The leading table of docs/benchmarks.md, from the JSON lines of one run.

    python -m benchmarks --json server_peers store_peers > run.jsonl
    python -m benchmarks.report run.jsonl

Each line of the table is one workload: Photon's median, the best peer or limit it is measured
against (or another Photon figure of the same run, for the targets stated as a share of one),
the ratio and the target.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson


def load(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def find(rows: list[dict[str, Any]], workload: str, peer: str = "") -> dict[str, Any] | None:
    for row in rows:
        if row.get("workload") == workload and peer in row.get("peer_name", ""):
            return row
    return None


def fmt(value: float, unit: str) -> str:
    return f"{value:,.1f} ms" if unit == "ms" else f"{value:,.0f} ev/s"


def verdict(ratio: float, target: float | None, higher: bool) -> str:
    if target is None:
        return "-"
    met = ratio >= target if higher else ratio <= target
    return f"{'≥' if higher else '≤'} {target:g}x: {'met' if met else '**not met**'}"


def line(name: str, photon: float, peer_name: str, peer: float, unit: str, target: float | None, higher: bool) -> str:
    ratio = photon / peer
    return (
        f"| {name} | {fmt(photon, unit)} | {peer_name} | {fmt(peer, unit)} | {ratio:.2f}x "
        f"| {verdict(ratio, target, higher)} |"
    )


def table(rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []

    def compare(name: str, workload: str, peer: str, label: str | None = None) -> None:
        row = find(rows, workload, peer)
        if row is not None:
            out.append(
                line(name, row["photon"], label or row["peer_name"], row["peer"], row["unit"], row["target"],
                     row["higher"])
            )  # fmt: skip

    def share(name: str, ours: tuple[str, str], base: tuple[str, str], label: str, target: float) -> None:
        a, b = find(rows, *ours), find(rows, *base)
        if a is not None and b is not None:
            out.append(line(name, a["photon"], label, b["photon"], "ev/s", target, True))

    batched = ("sqlite: batched appends, 1000 per append", "raw sqlite3")
    compare("in-process batched appends (1000/append), SQLite", *batched, "raw `sqlite3`, same rows and durability")
    share("TCP ingest, 1 connection", ("pipelined writes, 1 client", "per write"), batched,
          "in-process batched appends (Photon)", 0.8)  # fmt: skip
    share("64 threads appending single events", ("sqlite: 64 threads, single events", "eventsourcing"), batched,
          "in-process batched appends (Photon)", 0.3)  # fmt: skip
    compare("HTTP single-event emits, 32 clients", "single-event HTTP emits, 32 clients", "bare route",
            "bare route, same uvicorn and HTTP harness")  # fmt: skip
    for sync, label in (("per write", "per-write sync"), ("every 2 min", "default sync")):
        compare(f"acked single-event writes, 32 clients (JetStream {label})", "acked single-event writes, 32 clients",
                sync, f"NATS JetStream, {label}, 32 nats-py publishers")  # fmt: skip
        compare(f"acked single-event writes, 1 client (JetStream {label})", "acked single-event writes, 1 client",
                sync, f"NATS JetStream, {label}, 1 publisher")  # fmt: skip
        compare(f"pipelined writes, 1 client (JetStream {label})", "pipelined writes, 1 client", sync,
                f"JetStream {label}, publish_async")  # fmt: skip
        compare(f"consumer reading the whole stream (JetStream {label})", "consumer reading the whole stream", sync,
                f"JetStream {label}, pull consumer")  # fmt: skip
        compare(f"publish-to-subscriber latency p99 at 1,000/s (JetStream {label})",
                "publish-to-consumer latency p99 at 1000/s", sync, f"JetStream {label}, push consumer")  # fmt: skip
    for backend, peers in (
        ("sqlite", ("eventsourcing",)),
        ("postgres", ("eventsourcing", "Message DB")),
    ):
        for peer in peers:
            for workload in ("batched appends, 1000 per append", "64 threads, single events", "reading whole streams"):
                compare(f"{backend}: {workload}", f"{backend}: {workload}", peer)
    for workload in ("batched appends, 1000 per append", "64 threads, single events", "reading __all__"):
        compare(f"redis: {workload}", f"redis: {workload}", "XADD")
    for workload in ("batched appends, 1000 per append", "64 threads, single events"):
        compare(f"cassandra: {workload}", f"cassandra 2.1: {workload}", "cassandra-driver")
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m benchmarks.report RUN.jsonl")
    rows = load(args[0])
    loads = [row["load"] for row in rows if "load" in row]
    print("| workload | Photon | best peer or limit | peer | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    print("\n".join(table(rows)))
    if loads:
        print(f"\nload average while measured: {min(loads):.1f} to {max(loads):.1f}")


if __name__ == "__main__":
    main()
