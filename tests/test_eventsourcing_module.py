"""photon.eventsourcing beyond the library's own test cases: exact bytes, the mapping onto Photon
events, atomic inserts over several aggregates, notification ids in a shared store, settings."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import Environment

from photon.core.errors import ConfigError, UnknownBackend
from photon.core.store import EventStore
from photon.eventsourcing import PhotonFactory
from photon.eventsourcing.mapping import version_and_state

from .live import LiveServer, make_config

STATES = [
    b'{"amount":{"_type_":"decimal_str","_data_":"10.00"},"owner":"Ada"}',  # the JSON transcoder's own
    b'{"a": 1}',  # JSON Photon would write back without the space
    b'{"x":1e+16}',  # a float Photon would write as 1e16
    b'{"id":"},\\"id\\":\\"","event-time":1}',  # looks like the end of a Photon event
    b"{}",
    b"",
    b"\x00\xff\xfe not utf-8",
    zlib.compress(b'{"amount":"1.00"}'),
    b"[1,2,3]",
]


@pytest.fixture(params=["embedded", "remote"])
def env(request: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "embedded":
        yield {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "photon.db")}
        return
    server = LiveServer(make_config(tmp_path))
    try:
        yield {"PHOTON_URL": server.url}
    finally:
        server.stop()


def factory(env: dict[str, str], name: str = "Bank", **more: str) -> PhotonFactory:
    return PhotonFactory(Environment(name, {**env, **more}))


def test_stored_bytes_come_back_exactly(env: dict[str, str]) -> None:
    made = factory(env)
    try:
        recorder = made.process_recorder()
        events = [StoredEvent(uuid4(), 1, "m:Ev", state) for state in STATES]
        ids = recorder.insert_events(events)
        assert ids is not None and len(ids) == len(STATES)
        for event in events:
            assert recorder.select_events(event.originator_id) == [event]
        notifications = recorder.select_notifications(start=None, limit=100)
        assert [n.state for n in notifications] == STATES
        assert [n.id for n in notifications] == list(ids)
        with recorder.subscribe(gt=None) as subscription:
            received = [next(subscription).state for _ in STATES]
        assert received == STATES
    finally:
        made.close()


def test_dcb_data_comes_back_exactly_and_a_json_object_is_the_payload(env: dict[str, str]) -> None:
    from eventsourcing.dcb.api import DCBEvent, DCBQuery, DCBQueryItem

    made = factory(env, name="Courses")
    try:
        recorder = made.dcb_recorder()
        for data in STATES:
            recorder.append([DCBEvent("Registered", data, ["course:c1"])])
        query = DCBQuery([DCBQueryItem(types=["Registered"], tags=["course:c1"])])
        assert [e.event.data for e in recorder.read(query)] == STATES
        first = made.access.read_stream("Courses", 1, 2)  # as projections and replays see them
        assert orjson.loads(first[0].data)["payload"] == {"data": orjson.loads(STATES[0])}
        assert set(orjson.loads(first[1].data)["payload"]) == {"data-base64"}  # JSON Photon writes differently
    finally:
        made.close()


def test_encrypted_and_compressed_state_through_the_librarys_mapper(env: dict[str, str]) -> None:
    from eventsourcing.cipher import AESCipher
    from eventsourcing.domain import Aggregate

    made = factory(
        env,
        COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor",
        CIPHER_TOPIC="eventsourcing.cipher:AESCipher",
        CIPHER_KEY=AESCipher.create_key(16),
    )
    try:
        from eventsourcing.persistence import DatetimeAsISO, UUIDAsHex

        transcoder = made.transcoder()
        transcoder.register(UUIDAsHex())  # type: ignore[attr-defined]
        transcoder.register(DatetimeAsISO())  # type: ignore[attr-defined]
        store = made.event_store(mapper=made.mapper(transcoder))
        aggregate = Aggregate()
        aggregate.trigger_event(Aggregate.Event)
        recordings = store.put(aggregate.collect_events())
        assert len(recordings) == 2
        stored = made.application_recorder().select_events(aggregate.id)
        assert [s.state for s in stored] == [r.notification.state for r in recordings]
        assert [e.originator_version for e in store.get(aggregate.id)] == [1, 2]
    finally:
        made.close()


def test_events_are_ordinary_photon_events(tmp_path: Path) -> None:
    env = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "photon.db")}
    made = factory(env, name="BankAccounts")
    account = uuid4()
    try:
        made.application_recorder().insert_events(
            [
                StoredEvent(account, 1, "bank:Account.Opened", b'{"owner":"Ada"}'),
                StoredEvent(account, 2, "bank:Account.Deposited", b"\x01binary"),
            ]
        )
        made.aggregate_recorder("snapshots").insert_events([StoredEvent(account, 2, "bank:Snapshot", b'{"s":1}')])
        from eventsourcing.persistence import Tracking

        made.process_recorder().insert_events([], tracking=Tracking("Upstream", 7))
    finally:
        made.close()
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "photon.db"), read_only=True) as store:
        events = [e.to_dict() for e in store.read()]
    assert [(e["stream-name"], e["stream-version"], e["event-type"]) for e in events] == [
        (f"BankAccounts-{account}", 1, "bank:Account.Opened"),
        (f"BankAccounts-{account}", 2, "bank:Account.Deposited"),
        (f"BankAccounts.snapshots-{account}", 1, "bank:Snapshot"),
        ("BankAccounts.tracking-Upstream", 1, "eventsourcing:Tracking"),
    ]
    assert events[0]["payload"] == {"originator-version": 1, "state": {"owner": "Ada"}}
    assert events[1]["payload"] == {"originator-version": 2, "state-base64": "AWJpbmFyeQ=="}
    assert events[3]["payload"] == {"notification-id": 7}
    assert version_and_state(orjson.dumps(events[1])) == (2, b"\x01binary")


def test_an_insert_over_several_aggregates_is_all_or_nothing(env: dict[str, str]) -> None:
    first, second = factory(env), factory(env)
    try:
        one, other = first.application_recorder(), second.application_recorder()
        a, b = uuid4(), uuid4()
        one.insert_events([StoredEvent(a, 1, "t", b"{}"), StoredEvent(b, 1, "t", b"{}")])
        # The other writer knows nothing of b's first event: its insert must fail as a whole.
        with pytest.raises(IntegrityError):
            other.insert_events([StoredEvent(a, 2, "t", b"{}"), StoredEvent(b, 1, "t", b'{"again":1}')])
        assert [e.originator_version for e in one.select_events(a)] == [1]
        # A writer whose picture of a stream is stale learns its head and goes on.
        one.insert_events([StoredEvent(b, 2, "t", b"{}")])
        other.insert_events([StoredEvent(a, 2, "t", b"{}"), StoredEvent(b, 3, "t", b"{}")])
        assert [e.originator_version for e in one.select_events(b)] == [1, 2, 3]
        # The same version from two writers: the second is refused.
        with pytest.raises(IntegrityError):
            one.insert_events([StoredEvent(a, 2, "t", b"{}")])
    finally:
        first.close()
        second.close()


def test_notification_ids_are_order_ids_in_a_shared_store(tmp_path: Path) -> None:
    env = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "photon.db")}
    bank, shop = factory(env, name="Bank"), factory(env, name="Shop")
    try:
        store = bank.access.store  # type: ignore[attr-defined]
        store.append_internal("__config__", "projection-registered", {"projection-name": "x"})
        banking, shopping = bank.application_recorder(), shop.application_recorder()
        assert banking.max_notification_id() is None
        shopping.insert_events([StoredEvent(uuid4(), 1, "shop:Ordered", b"{}")])
        ids = banking.insert_events([StoredEvent(uuid4(), 1, "bank:Opened", b"{}")])
        shopping.insert_events([StoredEvent(uuid4(), 1, "shop:Ordered", b"{}")])
        assert ids == [3]
        assert [n.id for n in banking.select_notifications(None, 10)] == [3]
        assert [n.id for n in shopping.select_notifications(None, 10)] == [2, 4]
        assert [n.id for n in shopping.select_notifications(3, 10)] == [4]
        assert banking.max_notification_id() == 3
        assert shopping.max_notification_id() == 4
    finally:
        bank.close()
        shop.close()


def test_text_originator_ids(tmp_path: Path) -> None:
    env = {"PHOTON_DB_BACKEND": "memory", "ORIGINATOR_ID_TYPE": "text"}
    made = factory(env)
    try:
        recorder = made.application_recorder()
        recorder.insert_events([StoredEvent("account-7", 1, "t", b"{}")])
        assert recorder.select_events("account-7")[0].originator_id == "account-7"
        assert recorder.select_notifications(None, 1)[0].originator_id == "account-7"
    finally:
        made.close()


def test_settings_are_read_as_the_server_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    # The application's own prefix comes first, as for every library setting.
    made = factory({"BANK_PHOTON_SQLITE_PATH": str(path), "PHOTON_SQLITE_PATH": str(tmp_path / "other.db")})
    try:
        made.application_recorder().insert_events([StoredEvent(uuid4(), 1, "t", b"{}")])
    finally:
        made.close()
    assert path.exists() and not (tmp_path / "other.db").exists()


def test_an_unknown_photon_variable_is_reported_as_the_server_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A mistyped name would otherwise leave its default in force unsaid (a store in another file).
    settings = {
        "PHOTON_DB_BACKEND": "sqlite",
        "PHOTON_SQLITE_PATH": str(tmp_path / "bank.db"),
        "PHOTON_SQLITE_SYNCHRONUS": "OFF",
        "BANK_PHOTON_COMIT_BATCH_MAX": "5",
        "PHOTON_CATEGORY": "Accounts",  # the module's own settings are not the server's, and known
    }
    with caplog.at_level(logging.WARNING, logger="photon.config"):
        factory(settings).close()
    warned = " ".join(caplog.messages)
    assert "PHOTON_SQLITE_SYNCHRONUS (did you mean PHOTON_SQLITE_SYNCHRONOUS?)" in warned
    assert "PHOTON_COMIT_BATCH_MAX (did you mean PHOTON_COMMIT_BATCH_MAX?)" in warned
    assert "PHOTON_CATEGORY" not in warned and "PHOTON_SQLITE_PATH " not in warned


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"PHOTON_DB_BACKEND": "nosuch"}, UnknownBackend, "available backends"),
        ({"PHOTON_DB_BACKEND": "memory", "PHOTON_COMMIT_BATCH_MAX": "many"}, ConfigError, "commit.batch.max"),
        (
            {"PHOTON_DB_BACKEND": "memory", "PHOTON_CATEGORY": "bank-accounts"},
            ValueError,
            "PHOTON_CATEGORY: .*without '-'",
        ),
        ({"PHOTON_DB_BACKEND": "memory", "ORIGINATOR_ID_TYPE": "int"}, ValueError, "ORIGINATOR_ID_TYPE"),
        # Without a scheme httpx would read "localhost" as one and call it unsupported.
        ({"PHOTON_URL": "localhost:3000"}, ValueError, "PHOTON_URL: the server's URL must be http:// or https://"),
        # The CA file is named, and the setting that gave it (not a bare "No such file or directory").
        (
            {"PHOTON_URL": "https://127.0.0.1:9", "PHOTON_TLS_CA": "/nonexistent/ca.pem"},
            ValueError,
            "PHOTON_TLS_CA: cannot use '/nonexistent/ca.pem' as the CA file",
        ),
        # The library's SQLite module takes ':memory:'; Photon's store needs a file, and says what to use.
        (
            {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": ":memory:"},
            ConfigError,
            "sqlite.path.*db.backend=memory",
        ),
    ],
)
def test_bad_settings_are_refused_naming_them(settings: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        factory(settings)


def test_an_application_name_that_is_no_category_asks_for_photon_category() -> None:
    with pytest.raises(ValueError, match="'bank-accounts' must be .*; set PHOTON_CATEGORY"):
        factory({"PHOTON_DB_BACKEND": "memory"}, name="bank-accounts")


def test_a_server_that_cannot_be_reached_is_named() -> None:
    from photon.core.errors import ServerUnreachable

    with pytest.raises(ServerUnreachable, match="127.0.0.1:9"):
        factory({"PHOTON_URL": "http://127.0.0.1:9"})


def test_refused_credentials_name_the_server_and_the_settings(tmp_path: Path) -> None:
    from photon.core.errors import NotAuthorized

    server = LiveServer(make_config(tmp_path))
    try:
        with pytest.raises(NotAuthorized, match="refused user 'admin'.*PHOTON_ADMIN_PASS") as refused:
            factory({"PHOTON_URL": server.url, "PHOTON_ADMIN_PASS": "wrong"})
        assert server.url.split("//")[1] in str(refused.value)
    finally:
        server.stop()


def test_a_subscription_whose_server_stops_raises_the_librarys_error(tmp_path: Path) -> None:
    # A live replay ends only when the subscriber stops it: when the server ends it (it stopped,
    # or restarted), the subscription says so, instead of waiting for ever for events that
    # cannot come (a runner's `run_forever` then raises it).
    import threading

    from eventsourcing.persistence import OperationalError

    server = LiveServer(make_config(tmp_path))
    made = factory({"PHOTON_URL": server.url})
    running = True
    try:
        recorder = made.application_recorder()
        recorder.insert_events([StoredEvent(uuid4(), 1, "m:Ev", b"{}")])
        subscription = recorder.subscribe(gt=None)
        assert next(subscription).id == 1
        server.stop()
        running = False
        outcome: list[BaseException] = []

        def read() -> None:
            try:
                next(subscription)
            except BaseException as exc:  # what the subscriber sees, whatever it is
                outcome.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(20)
        if reader.is_alive():
            subscription.stop()  # it was still waiting: let the thread end
            reader.join(10)
        assert outcome and isinstance(outcome[0], OperationalError), outcome
        assert server.url.split("//")[1] in str(outcome[0]) and "ended the live replay" in str(outcome[0])
        with pytest.raises(OperationalError):
            next(subscription)  # and again: the replay is over
    finally:
        made.close()
        if running:
            server.stop()


def test_refused_input_is_the_librarys_error_and_nothing_is_stored(env: dict[str, str]) -> None:
    from eventsourcing.persistence import DataError, ProgrammingError

    made = factory(env)
    try:
        recorder = made.application_recorder()
        small, large = uuid4(), uuid4()
        with pytest.raises(DataError, match="payload.max.bytes|over"):
            recorder.insert_events([StoredEvent(small, 1, "t", b"{}"), StoredEvent(large, 1, "t", b"x" * 1_100_000)])
        assert recorder.select_events(small) == [] and recorder.max_notification_id() is None
        with pytest.raises(DataError, match="event-type"):
            recorder.insert_events([StoredEvent(small, 1, "", b"{}")])
        with pytest.raises(ProgrammingError, match="at least one event"):
            made.dcb_recorder().append([])
        assert recorder.select_notifications(None, 10) == []
    finally:
        made.close()


def test_sparse_snapshots_and_long_tracking_streams_are_read_from_their_end(env: dict[str, str]) -> None:
    from eventsourcing.persistence import Tracking

    writer, reader = factory(env), factory(env)
    try:
        snapshots = writer.aggregate_recorder("snapshots")
        aggregate = uuid4()
        for version in range(5, 255, 5):
            snapshots.insert_events([StoredEvent(aggregate, version, "m:Snapshot", b'{"v":%d}' % version)])
        fresh = reader.aggregate_recorder("snapshots")  # knows nothing of the stream yet
        assert [s.originator_version for s in fresh.select_events(aggregate, desc=True, limit=1)] == [250]
        assert [s.originator_version for s in fresh.select_events(aggregate, desc=True, limit=1, lte=123)] == [120]
        assert [s.originator_version for s in fresh.select_events(aggregate, desc=True, gt=240, limit=5)] == [250, 245]
        assert fresh.select_events(aggregate, desc=True, lte=4, limit=1) == []
        assert fresh.select_events(aggregate, lte=12)[-1].state == b'{"v":10}'

        process = writer.process_recorder()
        for position in range(1, 101):
            process.insert_events([], tracking=Tracking("Upstream", position * 2))
        assert reader.process_recorder().max_tracking_id("Upstream") == 200
        for count in (0, 1, 2, 3, 7, 64, 65, 100):
            stream = f"probe{count}"
            if count:
                reader.access.append([{"stream-name": stream, "event-type": "t", "payload": {}}] * count, {})
            assert reader.access.stream_version(stream) == count
    finally:
        writer.close()
        reader.close()


def test_over_http_a_streams_end_is_found_in_one_request(tmp_path: Path) -> None:
    from photon.eventsourcing.access import RemoteAccess

    server = LiveServer(make_config(tmp_path))
    made = factory({"PHOTON_URL": server.url})
    try:
        access = made.access
        assert isinstance(access, RemoteAccess)
        access.append([{"stream-name": "long", "event-type": "t", "payload": {}}] * 300, {})
        sent: list[str] = []
        request = access.short.request

        def counted(method: str, path: str, *args: Any, **kwargs: Any) -> bytes:
            sent.append(path)
            return request(method, path, *args, **kwargs)

        access.short.request = counted  # type: ignore[method-assign]
        assert access.stream_version("long") == 300
        assert access.stream_version("none") == 0
        assert len(sent) == 2  # one each, not a search over the stream
    finally:
        made.close()
        server.stop()


def test_a_photon_backup_restores_what_the_library_wrote(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from eventsourcing.persistence import Tracking

    photon = shutil.which("photon", path=str(Path(sys.executable).parent)) or "photon"
    source = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "source.db")}
    target = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "target.db")}
    account = uuid4()
    made = factory(source)
    try:
        made.process_recorder().insert_events(
            [StoredEvent(account, 1, "bank:Opened", b'{"owner":"Ada"}'), StoredEvent(account, 2, "bank:X", b"\x00")],
            tracking=Tracking("Upstream", 5),
        )
        made.aggregate_recorder("snapshots").insert_events([StoredEvent(account, 2, "bank:Snapshot", b"{}")])
    finally:
        made.close()
    for command in (["backup", "b.jsonl"], ["restore", "b.jsonl"]):
        path = source if command[0] == "backup" else target
        argv = [photon, *command, "-db.backend", "sqlite", "-sqlite.path", path["PHOTON_SQLITE_PATH"]]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    before, after = factory(source), factory(target)
    try:
        for made in (before, after):
            assert made.process_recorder().max_tracking_id("Upstream") == 5
        assert after.application_recorder().select_notifications(
            None, 10
        ) == before.application_recorder().select_notifications(None, 10)
        assert [s.state for s in after.application_recorder().select_events(account)] == [b'{"owner":"Ada"}', b"\x00"]
        assert (
            after.aggregate_recorder("snapshots").select_events(account, desc=True, limit=1)[0].topic == "bank:Snapshot"
        )
    finally:
        before.close()
        after.close()


def test_notifications_come_back_whatever_the_stored_layout(env: dict[str, str], tmp_path: Path) -> None:
    """Selects slice notifications out of the stored JSON where it has the recorders' layout:
    events written another way (fields in another order, extra fields, escapes in names, a
    payload that imitates the layout, another category whose name starts alike) must come back
    exactly as a full decoding reads them, or be left out when they are not the application's."""
    made = factory(env, ORIGINATOR_ID_TYPE="text")
    try:
        recorder = made.application_recorder()
        odd_ids = ['a"quoted', "back\\slash", "ü-nicode", "plain", 'x","event-type":"y']
        recorder.insert_events([StoredEvent(i, 1, "m:Ev", b'{"n":1}') for i in odd_ids])
        recorder.insert_events([StoredEvent("plain", 2, 'm:"Odd\\Topic', b"\x00binary")])
        imitation = {"originator-version": 1, "state": {"stream-name": "Bank-fake", "event-type": "fake"}}
        empty = {"originator-version": 1, "state": {}}
        written = [
            # the payload first, holding keys that look like the event's own
            {"payload": {"originator-version": 1, "state": {"k": 1}, "stream-name": "Bank-no"}, **_names("p1")},
            # a field between the names, and an id and time given by the writer
            {"stream-name": "Bank-p2", "service-id": "s", "event-type": "m:Ev", "payload": imitation},
            {**_names("p3"), "payload": {"originator-version": 7, "state": [1]}, "id": 'i"d', "event-time": 5},
            {**_names("p4"), "payload": {"originator-version": 1, "state": {"a": '},"id":"x","event-time":1}'}}},
            # other streams: another category whose name starts alike, snapshots, a deeper name
            {"stream-name": "Bankx-p5", "event-type": "m:Ev", "payload": empty},
            {"stream-name": "Bank.snapshots-p6", "event-type": "m:Ev", "payload": empty},
            {**_names("p7-more"), "payload": {"originator-version": 3, "state": {"z": None}}},
        ]
        for event in written:
            _append(env, tmp_path, made, event)
        selected = recorder.select_notifications(None, 100)
        assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in selected] == [
            *[(i, 1, "m:Ev", b'{"n":1}') for i in odd_ids],
            ("plain", 2, 'm:"Odd\\Topic', b"\x00binary"),
            ("p1", 1, "m:Ev", b'{"k":1}'),
            ("p2", 1, "m:Ev", orjson.dumps(imitation["state"])),
            ("p3", 7, "m:Ev", b"[1]"),
            ("p4", 1, "m:Ev", b'{"a":"},\\"id\\":\\"x\\",\\"event-time\\":1}"}'),
            ("p7-more", 3, "m:Ev", b'{"z":null}'),
        ]
        # Page by page, from where the last page ended, the same notifications.
        paged, position = [], None
        while page := recorder.select_notifications(position, 3, inclusive_of_start=False):
            paged += page
            position = page[-1].id
        assert paged == list(selected)
        assert [n.id for n in recorder.select_notifications(None, 100, topics=['m:"Odd\\Topic'])] == [selected[5].id]
    finally:
        made.close()


