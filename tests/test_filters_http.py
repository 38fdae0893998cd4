"""Filters and category streams over HTTP: replay of `__category__:<name>` and of `__all__` filtered."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from .live import event


def cold(api: httpx.Client, stream: str, **params: Any) -> list[dict[str, Any]]:
    answer = api.get(f"/api/replay/{stream}", params={"stream-type": "cold", **params})
    assert answer.status_code == 200, answer.text
    return [orjson.loads(line) for line in answer.content.splitlines()]


def test_category_replay_and_filters_on_all(api: httpx.Client) -> None:
    api.post(
        "/api/event",
        json=[event("account-1", "Opened"), event("orders-1", "Placed"), event("account-2", "Deposited")],
    ).raise_for_status()
    assert [e["stream-name"] for e in cold(api, "__category__:account")] == ["account-1", "account-2"]
    assert [e["order-id"] for e in cold(api, "__category__:account", **{"from": 2})] == [3]
    assert [e["order-id"] for e in cold(api, "__all__", **{"stream-prefix": "orders"})] == [2]
    assert [e["order-id"] for e in cold(api, "__all__", **{"event-type-prefix": "Dep,Pla"})] == [2, 3]
    assert [e["order-id"] for e in cold(api, "__all__", **{"stream-regex": "-1$", "category": "account"})] == [1]
    assert [e["order-id"] for e in cold(api, "__all__", **{"event-type-regex": "^O"})] == [1]
    bad = api.get("/api/replay/__all__", params={"stream-type": "cold", "stream-regex": "("})
    assert bad.status_code == 400 and bad.json()["field"] == "stream-regex"
    wrong = api.get("/api/replay/orders-1", params={"stream-type": "cold", "stream-prefix": "x"})
    assert wrong.status_code == 400 and "not one stream" in wrong.json()["error"]
    with api.stream("GET", "/api/replay/__category__:account") as response:
        lines = response.iter_lines()
        assert [orjson.loads(next(lines)).get("order-id") for _ in range(2)] == [1, 3]
        assert orjson.loads(next(lines)) == {"caught-up": 3}
