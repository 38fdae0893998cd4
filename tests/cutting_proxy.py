"""A TCP proxy that loses the server's answer to the first request holding a marker.

It forwards a request to the real server, waits until the server has answered (so the request
was processed), then closes the client's connection without passing the answer on: what a
client sees when a connection drops or times out after the server did the work.
"""

from __future__ import annotations

import select
import socket
import threading


class CuttingProxy:
    def __init__(self, upstream_port: int, marker: bytes, cuts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.cuts_left = cuts
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _take_cut(self, chunk: bytes) -> bool:
        with self._lock:
            if self.cuts_left > 0 and self.marker in chunk:
                self.cuts_left -= 1
                self.cut += 1
                return True
        return False

    def _pump(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        cutting = False
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        cutting = cutting or self._take_cut(data)
                        upstream.sendall(data)
                    elif cutting:
                        return  # the server answered: drop the answer and the connection
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
