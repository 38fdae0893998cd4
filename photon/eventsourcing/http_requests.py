"""The recorders' short requests to a Photon server (an insert, a page of a read) over keep-alive
HTTP/1.1 connections of the standard library.

An application's recorder makes one request per insert and waits for it, so the client's own
cost per request counts: `http.client` spends about a third of the CPU time httpx does on such
a request (measured against a real `photon` server: 0.35 against 1.1 ms for an insert of 10
events). The token, the long-lived streams (a live subscription) and everything else stay with
the Python client's `HttpTransport`; the answers' errors are Photon's, as the client reads them.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from photon.client.wire import raise_for
from photon.core.errors import ServerUnreachable


class ShortRequests:
    """Requests whose answers are read whole, on a small pool of kept-alive connections (one per
    thread that uses them at the same time)."""

    def __init__(self, url: str, token: Callable[[bool], str], *, verify: bool | str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a Photon server URL must be http://host:port or https://host:port, got {url!r}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:  # as httpx's verify=False
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
        self._timeout = timeout
        self._token = token
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                if self._context is not None:
                    return http.client.HTTPSConnection(
                        self._host, self._port, timeout=self._timeout, context=self._context
                    )
                return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            sock = connection.sock
            # A kept-alive connection the server has closed meanwhile reads as ready (its end of
            # file): drop it before sending on it, so a request is never sent into a closed one.
            if sock is not None and not select.select([sock], [], [], 0)[0]:
                return connection
            connection.close()

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < 8:
                self._idle.append(connection)
                return
        connection.close()

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: bytes | None = None) -> bytes:
        """The answer's body; an error answer raised as Photon's error (`photon.client.wire.raise_for`)."""
        target = self._base + path + ("?" + urlencode(params, doseq=True) if params else "")
        connection = self._connection()
        try:
            for renew in (False, True):
                headers = {"Authorization": f"Token {self._token(renew)}"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.status != 401 or renew:
                    break
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ServerUnreachable(f"cannot reach the Photon server at {self.url}: {exc!r}") from exc
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        if response.status >= 400:
            raise_for(httpx.Response(response.status, content=data))
        return data

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
