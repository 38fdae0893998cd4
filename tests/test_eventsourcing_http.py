"""The remote recorders' short requests (`photon.eventsourcing.http_requests`) over a real socket:
a kept-alive connection the server closed is never sent on, an expired token is renewed once,
errors are Photon's. (The recorders against a real Photon server: test_eventsourcing_recorders.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from photon.core.errors import ServerUnreachable, StoreClosed, VersionConflict
from photon.eventsourcing.http_requests import ShortRequests


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, str, bytes]] = []
        self.close_after_answer = False
        self.closed = 0  # connections closed after an answer (close_after_answer)
        self.chunked_and_close = False
        self.valid_token = "t1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = self.headers.get("Authorization", "")
        self.server.requests.append((self.command, self.path, token, body))
        if token != f"Token {self.server.valid_token}":
            status, answer = 401, b'{"error":"token expired"}'
        elif self.path.startswith("/api/conflict"):
            status = 409
            answer = b'{"error":"no","stream-name":"s","expected-version":0,"current-version":3}'
        else:
            status, answer = 200, b'[{"order-id":%d}]' % len(self.server.requests)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.chunked_and_close:
            # In chunks of 3 bytes, then "Connection: close": the answer is whole, the connection not kept.
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for start in range(0, len(answer), 3):
                piece = answer[start : start + 3]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.wfile.flush()
        if self.server.close_after_answer:
            # Closed without saying so (no "Connection: close"), as a server's idle time-out does.
            self.connection.shutdown(socket.SHUT_RDWR)
            self.server.closed += 1
            self.close_connection = True

    do_GET = do_POST = _answer


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_connection_the_server_closed_is_not_sent_on(server: _Server) -> None:
    requests = ShortRequests(_url(server), lambda renew: "t1", verify=True)
    server.close_after_answer = True
    answers = []
    for number in range(3):
        answers.append(requests.request("POST", "/api/event", body=b'{"n":%d}' % number))
        # The server's close has come before the next request takes a connection (a fixed 50 ms
        # was sometimes less than a loaded machine took between the answer and the close).
        deadline = time.monotonic() + 60
        threading.Event().wait(0.01)
        while server.closed <= number:
            assert time.monotonic() < deadline, "the server never closed the connection"
            threading.Event().wait(0.01)
    # Each request sent once, on a fresh connection: none lost, none repeated.
    assert [body for _, _, _, body in server.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert answers == [b'[{"order-id":1}]', b'[{"order-id":2}]', b'[{"order-id":3}]']
    requests.close()


def test_kept_alive_connections_are_reused_and_parameters_are_encoded(server: _Server) -> None:
    requests = ShortRequests(_url(server) + "/", lambda renew: "t1", verify=True)
    requests.request("GET", "/api/replay/s", params={"from": 3, "event-types": ["a:B", "c d"]})
    requests.request("GET", "/api/replay/s", params={"from": 4})
    assert [path for _, path, _, _ in server.requests] == [
        "/api/replay/s?from=3&event-types=a%3AB&event-types=c+d",
        "/api/replay/s?from=4",
    ]
    assert len(requests._idle) == 1  # one connection served both
    requests.close()
    # Closed (a collected application's recorder): said so, and nothing more is sent.
    with pytest.raises(StoreClosed, match="the client is closed"):
        requests.request("GET", "/api/replay/s")
    assert len(server.requests) == 2


def test_a_chunked_answer_is_read_whole_and_a_closing_connection_is_not_kept(server: _Server) -> None:
    requests = ShortRequests(_url(server), lambda renew: "t1", verify=True)
    server.chunked_and_close = True
    assert requests.request("GET", "/api/replay/s") == b'[{"order-id":1}]'
    assert requests._idle == []
    assert requests.request("GET", "/api/replay/s") == b'[{"order-id":2}]'
    requests.close()


def test_an_answer_cut_short_is_an_unreachable_server() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_half() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{")
        connection.close()

    thread = threading.Thread(target=answer_half, daemon=True)
    thread.start()
    requests = ShortRequests(f"http://127.0.0.1:{listener.getsockname()[1]}", lambda renew: "t1", verify=True)
    with pytest.raises(ServerUnreachable, match="before its answer was complete"):
        requests.request("POST", "/api/event", body=b"{}")
    thread.join()
    listener.close()
    assert requests._idle == []
    requests.close()


def test_a_server_that_does_not_answer_is_unreachable_after_the_time_limit() -> None:
    """The limit holds though the socket blocks (the kernel keeps it: no poll before each read)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def take_and_stay_silent() -> None:
        connection, _ = listener.accept()
        held.append(connection)

    thread = threading.Thread(target=take_and_stay_silent, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    requests = ShortRequests(url, lambda renew: "t1", verify=True, timeout=0.3)
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            requests.request("POST", "/api/event", body=b"{}")
        except BaseException as exc:
            outcome.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    started = time.monotonic()
    asking.start()
    asking.join(10)
    assert not asking.is_alive(), "the request waited past its time limit"
    assert 0.25 < time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], ServerUnreachable)
    assert requests._idle == []
    thread.join()
    for connection in held:
        connection.close()
    listener.close()
    requests.close()


def test_an_expired_token_is_renewed_once(server: _Server) -> None:
    renewals: list[bool] = []

    def token(renew: bool) -> str:
        renewals.append(renew)
        return "t2" if renew else "t1"

    requests = ShortRequests(_url(server), token, verify=True)
    server.valid_token = "t2"
    assert requests.request("POST", "/api/event", body=b"{}") == b'[{"order-id":2}]'
    assert renewals == [False, True]
    server.valid_token = "t3"  # refused even after renewing: the caller is told
    with pytest.raises(Exception, match="token expired"):
        requests.request("POST", "/api/event", body=b"{}")
    requests.close()


def test_errors_are_photons(server: _Server) -> None:
    requests = ShortRequests(_url(server), lambda renew: "t1", verify=True)
    with pytest.raises(VersionConflict) as conflict:
        requests.request("POST", "/api/conflict", body=b"{}")
    assert (conflict.value.stream, conflict.value.current) == ("s", 3)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    requests.close()
    gone = ShortRequests(f"http://127.0.0.1:{port}", lambda renew: "t1", verify=True)
    with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}"):
        gone.request("GET", "/api/replay/s")
    with pytest.raises(ValueError, match="http://host:port"):
        ShortRequests("ftp://x", lambda renew: "t1", verify=True)
