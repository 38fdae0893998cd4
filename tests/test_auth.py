"""Photon's token auth: /auth/token with HTTP Basic, then Token / Bearer / access_token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from photon.tokens import TokenSigner

from .live import LiveServer, make_config


def test_token_with_photon_default_credentials(live: LiveServer) -> None:
    answer = httpx.get(live.url + "/auth/token", auth=("admin", "p4010n"))
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body["token"], str) and body["expires-in"] == 3600


@pytest.mark.parametrize("auth", [("admin", "wrong"), ("root", "p4010n"), None])
def test_token_refused_without_the_right_credentials(live: LiveServer, auth: tuple[str, str] | None) -> None:
    answer = httpx.get(live.url + "/auth/token", auth=auth)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Not authorized"}


@pytest.mark.parametrize("path", ["/api/streams", "/api/stream-contents/x", "/api/event/x/1", "/api/replay/x"])
def test_api_routes_need_a_token(live: LiveServer, path: str) -> None:
    answer = httpx.get(live.url + path)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Not authorized"}


def test_unknown_api_route_is_401_before_404(live: LiveServer) -> None:
    # Like Photon: the /api prefix is guarded as a whole, so routes are not disclosed.
    assert httpx.get(live.url + "/api/nothing").status_code == 401


def test_post_and_delete_need_a_token(live: LiveServer) -> None:
    posted = httpx.post(live.url + "/api/event", json={"stream-name": "s", "event-type": "t", "payload": {}})
    assert posted.status_code == 401
    assert httpx.delete(live.url + "/api/stream/s").status_code == 401
    assert live.store.backend.last_order_id() == 0


def test_three_ways_to_send_the_token(live: LiveServer) -> None:
    token = live.token()
    assert httpx.get(live.url + "/api/streams", headers={"Authorization": f"Token {token}"}).status_code == 200
    assert httpx.get(live.url + "/api/streams", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(live.url + "/api/streams", params={"access_token": token}).status_code == 200


@pytest.mark.parametrize("header", ["Token nonsense", "Bearer", "Basic YWRtaW46cDQwMTBu", "Token a.b.c"])
def test_bad_tokens_are_refused(live: LiveServer, header: str) -> None:
    answer = httpx.get(live.url + "/api/streams", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json() == {"error": "Not authorized"}


def test_a_token_signed_with_another_secret_is_refused(live: LiveServer) -> None:
    forged = TokenSigner("another-secret", 3600).issue()
    assert httpx.get(live.url + "/api/streams", params={"access_token": forged}).status_code == 401


def test_tokens_expire(tmp_path: Path) -> None:
    # Token times are whole seconds: a 2 s lifetime leaves at least 1 s for the first call.
    server = LiveServer(make_config(tmp_path, **{"admin.token.ttl": "2"}))
    try:
        token = server.token()
        assert httpx.get(server.url + "/api/streams", params={"access_token": token}).status_code == 200
        time.sleep(2.1)
        assert httpx.get(server.url + "/api/streams", params={"access_token": token}).status_code == 401
    finally:
        server.stop()


def test_signer_round_trip_and_tamper() -> None:
    signer = TokenSigner("k", 60)
    token = signer.issue()
    assert signer.verify(token)
    head, claims, signature = token.split(".")
    assert not signer.verify(f"{head}.{claims}x.{signature}")
    assert not TokenSigner("k", 60).verify(signer.issue(now=time.time() - 120))
