"""`photon emit`, `photon replay`, `photon streams` run as commands, against a server process or a store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from .live import PHOTON, ServerProcess


def photon(args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    return subprocess.run([PHOTON, *args], cwd=cwd, input=stdin, capture_output=True, env=env, timeout=60)


def test_emit_replay_streams_against_a_server(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    one = photon(["emit", *url, '{"stream-name":"cart","event-type":"added","payload":{"sku":"A"}}'], tmp_path)
    assert one.returncode == 0, one.stderr
    assert orjson.loads(one.stdout)["order-id"] == 1

    lines = b"".join(
        orjson.dumps({"stream-name": "cart", "event-type": "added", "payload": {"n": i}}) + b"\n" for i in range(2500)
    )
    many = photon(["emit", *url], tmp_path, stdin=lines)
    assert many.returncode == 0, many.stderr
    stored = [orjson.loads(x) for x in many.stdout.splitlines()]
    assert [e["order-id"] for e in stored] == list(range(2, 2502))

    replayed = photon(["replay", "cart", *url, "-from", "2500", "-event-types", "added"], tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert [orjson.loads(x)["order-id"] for x in replayed.stdout.splitlines()] == [2500, 2501]

    limited = photon(["replay", *url, "-limit", "3"], tmp_path)
    assert len(limited.stdout.splitlines()) == 3

    listing = photon(["streams", *url], tmp_path)
    assert listing.stdout.decode().splitlines() == ["cart\t2501"]

    # A refused line of stdin is named by its line (the core names the event by its index in its
    # batch of 1000); the batches before it stay stored, nothing of its own batch is.
    good = orjson.dumps({"stream-name": "cart", "event-type": "added", "payload": {}})
    lines = [good] * 1500
    lines[1203] = orjson.dumps({"stream-name": "cart", "event-type": "added"})
    refused = photon(["emit", *url], tmp_path, stdin=b"\n".join(lines[:600]) + b"\n\n" + b"\n".join(lines[600:]))
    assert refused.returncode == 2 and b"line 1205: missing required field 'payload'" in refused.stderr, refused.stderr
    assert len(refused.stdout.splitlines()) == 1000
    alone = photon(["emit", *url], tmp_path, stdin=b"\n" + lines[1203] + b"\n")
    assert alone.returncode == 2 and b"line 2: missing required field 'payload'" in alone.stderr, alone.stderr

    bad = photon(["emit", *url, '{"stream-name":"__all__","event-type":"x","payload":{}}'], tmp_path)
    assert bad.returncode == 2 and b"internal" in bad.stderr
    conflict = photon(
        ["emit", *url, "-expected-version", "5", '{"stream-name":"cart","event-type":"x","payload":{}}'], tmp_path
    )
    assert conflict.returncode == 2 and b"version conflict" in conflict.stderr


def test_cli_takes_the_server_and_credentials_from_the_configuration(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path,
        [
            "-rest.host",
            "127.0.0.1",
            "-rest.port",
            "0",
            "-events.port",
            "0",
            "-admin.pass",
            "pw2",
            "-sqlite.path",
            str(tmp_path / "p.db"),
        ],
    )
    try:
        port = server.url.rsplit(":", 1)[1]
        (tmp_path / "photon.properties").write_text(f"rest.host=127.0.0.1\nrest.port={port}\nadmin.pass=pw2\n")
        emitted = photon(["emit", '{"stream-name":"s","event-type":"t","payload":{}}'], tmp_path)
        assert emitted.returncode == 0, emitted.stderr
        refused = photon(["streams", "-admin.pass", "wrong"], tmp_path)
        assert refused.returncode == 2 and b"Not authorized" in refused.stderr
        assert b"-admin.user/-admin.pass" in refused.stderr  # says what to give
    finally:
        server.terminate()


def test_direct_mode_opens_the_store(tmp_path: Path) -> None:
    store = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "direct.db")]
    emitted = photon(["emit", *store], tmp_path, stdin=b'{"stream-name":"d","event-type":"t","payload":{"k":1}}\n')
    assert emitted.returncode == 0, emitted.stderr
    replayed = photon(["replay", "d", *store], tmp_path)
    assert orjson.loads(replayed.stdout)["payload"] == {"k": 1}
    assert photon(["streams", *store], tmp_path).stdout == b"d\t1\n"
    two = b'{"stream-name":"d","event-type":"t","payload":{}}\n{"stream-name":"d"}\n'
    refused = photon(["emit", *store], tmp_path, stdin=two)
    assert b"line 2: missing required field 'event-type'" in refused.stderr, refused.stderr
    assert photon(["streams", *store], tmp_path).stdout == b"d\t1\n"
    live = photon(["replay", "d", "-stream-type", "hot", *store], tmp_path)
    assert live.returncode == 2 and b"needs a running server" in live.stderr


def test_a_store_key_without_db_backend_is_refused_rather_than_set_aside(tmp_path: Path) -> None:
    # Without -db.backend a command talks to a server: the store named by -sqlite.path was ignored
    # and the command failed to reach localhost:3000 (or answered about the server's store).
    for command in (["streams"], ["replay", "s"], ["projections", "list"], ["groups", "list"]):
        refused = photon([*command, "-sqlite.path", str(tmp_path / "x.db")], tmp_path)
        assert refused.returncode == 2, (command, refused.stderr)
        assert b"-sqlite.path names a store" in refused.stderr and b"-db.backend sqlite" in refused.stderr
    assert not (tmp_path / "x.db").exists()


def test_hot_cold_replay_reports_caught_up_on_stderr(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    photon(["emit", *url, '{"stream-name":"s","event-type":"t","payload":{}}'], tmp_path)
    proc = subprocess.Popen(
        [PHOTON, "replay", "s", "-stream-type", "hot-cold", *url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert orjson.loads(proc.stdout.readline())["order-id"] == 1
        assert b"caught up at order-id 1" in proc.stderr.readline()
        photon(["emit", *url, '{"stream-name":"s","event-type":"live","payload":{}}'], tmp_path)
        assert orjson.loads(proc.stdout.readline())["event-type"] == "live"
    finally:
        proc.terminate()
        proc.wait(10)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_commands_say_clearly_when_no_server_answers(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (["streams", "-url", url], ["replay", "cart", "-url", url], ["emit", "-url", url, "{}"]):
        result = photon(args, tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert f"cannot reach the Photon server at {url}" in result.stderr.decode(), args
        assert b"Traceback" not in result.stderr


def test_replay_flags_are_read_by_the_request_model(tmp_path: Path) -> None:
    """The CLI's replay flags have the server's rules: ASCII digits, 64-bit bounds, named when bad."""
    db = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "p.db")]
    stored = photon(["emit", *db, '{"stream-name":"s","event-type":"t","payload":{}}'], tmp_path)
    assert stored.returncode == 0, stored.stderr
    for flag, value, message in [
        ("-from", "1_0", b"'from' must be a whole number (ASCII digits only)"),
        ("-limit", "0", b"'limit' must be a whole number of at least 1"),
        ("-from-time", str(1 << 63), b"'from-time' must be at most 9223372036854775807"),
    ]:
        refused = photon(["replay", "s", *db, flag, value], tmp_path)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    replayed = photon(["replay", "s", *db, "-from", "0", "-limit", "1"], tmp_path)
    assert replayed.returncode == 0 and orjson.loads(replayed.stdout)["order-id"] == 1, replayed.stderr
