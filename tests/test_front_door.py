"""What a new user meets first: names with URL characters, safe retries, mistyped commands, missing
drivers, an unknown backend, an existing backup file, a port in use, a store that ends with the command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from photon.client.blocking import PhotonClient
from photon.core.errors import ValidationError

from .cutting_proxy import CuttingProxy
from .live import PHOTON, LiveServer, ServerProcess

AWKWARD_NAMES = ["a/b", "a?b", "a#b", "100%", "a%2Fb", "x/../y", "...", "sp ace"]


def photon(args: list[str], cwd: Path, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}
    environ.update(env)
    return subprocess.run(
        [PHOTON, *args], cwd=cwd, input=stdin.decode() if stdin else None, capture_output=True, env=environ, text=True
    )


# -- 1. every name that can be written can be read, deleted, exported and replayed -------------


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_names_with_url_characters_round_trip_through_the_client(live: LiveServer, name: str) -> None:
    with PhotonClient(live.url) as client:
        stored = client.emit({"stream-name": name, "event-type": "t", "payload": {"n": 1}})
        client.emit({"stream-name": name + "-other", "event-type": "t", "payload": {"n": 2}})
        assert [e.stream_name for e in client.replay(name, stream_type="cold")] == [name]
        assert [e.order_id for e in client.read(name).events] == [stored.order_id]
        assert client.event(name, stored.order_id).payload == {"n": 1}
        assert client.delete_stream(name) == 1
        assert name not in [s.stream_name for s in client.streams()]


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dot_segment_name_is_refused_as_it_could_not_be_read(live: LiveServer, name: str) -> None:
    # Browsers, fetch and curl resolve a URL's `.` and `..` segments (`%2E` too) before sending:
    # the console asked GET /api/ for a stream named "..". So the name is refused, storing nothing.
    with PhotonClient(live.url) as client:
        with pytest.raises(ValidationError, match=f"must not be '{re.escape(name)}': URLs resolve it"):
            client.emit({"stream-name": name, "event-type": "t", "payload": {}})
        assert client.streams() == []


def test_names_with_url_characters_over_raw_http(live: LiveServer) -> None:
    name = "orders/2024?x#y%"
    with live.client() as api:
        assert api.post("/api/event", json={"stream-name": name, "event-type": "t", "payload": {}}).status_code == 200
        path = quote(name, safe="")
        assert api.get(f"/api/stream-contents/{path}").json()["results"][0]["stream-name"] == name
        assert api.get(f"/api/replay/{path}", params={"stream-type": "cold"}).text.count(name) == 1
        assert api.get(f"/api/event/{path}/1").json()["stream-name"] == name
        assert orjson.loads(api.get(f"/export/stream/{path}").text.splitlines()[0])["stream-name"] == name
        assert api.delete(f"/api/stream/{path}").json() == {"correct": True, "deleted-events": 1}


def test_names_with_url_characters_through_the_cli(server_process: ServerProcess, tmp_path: Path) -> None:
    url = ["-url", server_process.url]
    name = "a/b?c#d%"
    emitted = photon(
        ["emit", *url, orjson.dumps({"stream-name": name, "event-type": "t", "payload": {}}).decode()], tmp_path
    )
    assert emitted.returncode == 0, emitted.stderr
    replayed = photon(["replay", name, *url], tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert orjson.loads(replayed.stdout)["stream-name"] == name


# -- 2. clients give each event an id, so a retry stores it once -------------------------------


def test_client_resends_after_a_lost_answer_and_the_event_is_stored_once(live: LiveServer) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, b"POST /api/event")
    try:
        with PhotonClient(proxy.url) as client:
            stored = client.emit({"stream-name": "pay", "event-type": "charged", "payload": {"cents": 500}})
        assert proxy.cut == 1  # the first answer was lost: the client sent the event again
        assert stored.order_id == 1
        assert [e.event_id for e in live.store.read("pay")] == [stored.event_id]
    finally:
        proxy.close()


def test_cli_emit_resends_after_a_lost_answer_and_stores_once(server_process: ServerProcess, tmp_path: Path) -> None:
    port = int(server_process.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, b"POST /api/event")
    try:
        lines = b"".join(b'{"stream-name":"s","event-type":"t","payload":{"n":%d}}\n' % i for i in range(3))
        result = photon(["emit", "-url", proxy.url], tmp_path, stdin=lines)
        assert result.returncode == 0, result.stderr
        assert proxy.cut == 1
    finally:
        proxy.close()
    with PhotonClient(server_process.url) as client:
        assert [e.payload["n"] for e in client.replay("s", stream_type="cold")] == [0, 1, 2]


def test_client_keeps_an_id_the_caller_gave(live: LiveServer) -> None:
    with PhotonClient(live.url) as client:
        mine = "0190a3c5-0000-7000-8000-000000000001"
        first = client.emit({"stream-name": "s", "event-type": "t", "payload": {}, "id": mine})
        again = client.emit({"stream-name": "s", "event-type": "t", "payload": {}, "id": mine})
        assert first.event_id == again.event_id == mine and first.order_id == again.order_id


# -- 3. a mistyped command ---------------------------------------------------------------------


def test_mistyped_command_names_the_closest(tmp_path: Path) -> None:
    result = photon(["emitt", "{}"], tmp_path)
    assert result.returncode == 2
    assert "no such command 'emitt'; did you mean 'emit'?" in result.stderr
    assert "unexpected extra argument" not in result.stderr
    help_ = photon(["help"], tmp_path)
    assert help_.returncode == 2 and "photon -h" in help_.stderr


# -- 4. a backend whose driver is not installed ------------------------------------------------


def _without_redis(tmp_path: Path) -> dict[str, str]:
    """An interpreter on which `import redis` fails as it does after a plain install."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoRedis:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'redis' or name.startswith('redis.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoRedis())\n"
    )
    return {"PYTHONPATH": str(hooks)}


