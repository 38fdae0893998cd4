"""Listening sockets for the front ends."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from photon.core.errors import CannotListen


def bind(host: str, port: int, key: str) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free port), IPv4 preferred.

    `key` is the configuration key of the port, named in the error when it cannot be had (three
    ports are opened at start; "address already in use" alone does not say which).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {host}:{port} ({key}, rest.host): {exc}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port} ({key}): {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def url_host(sock: socket.socket) -> str:
    host: str = sock.getsockname()[0]
    return f"[{host}]" if ":" in host else host


def check_keystore(path: str, password: str | None) -> None:
    """Load the TLS keystore once so a bad file or password fails start-up with a message naming the key.

    (Left to the TLS library, an encrypted key without a password would be asked for on the terminal.)
    """
    _server_context(path, password)


def _server_context(path: str, password: str | None) -> ssl.SSLContext:
    from photon.core.errors import ConfigError

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(path, password=lambda: password or "")
    except FileNotFoundError:
        raise ConfigError(f"rest.keystore {path!r}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        given = "with rest.keypass" if password else "without rest.keypass (an encrypted key needs it)"
        raise ConfigError(
            f"rest.keystore {path!r} cannot be loaded {given}: a PEM file with the certificate "
            f"and its private key is expected ({exc})"
        ) from None
    return context


def tcp_tls(config: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The TLS context of the TCP ports (`events.port`, `projections.port`); None for plaintext.

    With `rest.keystore` set they speak TLS with the same certificate as HTTPS, so that a token
    never crosses the network in the clear; `tcp.plaintext` keeps them plaintext on purpose
    (e.g. behind a proxy that ends TLS).
    """
    keystore = config.get("rest.keystore")
    if not keystore or config.get("tcp.plaintext"):
        return None
    return _server_context(str(keystore), config.get("rest.keypass"))


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
