"""The core /api routes over a real socket: shapes as Photon's, plus expected-version and paging."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from .live import LiveServer, event


def test_ping_needs_no_token(live: LiveServer) -> None:
    answer = httpx.get(live.url + "/api/ping")
    assert answer.status_code == 200
    assert answer.json() == {"auth": "ok"}


def test_post_one_event_returns_the_stored_event(api: httpx.Client) -> None:
    answer = api.post("/api/event", json=event(total=5))
    assert answer.status_code == 200
    stored = answer.json()
    assert stored["order-id"] == 1 and stored["stream-version"] == 1
    assert stored["stream-name"] == "orders" and stored["payload"] == {"total": 5}
    assert isinstance(stored["id"], str) and isinstance(stored["event-time"], int)


def test_post_a_list_stores_atomically_in_order(api: httpx.Client) -> None:
    answer = api.post("/api/event", json=[event(n=1), event(n=2), event("other", n=3)])
    assert answer.status_code == 200
    stored = answer.json()
    assert [e["order-id"] for e in stored] == [1, 2, 3]
    assert [e["stream-version"] for e in stored] == [1, 2, 1]


def test_expected_version_in_body_wrapper_and_query(api: httpx.Client) -> None:
    first = api.post("/api/event", json={"events": [event()], "expected-version": "no-stream"})
    assert first.status_code == 200 and first.json()[0]["stream-version"] == 1
    second = api.post("/api/event", params={"expected-version": "1"}, json=event())
    assert second.status_code == 200 and second.json()["stream-version"] == 2
    wrapped_single = api.post("/api/event", json={"events": event(), "expected-version": 2})
    assert wrapped_single.status_code == 200 and wrapped_single.json()["stream-version"] == 3


def test_version_conflict_is_409_with_current_version(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event(), event()])
    answer = api.post("/api/event", json={"events": [event()], "expected-version": 1})
    assert answer.status_code == 409
    body = answer.json()
    assert body["current-version"] == 2 and body["expected-version"] == 1 and body["stream-name"] == "orders"
    assert "version conflict" in body["error"]
    assert live.store.backend.last_order_id() == 2


def test_idempotent_append_by_id(api: httpx.Client) -> None:
    sent = {**event(), "id": "a-fixed-id"}
    first = api.post("/api/event", json=sent).json()
    again = api.post("/api/event", json=sent).json()
    assert first == again
    assert api.get("/api/streams").json() == {"streams": [{"stream-name": "orders", "total-events": 1}]}


def test_streams_lists_counts(api: httpx.Client) -> None:
    api.post("/api/event", json=[event("a"), event("a"), event("b")])
    streams = api.get("/api/streams").json()["streams"]
    assert {"stream-name": "a", "total-events": 2} in streams
    assert {"stream-name": "b", "total-events": 1} in streams


def test_stream_contents_pages(api: httpx.Client) -> None:
    api.post("/api/event", json=[event("s", n=i) for i in range(7)] + [event("t")])
    page = api.get("/api/stream-contents/s", params={"limit": 3}).json()
    assert [e["payload"]["n"] for e in page["results"]] == [0, 1, 2]
    assert page["next"] == 4
    rest: list[Any] = []
    following = page["next"]
    while following is not None:
        page = api.get("/api/stream-contents/s", params={"limit": 3, "from": following}).json()
        rest.extend(page["results"])
        following = page["next"]
    assert [e["payload"]["n"] for e in rest] == [3, 4, 5, 6]
    by_version = api.get("/api/stream-contents/s", params={"from-version": 6}).json()["results"]
    assert [e["stream-version"] for e in by_version] == [6, 7]
    default = api.get("/api/stream-contents/__all__").json()
    assert len(default["results"]) == 8 and default["next"] is None


def test_stream_contents_of_a_missing_stream_is_404(api: httpx.Client) -> None:
    answer = api.get("/api/stream-contents/nothing-here")
    assert answer.status_code == 404
    assert "nothing-here" in answer.json()["error"]


def test_event_by_order_id(api: httpx.Client) -> None:
    api.post("/api/event", json=[event("a", n=1), event("b", n=2)])
    assert api.get("/api/event/b/2").json()["payload"] == {"n": 2}
    assert api.get("/api/event/__all__/1").json()["payload"] == {"n": 1}
    wrong_stream = api.get("/api/event/a/2")
    assert wrong_stream.status_code == 404 and "order-id 2" in wrong_stream.json()["error"]
    assert api.get("/api/event/a/99").status_code == 404
    bad = api.get("/api/event/a/x1")
    assert bad.status_code == 400 and "order-id" in bad.json()["error"]


def test_delete_stream_is_recorded_in_config(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event("gone"), event("gone"), event("kept")])
    answer = api.delete("/api/stream/gone")
    assert answer.status_code == 200
    assert answer.json() == {"correct": True, "deleted-events": 2}
    names = [s["stream-name"] for s in api.get("/api/streams").json()["streams"]]
    assert "gone" not in names and "kept" in names
    config_events = [e.to_dict() for e in live.store.read("__config__")]
    assert config_events[-1]["event-type"] == "stream-deleted"
    assert config_events[-1]["payload"] == {"stream-name": "gone", "deleted-events": 2, "mode": "soft"}
    assert api.delete("/api/stream/gone").status_code == 404
    assert api.get("/api/stream-contents/gone").status_code == 404
    internal = api.delete("/api/stream/__config__")
    assert internal.status_code == 400 and "internal" in internal.json()["error"]
    # Soft: writing again continues the numbering.
    again = api.post("/api/event", json=event("gone"))
    assert again.json()["stream-version"] == 3
    hard = api.delete("/api/stream/gone", params={"hard": "true"})
    assert hard.status_code == 200 and hard.json() == {"correct": True, "deleted-events": 3}
    refused = api.post("/api/event", json=event("gone"))
    assert refused.status_code == 410 and "can never be written again" in refused.json()["error"]
    assert api.delete("/api/stream/gone").status_code == 410
    assert api.delete("/api/stream/kept", params={"hard": "maybe"}).status_code == 400


def test_responses_are_the_stored_bytes(live: LiveServer, api: httpx.Client) -> None:
    stored = api.post("/api/event", json=event(x=[1, 2])).content
    assert stored == live.store.get_by_order_id(1).data  # type: ignore[union-attr]
    assert orjson.loads(stored)["payload"] == {"x": [1, 2]}


def test_stream_metadata_scavenge_and_redaction_routes(live: LiveServer, api: httpx.Client) -> None:
    api.post("/api/event", json=[event("m", n=i) for i in range(5)])
    assert api.get("/api/stream-metadata/m").json() == {"stream-name": "m", "metadata": {}}
    put = api.put("/api/stream-metadata/m", json={"max-count": 2, "owner": "ops"})
    assert put.status_code == 200 and put.json()["metadata"] == {"owner": "ops", "max-count": 2}
    assert api.get("/api/stream-metadata/m").json()["metadata"]["max-count"] == 2
    page = api.get("/api/stream-contents/m").json()["results"]
    assert [e["stream-version"] for e in page] == [4, 5]
    # what GET answered, written back with a change: the metadata, not a user key named "metadata"
    answered = api.get("/api/stream-metadata/m").json()
    answered["metadata"]["owner"] = "billing"
    back = api.put("/api/stream-metadata/m", json=answered)
    assert back.json()["metadata"] == {"owner": "billing", "max-count": 2}, back.text
    wrapped = api.put("/api/stream-metadata/m", json={"metadata": {"max-count": 2, "owner": "ops"}})
    assert wrapped.json()["metadata"] == {"owner": "ops", "max-count": 2}, wrapped.text
    bad = api.put("/api/stream-metadata/m", json={"max-count": "two"})
    assert bad.status_code == 400 and bad.json()["field"] == "max-count"
    scavenged = api.post("/api/admin/scavenge")
    assert scavenged.status_code == 200 and scavenged.json()["removed-events"] == 3
    assert len([e for e in live.store.read() if e.stream_name == "m"]) == 2

    first = page[0]["id"]
    redacted = api.post("/api/redact", json={"ids": [first], "reason": "erasure"})
    assert redacted.status_code == 200 and redacted.json() == {"redacted-events": 1}
    assert api.get(f"/api/event-id/{first}").json()["payload"]["redacted"] is True
    assert api.post("/api/redact", json={"stream-name": "m"}).json() == {"redacted-events": 2}
    for body, status in [
        ({}, 400),
        ({"stream-name": "m", "ids": [first]}, 400),
        ({"ids": ["nope"]}, 404),
        ({"stream-name": "m", "why": 1}, 400),
        ({"ids": "x"}, 400),
    ]:
        assert api.post("/api/redact", json=body).status_code == status, body


def test_lifetime_and_group_bodies_are_read_strictly(live: LiveServer, api: httpx.Client) -> None:
    """The lifetime and group routes read their bodies as every other route does: a repeated key
    or an integer beyond 64 bits is refused, naming it, and nothing is stored."""
    repeated = api.put("/api/stream-metadata/s", content=b'{"max-count": 1, "max-count": 5}')
    assert repeated.status_code == 400 and "max-count" in repeated.json()["error"], repeated.text
    wide = api.put("/api/stream-metadata/s", content=b'{"owner": 18446744073709551616}')
    assert wide.status_code == 400, wide.text
    assert api.get("/api/stream-metadata/s").json()["metadata"] == {}
    empty = api.post("/api/redact", content=b" ")
    assert empty.status_code == 400 and empty.json()["error"] == "empty request body: expected JSON"
    group = api.post("/api/groups", content=b'{"group-name": "g", "group-name": "h"}')
    assert group.status_code == 400 and "group-name" in group.json()["error"], group.text
    assert api.get("/api/groups").json() == {"groups": []}


def test_metadata_for_a_name_no_stream_can_have_is_refused(api: httpx.Client) -> None:
    """A wildcard, a dot segment or an over-long name can never be a stream: setting its metadata
    is refused naming the stream name, and nothing is written to __metadata__."""
    for name, fragment in [("a**", "'*'"), ("..x..", None), ("n" * 257, "1 to 256")]:
        answer = api.put(f"/api/stream-metadata/{name}", json={"max-count": 1})
        if fragment is None:  # a legal name, for contrast
            assert answer.status_code == 200, answer.text
            continue
        assert answer.status_code == 400, (name, answer.text)
        assert answer.json()["field"] == "stream-name" and fragment in answer.json()["error"], answer.text
    streams = api.get("/api/streams").json()["streams"]
    assert {"stream-name": "__metadata__", "total-events": 1} in streams, streams


def test_metadata_body_naming_another_stream_is_refused(api: httpx.Client) -> None:
    """GET's answer for one stream written to another's path is a mistake, not user metadata:
    refused naming stream-name, and the stream's metadata stays as it was."""
    api.put("/api/stream-metadata/a-1", json={"max-count": 3})
    copied = api.get("/api/stream-metadata/a-1").json()
    answer = api.put("/api/stream-metadata/b-1", json=copied)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "stream-name" and "'a-1'" in answer.json()["error"], answer.text
    assert api.get("/api/stream-metadata/b-1").json() == {"stream-name": "b-1", "metadata": {}}
    same = api.put("/api/stream-metadata/a-1", json={"stream-name": "a-1", "metadata": {"max-count": 4}})
    assert same.json()["metadata"] == {"max-count": 4}, same.text