def test_missing_driver_names_the_extra(tmp_path: Path) -> None:
    env = _without_redis(tmp_path)
    result = photon(["info", "-db.backend", "redis"], tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert "pip install 'photon-eventstore[redis]'" in result.stderr
    assert "Traceback" not in result.stderr
    listing = photon(["backends"], tmp_path, **env)
    assert "redis [needs: pip install 'photon-eventstore[redis]']" in listing.stdout
    assert "sqlite (alias h2) [installed]" in listing.stdout


# -- 5. an unknown backend, at once ------------------------------------------------------------


def test_unknown_backend_is_reported_first_with_the_closest_name(tmp_path: Path) -> None:
    result = photon(["-db.backend", "sqlte", "-rest.port", "0"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]], result.stderr  # one line, no effective configuration before it
    assert "unknown db.backend 'sqlte'; did you mean 'sqlite'?" in lines[0]


# -- 6. a backup does not overwrite a file unless asked ----------------------------------------


def test_backup_refuses_an_existing_file_without_force(tmp_path: Path) -> None:
    store = ["-db.backend", "sqlite", "-sqlite.path", str(tmp_path / "p.db")]
    assert photon(["emit", *store, '{"stream-name":"s","event-type":"t","payload":{}}'], tmp_path).returncode == 0
    target = tmp_path / "backup.jsonl"
    target.write_text("precious\n")
    refused = photon(["backup", str(target), *store], tmp_path)
    assert refused.returncode == 2 and "already exists; add -force" in refused.stderr
    assert target.read_text() == "precious\n"
    forced = photon(["backup", str(target), "-force", *store], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert orjson.loads(target.read_text().splitlines()[0])["stream-name"] == "s"


# -- 7. a port in use is named by its key ------------------------------------------------------


@pytest.mark.parametrize("key", ["rest.port", "events.port", "projections.port"])
def test_port_in_use_names_its_key(tmp_path: Path, key: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ports = {"rest.port": "0", "events.port": "0", "projections.port": "0", key: port}
        args = ["-rest.host", "127.0.0.1", "-sqlite.path", str(tmp_path / "p.db"), "-parallel.projections", "1"]
        for k, v in ports.items():
            args += [f"-{k}", v]
        result = photon(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"photon: error: cannot listen on 127.0.0.1:{port} ({key})" in result.stderr
    assert "Traceback" not in result.stderr


# -- 10. a store that vanishes at exit ---------------------------------------------------------


def test_emit_into_the_memory_backend_warns(tmp_path: Path) -> None:
    result = photon(["emit", "-db.backend", "memory", '{"stream-name":"s","event-type":"t","payload":{}}'], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: the memory backend keeps events only in this process" in result.stderr
    quiet = photon(
        [
            "emit",
            "-db.backend",
            "sqlite",
            "-sqlite.path",
            str(tmp_path / "p.db"),
            '{"stream-name":"s","event-type":"t","payload":{}}',
        ],
        tmp_path,
    )
    assert "warning" not in quiet.stderr


# -- 8. the example projections come with the package; the log says which folder was read ------


def test_the_log_names_the_projection_folder_and_the_shipped_examples(tmp_path: Path) -> None:
    from photon.projections.folder import EXAMPLES_FOLDER

    assert sorted(p.name for p in EXAMPLES_FOLDER.iterdir() if p.suffix in (".hy", ".py")) == [
        "account_balances.hy",
        "events_per_stream.hy",
        "events_per_type.py",
        "last_orders.py",
    ]
    args = ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0"]
    elsewhere = ServerProcess(tmp_path, args)  # no ./projections here
    try:
        log = elsewhere.output()
    finally:
        elsewhere.terminate()
    assert f"projections.path {tmp_path / 'projections'} does not exist: no projection files loaded" in log
    assert f"-projections.path {EXAMPLES_FOLDER} loads them" in log
    examples = tmp_path / "ex"
    examples.mkdir()
    served = ServerProcess(examples, [*args, "-projections.path", str(EXAMPLES_FOLDER)])
    try:
        assert f"projections.path {EXAMPLES_FOLDER}: 4 projection files (account_balances.hy," in served.output()
        with PhotonClient(served.url) as client:
            names = {p["projection-name"] for p in client.projections()}
        assert {"account-balances", "events-per-stream"} <= names
    finally:
        served.terminate()
