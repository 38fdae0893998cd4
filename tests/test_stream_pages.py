"""The paged stream list, categories and newest-first reads: in the core (every built-in embedded
backend) and over HTTP on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from photon.core.errors import ValidationError
from photon.core.events import category_of
from photon.core.store import EventStore


@pytest.fixture(params=["memory", "sqlite", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    options: dict[str, Any] = {"db_backend": request.param}
    if request.param == "sqlite":
        options["sqlite_path"] = str(tmp_path / "s.db")
    if request.param == "file":
        options["file_path"] = str(tmp_path / "s.jsonl")
    with EventStore.open(**options) as opened:
        yield opened


def events(stream: str, count: int, kinds: tuple[str, ...] = ("a",)) -> list[dict[str, Any]]:
    return [{"stream-name": stream, "event-type": kinds[i % len(kinds)], "payload": {"i": i}} for i in range(count)]


def test_category_is_the_name_up_to_the_first_dash() -> None:
    assert category_of("account-12-x") == "account"
    assert category_of("orders") == "orders"


def test_stream_page_filters_by_prefix_and_pages_after_a_name(store: EventStore) -> None:
    store.append([e for name in ("b-2", "a-1", "b-1", "b-10", "ba", "c") for e in events(name, 2)])
    page = store.stream_page(prefix="b-", limit=2)
    assert [(s.stream_name, s.total_events) for s in page] == [("b-1", 2), ("b-10", 2)]
    assert [s.stream_name for s in store.stream_page(prefix="b-", after="b-10", limit=2)] == ["b-2"]
    assert [s.stream_name for s in store.stream_page(after="b-2")] == ["ba", "c"]
    assert store.stream_page(prefix="zz") == []
    # Exact, case-sensitive prefixes (SQL LIKE would match "B-" too and treat "_" as a wildcard).
    store.append(events("B-1", 1) + events("b_x", 1))
    assert [s.stream_name for s in store.stream_page(prefix="b_")] == ["b_x"]
    assert [s.stream_name for s in store.stream_page(prefix="B")] == ["B-1"]
    with pytest.raises(ValidationError, match="limit"):
        store.stream_page(limit=0)


def test_a_deleted_stream_leaves_the_list(store: EventStore) -> None:
    store.append(events("x-1", 1) + events("x-2", 1))
    store.delete_stream("x-1")
    assert [s.stream_name for s in store.stream_page(prefix="x-")] == ["x-2"]


def test_categories_page_in_order_of_their_first_stream(store: EventStore) -> None:
    names = [f"account-{i}" for i in range(300)] + ["orders-1", "orders-2", "solo", "zeta-9"]
    store.append([e for name in names for e in events(name, 1)])
    found, following = store.categories(limit=2)
    assert found == ["account", "orders"] and following == "orders"
    found, following = store.categories(after=following, limit=2)
    assert found == ["solo", "zeta"] and following is None


def test_read_backward_of_a_stream_pages_newest_first(store: EventStore) -> None:
    stored = store.append(events("s", 30, ("a", "b", "c")))
    store.append(events("other", 5))
    assert [e.stream_version for e in store.read_backward("s", limit=4)] == [30, 29, 28, 27]
    assert [e.stream_version for e in store.read_backward("s", from_version=3)] == [3, 2, 1]
    assert [e.stream_version for e in store.read_backward("s", from_version=12, event_types=["b"])] == [11, 8, 5, 2]
    # From an order-id: the events at or below it.
    assert [e.order_id for e in store.read_backward("s", from_order_id=stored[9].order_id, limit=2)] == [
        stored[9].order_id,
        stored[8].order_id,
    ]
    assert len(list(store.read_backward("s"))) == 30
    assert list(store.read_backward("missing")) == []
    with pytest.raises(ValidationError, match="from-version"):
        list(store.read_backward("__all__", from_version=2))


def test_read_backward_of_all_crosses_the_holes_of_deleted_streams(store: EventStore) -> None:
    first = store.append(events("keep", 3))
    store.append(events("gone", 3000))
    last = store.append(events("keep", 2))
    store.delete_stream("gone")
    store.scavenge()
    newest = list(store.read_backward(limit=6))
    # The scavenge and the deletion are recorded in __config__ (and __metadata__).
    assert [e.event_type for e in newest[:3]] == ["scavenged", "stream-deleted", "metadata-set"]
    assert [e.order_id for e in newest[3:]] == [last[1].order_id, last[0].order_id, first[2].order_id]
    assert [e.order_id for e in store.read_backward(from_order_id=2)] == [2, 1]
    # From far past the newest event: from the newest (the windows used to walk down from there).
    for stream in ("__all__", "__category__:keep", "keep"):
        assert len(list(store.read_backward(stream, from_order_id=2**63 - 1, limit=2))) == 2


def test_read_backward_of_a_category_or_a_wildcard_is_its_forward_read_reversed(store: EventStore) -> None:
    # Categories are sparse in __all__: the windows of order-ids widen across the other streams.
    store.append([e for name in ("acc-1", "other", "acc-2", "accx-1", "acc") for e in events(name, 700, ("a", "b"))])
    for stream in ("__category__:acc", "acc-**"):
        forward = [e.order_id for e in store.read(stream)]
        assert len(forward) == (2100 if stream.startswith("__") else 1400)
        assert [e.order_id for e in store.read_backward(stream)] == forward[::-1]
        typed = [e.order_id for e in store.read(stream, event_types=["b"])]
        assert [e.order_id for e in store.read_backward(stream, event_types=["b"], limit=5)] == typed[::-1][:5]
        below = [o for o in forward if o <= 1500][::-1][:3]
        assert [e.order_id for e in store.read_backward(stream, from_order_id=1500, limit=3)] == below
        with pytest.raises(ValidationError, match="from-version"):
            list(store.read_backward(stream, from_version=2))
    assert list(store.read_backward("__category__:none")) == []


def test_http_stream_list_is_paged_and_filtered(api: httpx.Client) -> None:
    api.post("/api/event", json=[e for i in range(5) for e in events(f"acc-{i}", 1)] + events("orders-1", 1))
    everything = api.get("/api/streams").json()
    assert [s["stream-name"] for s in everything["streams"]][:2] == ["acc-0", "acc-1"]
    page = api.get("/api/streams", params={"prefix": "acc-", "limit": 2}).json()
    assert page == {
        "streams": [{"stream-name": "acc-0", "total-events": 1}, {"stream-name": "acc-1", "total-events": 1}],
        "next": "acc-1",
    }
    page = api.get("/api/streams", params={"prefix": "acc-", "limit": 2, "after": page["next"]}).json()
    assert [s["stream-name"] for s in page["streams"]] == ["acc-2", "acc-3"]
    page = api.get("/api/streams", params={"prefix": "acc-", "after": "acc-3"}).json()
    assert [s["stream-name"] for s in page["streams"]] == ["acc-4"] and page["next"] is None
    bad = api.get("/api/streams", params={"limit": "0"})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]
    assert api.get("/api/categories").json() == {"categories": ["acc", "orders"], "next": None}
    assert api.get("/api/categories", params={"limit": 1}).json() == {"categories": ["acc"], "next": "acc"}


def test_http_stream_contents_reads_newest_first(api: httpx.Client) -> None:
    api.post("/api/event", json=events("ledger", 7, ("credit", "debit")))
    page = api.get("/api/stream-contents/ledger", params={"direction": "backward", "limit": 3}).json()
    assert [e["stream-version"] for e in page["results"]] == [7, 6, 5]
    follow = api.get("/api/stream-contents/ledger", params={"direction": "backward", "from": page["next"]}).json()
    assert [e["stream-version"] for e in follow["results"]] == [4, 3, 2, 1] and follow["next"] is None
    typed = api.get(
        "/api/stream-contents/ledger",
        params={"direction": "backward", "from-version": 5, "event-types": "debit"},
    ).json()
    assert [e["stream-version"] for e in typed["results"]] == [4, 2]
    forward = api.get("/api/stream-contents/ledger", params={"event-types": "debit", "limit": 2}).json()
    assert [e["stream-version"] for e in forward["results"]] == [2, 4]
    everything = api.get("/api/stream-contents/__all__", params={"direction": "backward", "limit": 1}).json()
    assert everything["results"][0]["stream-version"] == 7
    far = {"direction": "backward", "limit": 1, "from": str(2**63 - 1)}  # the largest order-id a query takes
    assert api.get("/api/stream-contents/__all__", params=far).json()["results"] == everything["results"]
    api.post("/api/event", json=events("ledger-2", 2) + events("ledgers", 1))
    category = api.get("/api/stream-contents/__category__:ledger", params={"direction": "backward", "limit": 3})
    assert [(e["stream-name"], e["stream-version"]) for e in category.json()["results"]] == [
        ("ledger-2", 2),
        ("ledger-2", 1),
        ("ledger", 7),
    ]
    forward = api.get("/api/stream-contents/__category__:ledger", params={"from": category.json()["next"]}).json()
    assert [e["stream-version"] for e in forward["results"]] == [6, 7, 1, 2]
    # One event by order-id, through a category as through its stream.
    ledger_7 = category.json()["results"][2]["order-id"]
    assert api.get(f"/api/event/__category__:ledger/{ledger_7}").json()["stream-version"] == 7
    assert api.get(f"/api/event/ledger-**/{ledger_7 + 1}").json()["stream-name"] == "ledger-2"
    assert api.get(f"/api/event/__category__:ledgers/{ledger_7}").status_code == 404
    assert api.get(f"/api/event/ledger-2/{ledger_7}").status_code == 404
    empty = api.get("/api/stream-contents/__category__:nothing")
    assert empty.status_code == 200 and empty.json() == {"results": [], "next": None}
    assert api.get("/api/stream-contents/ledger-9").status_code == 404
    bad = api.get("/api/stream-contents/ledger", params={"direction": "sideways"})
    assert bad.status_code == 400 and "direction" in bad.json()["error"]


def test_http_event_by_id_and_server_info(api: httpx.Client) -> None:
    [stored] = api.post("/api/event", json=events("s", 1)).json()
    assert api.get(f"/api/event-id/{stored['id']}").json() == stored
    missing = api.get("/api/event-id/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    info = api.get("/api/server").json()
    assert info["last-order-id"] >= stored["order-id"] and info["events-appended"] >= 1
    assert info["settings"]["admin.pass"] == "****" and info["settings"]["admin.secret"] == "****"
    assert info["db-backend"] == "sqlite" and info["version"]
    assert httpx.get(str(api.base_url) + "/api/server").status_code == 401


def test_console_page_and_files_are_served_without_a_token(api: httpx.Client) -> None:
    base = str(api.base_url)
    page = httpx.get(base + "/")
    assert page.status_code == 200 and "/console/js/app.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(base + "/console/js/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(base + "/console/js/missing.js").status_code == 404
    for address in ("/console", "/console/"):  # what a person types: the page, not a 404
        typed = httpx.get(base + address, follow_redirects=True)
        assert typed.status_code == 200 and "/console/js/app.js" in typed.text, address


def test_http_lists_durable_consumers_with_their_positions(api: httpx.Client) -> None:
    stored = api.post("/api/event", json=events("mail", 3)).json()
    for name in ("sender", "archiver"):
        assert api.get(f"/api/subscription/{name}", params={"stream": "mail", "stream-type": "cold"}).status_code == 200
    assert api.post("/api/subscription/sender/ack", json={"order-id": stored[1]["order-id"]}).status_code == 200
    listed = api.get("/api/subscriptions").json()["subscriptions"]
    last = stored[-1]["order-id"]
    assert listed == [
        {"consumer": "archiver", "stream": "mail", "acked": 0, "behind": last},
        {"consumer": "sender", "stream": "mail", "acked": stored[1]["order-id"], "behind": 1},
    ]
    assert api.delete("/api/subscription/archiver").status_code == 200
    assert [c["consumer"] for c in api.get("/api/subscriptions").json()["subscriptions"]] == ["sender"]


def test_read_pages_hold_about_page_bytes_and_at_most_page_events(tmp_path: Path) -> None:
    # The one paging read of history: pages by bytes (large events, small pages) and by count.
    with EventStore.open(db_backend="memory", replay_page_bytes=64 * 1024) as store:
        store.append([{"stream-name": "big", "event-type": "x", "payload": {"pad": "x" * 10_000}}] * 100)
        store.append([{"stream-name": "small", "event-type": "x", "payload": {}}] * 300)
        pages = list(store.read_pages("big"))
        assert [e.stream_version for page in pages for e in page] == list(range(1, 101))
        assert all(sum(len(e.data) for e in page) <= 80 * 1024 for page in pages[1:])
        small = list(store.read_pages("small", page_events=50))
        assert max(len(page) for page in small) == 50 and sum(len(page) for page in small) == 300
        everything = [e.order_id for page in store.read_pages(from_order_id=51, to_order_id=350) for e in page]
        assert everything == list(range(51, 351)) == [e.order_id for e in store.read(from_order_id=51, to_order_id=350)]


def test_a_backup_reads_through_the_same_pages(tmp_path: Path) -> None:
    from photon.ops.backup import backup_chunks

    with EventStore.open(db_backend="memory", replay_page_bytes=64 * 1024) as store:
        store.append([{"stream-name": "big", "event-type": "x", "payload": {"pad": "x" * 10_000}}] * 100)
        chunks = list(backup_chunks(store))
        assert sum(count for _data, count in chunks) == 100
        assert all(len(data) <= 80 * 1024 for data, _count in chunks[1:])  # memory bounded by a page
        assert b"".join(data for data, _count in chunks).count(b"\n") == 100
