"""Start-up of the installed `photon` command: options, precedence, errors, logging, shutdown."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from photon.core.store import EventStore

from .live import PHOTON, ServerProcess


def run_photon(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    # A spare port for projection updates and one projection worker: test servers stay light.
    full_env.update({"PHOTON_PROJECTIONS_PORT": "0", "PHOTON_PARALLEL_PROJECTIONS": "1"})
    full_env.update(env or {})
    return subprocess.run([PHOTON, *args], cwd=cwd, capture_output=True, text=True, env=full_env, timeout=60)


def test_help_with_java_style_options(tmp_path: Path) -> None:
    result = run_photon(["-rest.port", "3000", "-db.backend", "sqlite", "-h"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: photon serve" in result.stdout
    assert "-rest.port" in result.stdout and "-events.port" in result.stdout


def test_unknown_option_names_the_closest_key(tmp_path: Path) -> None:
    result = run_photon(["-sqlite.pth", "x.db"], tmp_path)
    assert result.returncode == 2
    assert "unknown option -sqlite.pth; did you mean -sqlite.path?" in result.stderr
    glued = run_photon(["-sqlite.path=x.db", "info"], tmp_path)
    assert glued.returncode == 2 and not (tmp_path / "x.db").exists()
    assert "option -sqlite.path takes its value after a space: -sqlite.path x.db" in glued.stderr


def test_unknown_key_in_properties_names_the_closest_key(tmp_path: Path) -> None:
    (tmp_path / "photon.properties").write_text("rest.prot=3000\n")
    result = run_photon(["-rest.port", "0"], tmp_path)
    assert result.returncode == 2
    assert "'rest.prot'" in result.stderr and "'rest.port'" in result.stderr


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    result = run_photon(["-rest.port", "abc"], tmp_path)
    assert result.returncode == 2
    assert "rest.port" in result.stderr and "abc" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_photon(["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", str(port)], tmp_path)
    assert result.returncode != 0
    assert f"photon: error: cannot listen on 127.0.0.1:{port} (events.port)" in result.stderr


def test_precedence_cli_over_env_over_properties_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "photon.properties").write_text(
        "# set in the file\nmicroservice.name=from-file\nadmin.user=file-user\npayload.max.bytes=2000\n"
        f"sqlite.path={tmp_path / 'p.db'}\n"
    )
    env = {"PHOTON_MICROSERVICE_NAME": "from-env", "PHOTON_ADMIN_USER": "env-user"}
    server = ServerProcess(
        tmp_path,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-microservice.name", "from-cli"],
        env,
    )
    try:
        log = server.output()
        assert "microservice.name = from-cli   (command line)" in log
        assert "admin.user = env-user   (environment PHOTON_ADMIN_USER)" in log
        assert "payload.max.bytes = 2000" in log and "photon.properties" in log
        assert "admin.token.ttl = 3600   (default)" in log
        # The values are in force, not just logged.
        assert httpx.get(server.url + "/auth/token", auth=("file-user", "p4010n")).status_code == 401
        token = server.token(user="env-user")
        big = {"stream-name": "s", "event-type": "t", "payload": {"x": "y" * 3000}}
        answer = httpx.post(server.url + "/api/event", json=big, headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 413
    finally:
        assert server.terminate() == 0


def test_secrets_are_hidden_in_the_logged_configuration(tmp_path: Path) -> None:
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
            "s3cr3t-pass",
            "-admin.secret",
            "s3cr3t-key",
            "-sqlite.path",
            str(tmp_path / "p.db"),
        ],
    )
    try:
        log = server.output()
        assert "admin.pass = ****" in log
        assert "s3cr3t" not in log
        assert server.token(password="s3cr3t-pass")
    finally:
        server.terminate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_finishes_in_flight_appends(tmp_path: Path, sig: int) -> None:
    db = tmp_path / "p.db"
    server = ServerProcess(
        tmp_path, ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(db)]
    )
    token = server.token()
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {token}"}) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = client.post(
                        "/api/event", json={"stream-name": f"w{n}", "event-type": "t", "payload": {"i": i}}
                    )
                except httpx.HTTPError:
                    return
                if answer.status_code != 200:
                    return
                with lock:
                    acknowledged.append(answer.json()["order-id"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 200:
        threading.Event().wait(0.01)
    code = server.terminate(sig)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert code == 0, server.output()
    assert "photon stopped" in server.output()
    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(db)}, read_only=True) as store:
        stored = {e.order_id for e in store.read()}
        assert set(acknowledged) <= stored
        assert sorted(stored) == list(range(1, len(stored) + 1))  # no gaps


def test_properties_example_lists_every_key(tmp_path: Path) -> None:
    import re

    from photon.core.config import all_settings, read_properties

    text = (Path(__file__).parent.parent / "photon.properties.example").read_text()
    entries = [m.group(1) for m in re.finditer(r"^#([a-z0-9.-]+=.*)$", text, re.MULTILINE)]
    listed = {entry.split("=", 1)[0] for entry in entries}
    missing = set(all_settings()) - listed
    assert not missing, (
        f"photon.properties.example lacks {sorted(missing)}: "
        "regenerate it with `python -m photon.core.properties_example > photon.properties.example`"
    )
    # Uncommented, the entries form a valid properties file of known keys.
    (tmp_path / "photon.properties").write_text("\n".join(entries))
    assert set(read_properties(tmp_path / "photon.properties")) == listed <= set(all_settings())


def test_sigterm_with_open_live_streams_and_tcp_connections(tmp_path: Path) -> None:
    import socket
    import time

    import orjson

    server = ServerProcess(
        tmp_path,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(tmp_path / "p.db")],
    )
    token = server.token()
    headers = {"Authorization": f"Token {token}"}
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        client.stream("GET", "/api/replay/__all__") as stream,
    ):
        ingest = socket.create_connection(("127.0.0.1", server.tcp_port))
        ingest.sendall(orjson.dumps({"token": token}) + b"\n")
        started = time.monotonic()
        code = server.terminate()
        assert code == 0, server.output()
        assert time.monotonic() - started < 10
        assert list(stream.iter_lines()) == ['{"caught-up":0}']  # the stream ended cleanly
        assert ingest.recv(100) == b""
        ingest.close()


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc")
def test_a_stop_signal_to_the_process_group_leaves_the_projection_workers_to_the_server(tmp_path: Path) -> None:
    """A service manager stops a service by signalling every process of it: the projection
    workers must not die first and be replaced while the server shuts down."""
    import os
    import time

    server = ServerProcess(
        tmp_path,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(tmp_path / "p.db")],
        own_group=True,
    )
    try:
        children = [pid for pid in _group_members(server.proc.pid) if pid != server.proc.pid]
        assert children, "the server started no child processes"
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(1.5)
        assert "exited; starting a replacement" not in server.output()
        token = server.token()
        answer = httpx.post(
            server.url + "/api/event",
            headers={"Authorization": f"Token {token}"},
            json={"stream-name": "g-1", "event-type": "t", "payload": {}},
        )
        assert answer.status_code == 200, answer.text
        os.killpg(server.proc.pid, signal.SIGTERM)
        code = server.terminate()
        log = server.output()
        assert code == 0, log
        assert "photon stopped" in log
        assert "starting a replacement" not in log
        deadline = time.monotonic() + 60
        while _group_members(server.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group_members(server.proc.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)  # whatever a failure left running