def test_event_by_order_id_hides_what_the_stream_hides(api: httpx.Client) -> None:
    """GET /api/event/{stream}/{order-id} is a read of the stream: an event its metadata truncates
    or expires, or of a deleted stream, is 404 there, as in its other reads; __all__ and the
    category still show it until a scavenge."""
    stored = api.post("/api/event", json=[event("acct-1", n=i) for i in range(3)]).json()
    first, last = stored[0]["order-id"], stored[-1]["order-id"]
    assert api.put("/api/stream-metadata/acct-1", json={"max-count": 2}).status_code == 200
    assert api.get(f"/api/event/acct-1/{first}").status_code == 404
    assert api.get(f"/api/event/acct-1/{last}").status_code == 200
    assert api.get(f"/api/event/__all__/{first}").status_code == 200
    assert api.get(f"/api/event/__category__:acct/{first}").status_code == 200
    api.put("/api/stream-metadata/acct-1", json={"max-age": 1})
    old = api.post("/api/event", json=event("acct-1", n=9)).json()
    aged = api.post("/api/event", json={**event("acct-1"), "event-time": old["event-time"] - 5000}).json()
    assert api.get(f"/api/event/acct-1/{aged['order-id']}").status_code == 404
    assert api.get(f"/api/event/acct-1/{old['order-id']}").status_code == 200
    assert api.delete("/api/stream/acct-1").status_code == 200
    assert api.get(f"/api/event/acct-1/{old['order-id']}").status_code == 404
    assert api.get(f"/api/event/__all__/{old['order-id']}").status_code == 200


def test_event_by_order_id_of_a_category_holds_what_its_read_holds(api: httpx.Client) -> None:
    """The one event of a category's read by order-id is what the category's read returns, for a
    category of internal streams too (`__metadata__`, listed by /api/categories and readable)."""
    assert api.put("/api/stream-metadata/acct-1", json={"max-count": 3}).status_code == 200
    listed = api.get("/api/categories").json()["categories"]
    assert "__metadata__" in listed
    read = api.get("/api/stream-contents/__category__:__metadata__").json()["results"]
    assert [e["event-type"] for e in read] == ["metadata-set"]
    one = api.get(f"/api/event/__category__:__metadata__/{read[0]['order-id']}")
    assert one.status_code == 200 and one.json() == read[0], one.text
    assert api.get(f"/api/event/__category__:acct/{read[0]['order-id']}").status_code == 404
