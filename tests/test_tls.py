"""HTTPS when rest.keystore (a PEM with certificate and key) and rest.keypass are set."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from photon.client.blocking import PhotonClient
from photon.core.errors import ConfigError, ValidationError

from .live import LiveServer, make_config


def self_signed(tmp_path: Path, password: str | None) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    keystore = tmp_path / "keystore.pem"
    keystore.write_bytes(cert_pem + key_pem)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert_pem)
    return keystore, ca


def test_https_with_keystore_and_keypass(tmp_path: Path) -> None:
    keystore, ca = self_signed(tmp_path, "kp4ss")
    server = LiveServer(make_config(tmp_path, **{"rest.keystore": str(keystore), "rest.keypass": "kp4ss"}))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        assert httpx.get(server.url + "/api/ping", verify=ssl.create_default_context(cafile=str(ca))).json() == {
            "auth": "ok"
        }
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/api/ping")
        with PhotonClient(server.url, verify=str(ca)) as client:
            client.emit({"stream-name": "s", "event-type": "t", "payload": {}})
            assert [(s.stream_name, s.total_events) for s in client.streams()] == [("s", 1)]
    finally:
        server.stop()


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_a_ca_file_the_client_cannot_use_is_named(tmp_path: Path, content: bytes | None) -> None:
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    with pytest.raises(ValidationError, match=f"cannot use '{ca}' as the CA file") as refused:
        PhotonClient("https://127.0.0.1:9", verify=str(ca))
    assert refused.value.field == "verify"


@pytest.mark.parametrize("keypass", ["wrong", None])
def test_a_wrong_or_missing_keypass_fails_start_up_naming_the_key(tmp_path: Path, keypass: str | None) -> None:
    keystore, _ = self_signed(tmp_path, "right")
    settings = {"rest.keystore": str(keystore)}
    if keypass:
        settings["rest.keypass"] = keypass
    with pytest.raises(ConfigError, match=r"rest\.keystore"):
        LiveServer(make_config(tmp_path, **settings))


def test_a_missing_keystore_file_fails_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        LiveServer(make_config(tmp_path, **{"rest.keystore": str(tmp_path / "none.pem"), "rest.keypass": "x"}))


def _tcp_ports(server: LiveServer) -> dict[str, int]:
    from photon.server.projection_updates import ProjectionUpdatesService

    updates = server.server.service(ProjectionUpdatesService)
    assert updates.port is not None
    return {"events.port": server.tcp_port, "projections.port": updates.port}


def _exchange(port: int, line: bytes, context: ssl.SSLContext | None) -> bytes:
    """Connect (over TLS with `context`), send `line`, and return the first line answered."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
        sock.sendall(line)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_with_a_keystore_both_tcp_ports_speak_tls(tmp_path: Path) -> None:
    keystore, ca = self_signed(tmp_path, None)
    server = LiveServer(make_config(tmp_path, **{"rest.keystore": str(keystore)}))
    try:
        context = ssl.create_default_context(cafile=str(ca))
        token = httpx.get(server.url + "/auth/token", auth=("admin", "p4010n"), verify=context).json()["token"]
        ports = _tcp_ports(server)
        event = b'{"stream-name":"s","event-type":"t","payload":{}}\n'
        assert _exchange(ports["events.port"], b'{"token":"%s"}\n' % token.encode() + event, context) == (
            b'{"order-id":1,"stream-version":1}\n'
        )
        first = _exchange(ports["projections.port"], b'{"token":"%s"}\n' % token.encode(), context)
        assert b'"projection-name":"__streams__"' in first
        # A plaintext client gets nothing it can read: no token crosses the network in the clear.
        for port in ports.values():
            with pytest.raises((ConnectionError, OSError)):
                answer = _exchange(port, b'{"token":"%s"}\n' % token.encode() + event, None)
                if not answer:
                    raise ConnectionResetError("closed")
    finally:
        server.stop()


def test_tcp_plaintext_keeps_the_tcp_ports_plaintext_on_purpose(tmp_path: Path) -> None:
    keystore, ca = self_signed(tmp_path, None)
    server = LiveServer(make_config(tmp_path, **{"rest.keystore": str(keystore), "tcp.plaintext": "true"}))
    try:
        context = ssl.create_default_context(cafile=str(ca))
        token = httpx.get(server.url + "/auth/token", auth=("admin", "p4010n"), verify=context).json()["token"]
        answer = _exchange(
            server.tcp_port,
            b'{"token":"%s"}\n{"stream-name":"s","event-type":"t","payload":{}}\n' % token.encode(),
            None,
        )
        assert answer == b'{"order-id":1,"stream-version":1}\n'
    finally:
        server.stop()


@pytest.mark.parametrize("keypass", ["wrong", None])
def test_photon_with_a_bad_keystore_stops_before_opening_the_store(tmp_path: Path, keypass: str | None) -> None:
    """The installed `photon`: a keystore that cannot be loaded stops start-up naming rest.keystore
    (and, without rest.keypass, saying an encrypted key needs it) before the store is opened: no
    store file is made, and a store another process holds does not hide the error."""
    import shutil
    import subprocess
    import sys

    photon = shutil.which("photon") or str(Path(sys.executable).parent / "photon")
    keystore, _ = self_signed(tmp_path, "right")
    args = [photon, "-rest.keystore", str(keystore), "-rest.port", "0", "-events.port", "0", "-projections.port", "0"]
    if keypass:
        args += ["-rest.keypass", keypass]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "rest.keystore" in done.stderr, done.stderr
    assert ("with rest.keypass" if keypass else "without rest.keypass") in done.stderr, done.stderr
    assert not (tmp_path / "photon.db").exists()
