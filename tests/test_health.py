"""GET /health/live and /health/ready over a real socket, without a token; 503 with a reason when not ready."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import restartable
from .live import LiveServer, make_config


def test_live_and_ready_need_no_token(live: LiveServer) -> None:
    assert httpx.get(live.url + "/health/live").json() == {"status": "live"}
    answer = httpx.get(live.url + "/health/ready")
    assert answer.status_code == 200 and answer.json() == {"status": "ready"}


def test_not_ready_once_the_store_is_closed_or_shutting_down(live: LiveServer) -> None:
    live.app.state.closing = True
    answer = httpx.get(live.url + "/health/ready")
    assert answer.status_code == 503
    assert answer.json()["reasons"] == ["the server is shutting down"]
    live.app.state.closing = False
    live.store.close()
    closed = httpx.get(live.url + "/health/ready")
    assert closed.status_code == 503 and "the store is closed" in closed.json()["reasons"]
    assert httpx.get(live.url + "/health/live").status_code == 200


@pytest.mark.redis
def test_not_ready_while_the_backend_is_down(tmp_path: Path, redis_server: Any) -> None:
    restartable(redis_server)
    config = make_config(
        tmp_path, db_backend="redis", redis_url=redis_server.url, redis_prefix=f"health-{uuid.uuid4().hex[:8]}"
    )
    server = LiveServer(config)
    try:
        assert httpx.get(server.url + "/health/ready").status_code == 200
        redis_server.stop()
        try:
            answer = httpx.get(server.url + "/health/ready", timeout=30)
            assert answer.status_code == 503
            assert any("the backend" in reason for reason in answer.json()["reasons"]), answer.json()
            assert httpx.get(server.url + "/health/live").status_code == 200
        finally:
            redis_server.start()
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/health/ready", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the backend came back"
            time.sleep(0.2)
    finally:
        server.stop()
