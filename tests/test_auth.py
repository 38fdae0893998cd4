"""Photon's token auth: /auth/token with HTTP Basic, then Token / Bearer / access_token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from photon.server.tokens import TokenSigner

from .conftest import TokenClock
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


def test_tokens_expire(tmp_path: Path, token_clock: TokenClock) -> None:
    server = LiveServer(make_config(tmp_path, **{"admin.token.ttl": "2"}))
    try:
        token = server.token()
        assert httpx.get(server.url + "/api/streams", params={"access_token": token}).status_code == 200
        token_clock.now += 1.5  # still within its 2 s
        assert httpx.get(server.url + "/api/streams", params={"access_token": token}).status_code == 200
        token_clock.now += 1.5
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


def test_repeated_failed_logins_from_one_address_are_slowed_down(live: LiveServer) -> None:
    from photon.server.http import login_throttle

    # The throttle's clock is the test's: on a loaded machine a request can take longer than the
    # second an address is shut out for, and the next one then found it open again.
    now = [1000.0]
    live.app.state.login_throttle = login_throttle.LoginThrottle(clock=lambda: now[0])
    url = live.url + "/auth/token"
    for _ in range(login_throttle.FREE_FAILURES + 1):
        assert httpx.get(url, auth=("admin", "guess")).status_code == 401
    # Shut out for a moment: even the right password is not checked now.
    shut = httpx.get(url, auth=("admin", "p4010n"))
    assert shut.status_code == 429, shut.text
    assert shut.headers["Retry-After"] == "1"
    assert "too many failed logins from 127.0.0.1" in shut.json()["error"]
    now[0] += 1.05
    assert httpx.get(url, auth=("admin", "p4010n")).status_code == 200
    # A success forgets the failures.
    assert httpx.get(url, auth=("admin", "guess")).status_code == 401
    assert httpx.get(url, auth=("admin", "p4010n")).status_code == 200


def test_login_throttle_waits_double_up_to_a_cap_and_are_forgotten() -> None:
    from photon.server.http import login_throttle
    from photon.server.http.login_throttle import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    waits = []
    for _ in range(login_throttle.FREE_FAILURES + 8):
        throttle.failed("10.0.0.1")
        waits.append(throttle.retry_after("10.0.0.1"))
    assert waits[: login_throttle.FREE_FAILURES] == [0] * login_throttle.FREE_FAILURES
    assert waits[login_throttle.FREE_FAILURES :] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.retry_after("10.0.0.2") == 0  # per address
    now[0] += login_throttle.FORGET_AFTER + 1
    assert throttle.retry_after("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 0  # counting starts again
    for index in range(login_throttle.MAX_ADDRESSES + 10):
        throttle.failed(f"addr-{index}")
    assert len(throttle._records) == login_throttle.MAX_ADDRESSES


@pytest.mark.parametrize(
    ("host", "password", "warned"),
    [("0.0.0.0", None, True), ("192.0.2.7", None, True), ("127.0.0.1", None, False), ("0.0.0.0", "s3cret", False)],
)
def test_a_default_password_beyond_loopback_is_warned_about_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, password: str | None, warned: bool
) -> None:
    from photon.server.server import warn_about_default_password

    settings = {"rest.host": host} | ({"admin.pass": password} if password else {})
    with caplog.at_level("WARNING", logger="photon.server"):
        assert warn_about_default_password(make_config(tmp_path, **settings)) is warned
    assert ("SECURITY: admin.pass is the default password" in caplog.text) is warned
    if warned:
        assert "a token runs code on this server" in caplog.text


def test_the_photon_command_warns_at_start_about_a_default_password_on_every_interface(tmp_path: Path) -> None:
    from .live import ServerProcess

    proc = ServerProcess(
        tmp_path,
        ["-rest.host", "0.0.0.0", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(tmp_path / "p.db")],
    )
    try:
        assert "SECURITY: admin.pass is the default password ('p4010n') and the server listens on 0.0.0.0" in (
            proc.output()
        )
    finally:
        proc.terminate()