def _names(originator: str) -> dict[str, str]:
    return {"stream-name": f"Bank-{originator}", "event-type": "m:Ev"}


def _append(env: dict[str, str], tmp_path: Path, made: PhotonFactory, event: dict[str, Any]) -> None:
    """Store `event` as a writer other than the recorders would, fields in the order given."""
    if "PHOTON_URL" in env:
        import httpx

        from photon.client.blocking import HttpTransport

        transport = HttpTransport(env["PHOTON_URL"], "admin", "p4010n")
        try:
            response = httpx.post(
                f"{transport.url}/api/event",
                content=orjson.dumps(event),
                headers={"Authorization": f"Token {transport.token()}", "Content-Type": "application/json"},
            )
            assert response.status_code < 300, response.text
        finally:
            transport.close()
        return
    made.access.store.append(event)  # type: ignore[attr-defined]


def test_one_aggregates_insert_stores_each_state_as_the_mapping_says(tmp_path: Path) -> None:
    """An application's save of one aggregate (the recorders' quick path): a state is stored as
    JSON only when orjson writes exactly its bytes again, every state comes back byte for byte,
    and ids that are equal but not the same object name one stream."""
    env = {"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "photon.db")}
    account = uuid4()
    events = [
        StoredEvent(UUID(str(account)), version, "bank:Ev", state) for version, state in enumerate(STATES, start=1)
    ]
    made = factory(env, name="Bank")
    try:
        recorder = made.application_recorder()
        ids = recorder.insert_events(events)
        assert recorder.select_events(account) == events
        assert [n.state for n in recorder.select_notifications(start=None, limit=100)] == STATES
    finally:
        made.close()
    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "photon.db"), read_only=True) as store:
        stored = [e.to_dict() for e in store.read()]
    assert [e["order-id"] for e in stored] == ids
    assert {e["stream-name"] for e in stored} == {f"Bank-{account}"}
    as_json = [state for state, e in zip(STATES, stored, strict=True) if "state" in e["payload"]]
    # What orjson writes back the same: as JSON; the spaced object and anything not an object: base64.
    assert as_json == [s for s in STATES if s[:1] == b"{" and s != b'{"a": 1}' and not s.startswith(b"{\x00")]
    assert b'{"a": 1}' not in as_json and STATES[0] in as_json and b"{}" in as_json
    assert stored[0]["payload"]["state"] == orjson.loads(STATES[0])


