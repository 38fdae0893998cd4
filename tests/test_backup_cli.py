"""`photon backup` and `photon restore`, run as the installed command."""

from __future__ import annotations

import fcntl
import gzip
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from photon.core.store import EventStore
from photon.ops.backup_files import atomic_output

from .backup_support import TARGET_CONFIGS, backup_bytes, build_source, delete_the_old_way, everything
from .live import ServerProcess

PHOTON = str(Path(sys.executable).with_name("photon"))


def options(config: dict[str, Any]) -> list[str]:
    return [item for key, value in config.items() for item in (f"-{key}", str(value))]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PHOTON_")}


def photon(*args: str, cwd: Path, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [PHOTON, *args], cwd=cwd, input=stdin, capture_output=True, env=env(), timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"photon {' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}")
    return result


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Any]:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "source.db")}
    with EventStore.open(config) as store:
        build_source(store)
    return config


def read_all(config: dict[str, Any]) -> list[Any]:
    with EventStore.open(config, read_only=True) as store:
        return everything(store)


@pytest.mark.parametrize("target", ["sqlite", "file", "sql"])
@pytest.mark.parametrize("name", ["backup.jsonl", "backup.jsonl.gz"])
def test_backup_then_restore_into_another_backend(
    source: dict[str, Any], target: str, name: str, tmp_path: Path
) -> None:
    done = photon("backup", name, *options(source), cwd=tmp_path)
    original = read_all(source)
    assert f"backed up {len(original)} events" in done.stderr.decode()
    raw = (tmp_path / name).read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw == b"".join(e.data + b"\n" for e in original)  # the stored JSON, line by line
    assert not list(tmp_path.glob("*.partial"))

    config = TARGET_CONFIGS[target](tmp_path)
    restored = photon("restore", name, *options(config), cwd=tmp_path)
    assert f"restored {len(original)} events (order-ids 1..{original[-1].order_id})" in restored.stderr.decode()
    assert read_all(config) == original


def test_backup_to_standard_output_piped_into_restore(source: dict[str, Any], tmp_path: Path) -> None:
    target = TARGET_CONFIGS["file"](tmp_path)
    command = f"{PHOTON} backup - {' '.join(options(source))} | {PHOTON} restore - {' '.join(options(target))}"
    result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, env=env(), timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert read_all(target) == read_all(source)


def test_gzip_on_standard_input_is_recognised(source: dict[str, Any], tmp_path: Path) -> None:
    photon("backup", "plain.jsonl", *options(source), cwd=tmp_path)
    packed = gzip.compress((tmp_path / "plain.jsonl").read_bytes())
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    photon("restore", "-", *options(target), cwd=tmp_path, stdin=packed)
    assert read_all(target) == read_all(source)