def test_one_aggregates_versions_must_rise(env: dict[str, str]) -> None:
    made = factory(env)
    account = uuid4()
    try:
        recorder = made.application_recorder()
        with pytest.raises(IntegrityError, match="increasing versions"):
            recorder.insert_events([StoredEvent(account, 2, "m:Ev", b"{}"), StoredEvent(account, 2, "m:Ev", b"{}")])
        assert recorder.select_events(account) == []
        recorder.insert_events([StoredEvent(account, 1, "m:Ev", b"{}"), StoredEvent(account, 2, "m:Ev", b"{}")])
        with pytest.raises(IntegrityError):
            recorder.insert_events([StoredEvent(account, 2, "m:Ev", b"{}"), StoredEvent(account, 3, "m:Ev", b"{}")])
        assert [e.originator_version for e in recorder.select_events(account)] == [1, 2]
    finally:
        made.close()


def test_a_snapshot_older_than_the_newest_is_refused_and_reads_stay_right(env: dict[str, str]) -> None:
    # An aggregate's snapshots are a stream in version order: `take_snapshot(id, version=v)`
    # below its newest snapshot is the library's IntegrityError (its SQL modules would store it).
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    app = Application[UUID](env={"PERSISTENCE_MODULE": "photon.eventsourcing", "IS_SNAPSHOTTING_ENABLED": "y", **env})
    try:
        aggregate = Aggregate()
        for _ in range(20):
            aggregate.trigger_event(Aggregate.Event)
        app.save(aggregate)
        app.take_snapshot(aggregate.id, version=15)
        with pytest.raises(IntegrityError, match="older than the last one"):
            app.take_snapshot(aggregate.id, version=10)
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(aggregate.id)] == [15]
        assert app.repository.get(aggregate.id, version=12).version == 12
        assert app.repository.get(aggregate.id).version == 21
        app.take_snapshot(aggregate.id)
        assert [s.originator_version for s in app.snapshots.get(aggregate.id)] == [15, 21]
    finally:
        app.close()


def test_a_factory_closed_by_the_garbage_collector_while_another_opens_its_store(tmp_path: Path) -> None:
    # The library's Application.__del__ closes its factory; the garbage collector can run it in
    # any allocation, also inside a second factory's opening of its own store. Here that moment
    # is made certain: the old factory is closed from inside EventStore.open.
    import threading

    old = factory({"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "old.db")})
    real_open = EventStore.open

    def open_while_collecting(*args: Any, **kwargs: Any) -> EventStore:
        old.close()
        return real_open(*args, **kwargs)

    made: list[PhotonFactory] = []

    def construct() -> None:
        made.append(factory({"PHOTON_DB_BACKEND": "sqlite", "PHOTON_SQLITE_PATH": str(tmp_path / "new.db")}))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EventStore, "open", open_while_collecting)
        thread = threading.Thread(target=construct, daemon=True)
        thread.start()
        thread.join(timeout=30)
    assert not thread.is_alive(), "opening a store waited for ever on a close run inside it"
    try:
        recorder = made[0].application_recorder()
        assert recorder.insert_events([StoredEvent(uuid4(), 1, "m:Ev", b"{}")]) == [1]
    finally:
        made[0].close()


def test_each_application_on_the_memory_backend_has_a_store_of_its_own() -> None:
    # As the library's POPO recorders and SQLite ':memory:' give each application its own: a test
    # suite's applications, never closed, must not see each other's events.
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    env = {"PERSISTENCE_MODULE": "photon.eventsourcing", "PHOTON_DB_BACKEND": "memory"}
    first, second = Application(env=env), Application(env=env)
    first.save(Aggregate())
    second.save(Aggregate())
    second.save(Aggregate())
    assert [n.id for n in first.notification_log.select(start=1, limit=10)] == [1]
    assert [n.id for n in second.notification_log.select(start=1, limit=10)] == [1, 2]
    first.close()
    second.save(Aggregate())
    assert len(second.notification_log.select(start=1, limit=10)) == 3
    second.close()