def test_replay_output_restores_through_a_pipe(source: dict[str, Any], tmp_path: Path) -> None:
    """`photon replay __all__ -stream-type cold > backup` then `cat backup | photon restore -`."""
    if b"replay" not in photon("--help", cwd=tmp_path).stdout:
        pytest.skip("this build has no `photon replay` command")
    replay = photon("replay", "__all__", "-stream-type", "cold", *options(source), cwd=tmp_path)
    (tmp_path / "backup").write_bytes(replay.stdout)
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    result = subprocess.run(
        f"cat backup | {PHOTON} restore - {' '.join(options(target))}",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        env=env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert read_all(target) == read_all(source)


def test_incremental_backup_with_from(source: dict[str, Any], tmp_path: Path) -> None:
    photon("backup", "full.jsonl", *options(source), cwd=tmp_path)
    with EventStore.open(source) as store:
        mark = store.last_order_id()
        store.append([{"stream-name": "orders-001", "event-type": "Later", "payload": {}}] * 3)
        delete_the_old_way(store, "orders-005")
    photon("backup", "more.jsonl.gz", "-from", str(mark + 1), *options(source), cwd=tmp_path)
    lines = gzip.decompress((tmp_path / "more.jsonl.gz").read_bytes()).splitlines()
    assert len(lines) == 4  # three events and the stream-deleted record

    target = TARGET_CONFIGS["sqlite"](tmp_path)
    photon("restore", "full.jsonl", *options(target), cwd=tmp_path)
    photon("restore", "more.jsonl.gz", *options(target), cwd=tmp_path)
    assert read_all(target) == read_all(source)


def test_restore_into_a_non_empty_store_is_refused(source: dict[str, Any], tmp_path: Path) -> None:
    photon("backup", "b.jsonl", *options(source), cwd=tmp_path)
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    with EventStore.open(target) as store:
        store.append({"stream-name": "mine", "event-type": "x", "payload": {}})
        before = everything(store)
    result = photon("restore", "b.jsonl", *options(target), cwd=tmp_path, check=False)
    assert result.returncode == 2
    message = result.stderr.decode()
    assert "the store is not empty: it holds events up to order-id 1" in message
    assert "nothing was restored, the store is as it was" in message
    assert read_all(target) == before


@pytest.mark.parametrize("gzipped", [False, True])
def test_truncated_backup_is_refused_with_its_line_number(
    source: dict[str, Any], tmp_path: Path, gzipped: bool
) -> None:
    photon("backup", "b.jsonl", *options(source), cwd=tmp_path)
    data = (tmp_path / "b.jsonl").read_bytes()
    count = data.count(b"\n")
    cut = data[: len(data) - 30]  # the last line loses its end
    (tmp_path / "cut").write_bytes(gzip.compress(cut) if gzipped else cut)
    target = TARGET_CONFIGS["file"](tmp_path)
    result = photon("restore", "cut", *options(target), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert f"line {count}: not valid JSON" in result.stderr.decode()
    assert read_all(target) == []


def test_cut_gzip_file_is_refused(source: dict[str, Any], tmp_path: Path) -> None:
    photon("backup", "b.jsonl.gz", *options(source), cwd=tmp_path)
    data = (tmp_path / "b.jsonl.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    result = photon("restore", "cut.gz", *options(target), cwd=tmp_path, check=False)
    assert result.returncode == 2
    message = result.stderr.decode()
    assert "cannot read the file on (Compressed file ended before the end-of-stream marker" in message
    assert "nothing was restored, the store is as it was" in message
    assert read_all(target) == []
    result = photon("restore", "-", *options(target), cwd=tmp_path, stdin=data[: len(data) // 2], check=False)
    assert result.returncode == 2
    assert "cannot read standard input (Compressed file ended" in result.stderr.decode()
    assert read_all(target) == []


def test_backup_into_a_missing_folder_fails_cleanly(source: dict[str, Any], tmp_path: Path) -> None:
    result = photon("backup", "no/such/folder/b.jsonl", *options(source), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "cannot write the backup 'no/such/folder/b.jsonl'" in result.stderr.decode()


def test_corrupt_line_from_standard_input(source: dict[str, Any], tmp_path: Path) -> None:
    lines = photon("backup", "-", *options(source), cwd=tmp_path).stdout.splitlines(keepends=True)
    lines[41] = b'{"stream-name": "x"}\n'
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    result = photon("restore", "-", *options(target), cwd=tmp_path, stdin=b"".join(lines), check=False)
    assert result.returncode == 2
    assert "line 42: missing field 'order-id'" in result.stderr.decode()
    assert read_all(target) == []


def test_missing_backup_file(tmp_path: Path) -> None:
    result = photon(
        "restore", "nothing-here.jsonl", *options(TARGET_CONFIGS["sqlite"](tmp_path)), cwd=tmp_path, check=False
    )
    assert result.returncode == 2
    assert "no backup file 'nothing-here.jsonl'" in result.stderr.decode()


def test_backup_runs_next_to_a_writer(source: dict[str, Any], tmp_path: Path) -> None:
    with EventStore.open(source) as store:  # holds the writer lock, like a running server
        store.append({"stream-name": "live", "event-type": "x", "payload": {}})
        expected = backup_bytes(store)
        photon("backup", "b.jsonl", *options(source), cwd=tmp_path)
        store.append({"stream-name": "live", "event-type": "x", "payload": {}})
    assert (tmp_path / "b.jsonl").read_bytes() == expected


def run_on_a_terminal(args: list[str], cwd: Path) -> str:
    """Run photon with standard error on a pseudo-terminal; returns what it showed there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows, 120 columns
    process = subprocess.Popen([PHOTON, *args], cwd=cwd, stderr=follower, stdout=subprocess.DEVNULL, env=env())
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        shown += data
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


def test_progress_bar_on_a_terminal_and_quiet_otherwise(source: dict[str, Any], tmp_path: Path) -> None:
    count = len(read_all(source))
    shown = run_on_a_terminal(["backup", "b.jsonl", *options(source)], tmp_path)
    assert "backup: 100%" in shown
    assert f"{count / 1000:.2f}k/{count / 1000:.2f}k" in shown  # the total ends at the events written
    assert "events/s" in shown

    target = TARGET_CONFIGS["sqlite"](tmp_path)
    shown = run_on_a_terminal(["restore", "b.jsonl", *options(target)], tmp_path)
    assert "restore: 100%" in shown

    quiet = photon("backup", "c.jsonl", *options(source), cwd=tmp_path).stderr.decode()
    assert "%" not in quiet and "\r" not in quiet
    assert quiet.count("\n") == 1  # only the closing summary


def test_atomic_output_leaves_nothing_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "b.jsonl.gz"
    target.write_bytes(b"the previous backup")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write(b"half of it\n")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"the previous backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.jsonl.gz"]


@pytest.mark.slow
def test_killed_backup_leaves_no_file(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "big.db"), "sqlite.synchronous": "OFF"}
    with EventStore.open(config) as store:
        for start in range(0, 300_000, 5000):
            store.append(
                [
                    {"stream-name": f"s{n % 100}", "event-type": "x", "payload": {"n": n, "pad": "x" * 200}}
                    for n in range(start, start + 5000)
                ]
            )
    process = subprocess.Popen(
        [PHOTON, "backup", "big.jsonl.gz", *options(config)], cwd=tmp_path, env=env(), stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(tmp_path.glob(".big.jsonl.gz.*.partial"))
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    else:
        raise AssertionError("the backup never started writing")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "big.jsonl.gz").exists()


def test_backup_from_a_running_server_and_refusals(server_process: ServerProcess, tmp_path: Path) -> None:
    """`photon backup -url` replays __all__ from a live `photon` process; restoring it clones the store."""
    url = server_process.url
    events = b"".join(
        orjson.dumps({"stream-name": f"s{n % 3}", "event-type": "e", "payload": {"n": n}}) + b"\n" for n in range(50)
    )
    photon("emit", "-url", url, cwd=tmp_path, stdin=events)
    photon("backup", "remote.jsonl", "-url", url, cwd=tmp_path)
    lines = (tmp_path / "remote.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["order-id"] for line in lines][-50:] == list(range(len(lines) - 49, len(lines) + 1))
    photon("backup", "tail.jsonl", "-url", url, "-from", str(len(lines) - 4), cwd=tmp_path)
    assert len((tmp_path / "tail.jsonl").read_bytes().splitlines()) == 5
    target = TARGET_CONFIGS["sqlite"](tmp_path)
    photon("restore", "remote.jsonl", *options(target), cwd=tmp_path)
    assert [e.data for e in read_all(target)] == lines
    wrong = photon("backup", "x.jsonl", "-url", url, "-admin.pass", "nope", cwd=tmp_path, check=False)
    assert wrong.returncode != 0 and b"not authorized" in wrong.stderr and not (tmp_path / "x.jsonl").exists()


def test_a_restore_killed_midway_leaves_a_prefix_and_the_store_gets_its_indexes_back(tmp_path: Path) -> None:
    # A backup big enough to be killed while it loads: 300,000 events over 100 streams.
    backup = tmp_path / "big.jsonl"
    count = 300_000
    with backup.open("wb") as out:
        for n in range(1, count + 1):
            out.write(
                orjson.dumps(
                    {
                        "order-id": n,
                        "stream-version": (n - 1) // 100 + 1,
                        "stream-name": f"s-{(n - 1) % 100}",
                        "event-type": "t",
                        "payload": {"n": n},
                        "id": f"id-{n}",
                        "event-time": n,
                    }
                )
                + b"\n"
            )
    target = tmp_path / "target.db"
    child = subprocess.Popen(
        [PHOTON, "restore", str(backup), "-sqlite.path", str(target), "-batch", "5000"],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # The load writes into the database file (a rollback journal), or into its log when another
    # process held the file: some batches are in when either has grown.
    files = [target, target.with_name("target.db-wal")]

    def size(path: Path) -> int:
        # The log comes and goes as the restore switches journal modes: it can vanish between a
        # check for it and a look at its size.
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if max(size(f) for f in files) > 4_000_000:
            break
        time.sleep(0.005)
    assert child.poll() is None, f"the restore ended before it could be killed: {child.stderr.read()!r}"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)

    with EventStore.open({"db.backend": "sqlite", "sqlite.path": str(target)}) as store:
        writer = store.backend._writer_connection().driver_connection
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # back to the log
        stored = list(store.read())
        assert 0 < len(stored) < count
        assert [e.order_id for e in stored] == list(range(1, len(stored) + 1))  # a prefix, no holes
        assert len(stored) % 5000 == 0  # whole batches only
        # The indexes are back: a repeated id is refused again.
        twin = stored[0]._replace(order_id=len(stored) + 1, stream_name="other", stream_version=1)
        with pytest.raises(Exception, match="(?i)unique|already"):
            store.backend.append([twin])


def test_backup_carries_group_and_consumer_positions(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "with-groups.db")}
    with EventStore.open(config) as store:
        store.groups.create({"group-name": "g", "max-in-flight": 100})
        store.append([{"stream-name": "s", "event-type": "t", "payload": {"n": i}} for i in range(10)])
        with store.groups.join("g") as member:
            delivered = []
            while batch := member.take(1.0):
                delivered.extend(d.event.order_id for d in batch)
            member.ack(delivered[:4] + delivered[6:])  # two left in flight, and acks above them
        store.write_checkpoint("consumer:c", {"stream": "s", "order-id": 5})
    photon("backup", "b.jsonl", *options(config), cwd=tmp_path)
    first = orjson.loads((tmp_path / "b.jsonl").read_bytes().splitlines()[0])
    assert set(first["photon-positions"]) == {"group:g", "consumer:c"}

    target = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "restored.db")}
    restored = photon("restore", "b.jsonl", *options(target), cwd=tmp_path)
    assert "restored 2 positions" in restored.stderr.decode()
    with EventStore.open(target) as store:
        assert store.read_checkpoint("consumer:c") == {"stream": "s", "order-id": 5}
        with store.groups.join("g") as member:
            again = []
            while batch := member.take(1.0):
                again.extend(d.event.order_id for d in batch)
        assert again == delivered[4:6]  # the restored group resumes where it was


def test_a_cut_or_damaged_positions_line_is_a_bad_line_1_and_restores_nothing(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "with-group.db")}
    with EventStore.open(config) as store:
        store.groups.create({"group-name": "g"})
        store.append([{"stream-name": "s", "event-type": "t", "payload": {"n": i}} for i in range(3)])
    photon("backup", "b.jsonl", *options(config), cwd=tmp_path)
    whole = (tmp_path / "b.jsonl").read_bytes()
    assert whole.startswith(b'{"photon-positions":')
    cut_at = whole.index(b"\n") // 2
    cases = {
        "cut.jsonl": (whole[:cut_at], "line 1: not valid JSON"),
        "cut.jsonl.gz": (gzip.compress(whole)[:40], "line 1: cannot read the file on"),
        "bad.jsonl": (b'{"photon-positions": 5}\n' + whole.split(b"\n", 1)[1], "line 1: photon-positions must be"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        target = tmp_path / f"{name}.db"
        result = photon("restore", name, "-sqlite.path", str(target), cwd=tmp_path, check=False)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and message in stderr, (name, stderr)
        assert "nothing was restored, the store is as it was" in stderr and "Traceback" not in stderr
        assert not target.exists(), name


def test_a_backup_without_events_restores_no_positions(tmp_path: Path) -> None:
    config = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "source.db")}
    with EventStore.open(config) as store:
        store.append([{"stream-name": "s", "event-type": "t", "payload": {"n": i}} for i in range(3)])
        store.write_checkpoint("consumer:c", {"stream": "s", "order-id": 3})
    photon("backup", "after.jsonl", "-from", "99", *options(config), cwd=tmp_path)
    assert (tmp_path / "after.jsonl").read_bytes().startswith(b'{"photon-positions":')
    target = {"db.backend": "sqlite", "sqlite.path": str(tmp_path / "empty.db")}
    restored = photon("restore", "after.jsonl", *options(target), cwd=tmp_path)
    stderr = restored.stderr.decode()
    assert "left out the backup's positions (1): it holds no events" in stderr and "restored 1 positions" not in stderr
    with EventStore.open(target) as store:
        assert store.last_order_id() == 0 and store.read_checkpoint("consumer:c") is None
