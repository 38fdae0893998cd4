"""A system of the library's applications on one Photon store: a process application follows
another, its new events and its tracking records written atomically, and resumes where it was;
the library's projections (a view on Photon's tracking recorder, an event-sourced projection)
resume the same way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.projection import EventSourcedProjection, EventSourcedProjectionRunner, Projection, ProjectionRunner
from eventsourcing.system import MultiThreadedRunner, ProcessApplication, Runner, SingleThreadedRunner, System

from photon.eventsourcing import PhotonTrackingRecorder

from .live import LiveServer, make_config


class Account(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        pass


class Accounts(Application):
    def open_and_deposit(self, owner: str, *amounts: int) -> Any:
        account = Account(owner)
        for amount in amounts:
            account.deposit(amount)
        self.save(account)
        return account.id


class Tally(Aggregate):
    @event("Counted")
    def __init__(self) -> None:
        self.total = 0

    @event("Added")
    def add(self, amount: int) -> None:
        self.total += amount


class Totals(ProcessApplication):
    tally_id: Any = None

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        """Other events: nothing to do (their position is still tracked)."""

    @policy.register(Account.Deposited)
    def _(self, domain_event: Any, processing_event: Any) -> None:
        tally = self.repository.get(self.tally_id) if self.tally_id else Tally()
        Totals.tally_id = tally.id
        tally.add(domain_event.amount)
        processing_event.collect_events(tally)


def test_a_process_application_follows_another_on_photon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "photon.eventsourcing")
    monkeypatch.setenv("PHOTON_DB_BACKEND", "sqlite")
    monkeypatch.setenv("PHOTON_SQLITE_PATH", str(tmp_path / "system.db"))
    Totals.tally_id = None
    system = System(pipes=[[Accounts, Totals]])

    runner = SingleThreadedRunner(system)
    runner.start()
    try:
        accounts, totals = runner.get(Accounts), runner.get(Totals)
        accounts.open_and_deposit("Ada", 10, 20)
        accounts.open_and_deposit("Bob", 5)
        assert totals.repository.get(Totals.tally_id).total == 35
        upstream_last = accounts.recorder.max_notification_id()
        assert totals.recorder.max_tracking_id("Accounts") == upstream_last
    finally:
        runner.stop()

    # Started again on the same store, it resumes after what it tracked: nothing is counted twice.
    runner = SingleThreadedRunner(system)
    runner.start()
    try:
        accounts, totals = runner.get(Accounts), runner.get(Totals)
        accounts.open_and_deposit("Cy", 1)
        assert totals.repository.get(Totals.tally_id).total == 36
    finally:
        runner.stop()

    from photon.core.store import EventStore

    with EventStore.open(db_backend="sqlite", sqlite_path=str(tmp_path / "system.db"), read_only=True) as store:
        streams = {info.stream_name.split("-", 1)[0] for info in store.streams()}
    assert streams == {"Accounts", "Totals", "Totals.tracking"}


@pytest.fixture(params=["embedded", "remote"])
def photon_env(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The library's environment for a fresh embedded store, or a fresh Photon server."""
    monkeypatch.setenv("PERSISTENCE_MODULE", "photon.eventsourcing")
    if request.param == "embedded":
        monkeypatch.setenv("PHOTON_DB_BACKEND", "sqlite")
        monkeypatch.setenv("PHOTON_SQLITE_PATH", str(tmp_path / "system.db"))
        yield
        return
    server = LiveServer(make_config(tmp_path))
    monkeypatch.setenv("PHOTON_URL", server.url)
    try:
        yield
    finally:
        server.stop()


class Receipt(Aggregate):
    @event("Issued")
    def __init__(self, owner: str) -> None:
        self.owner = owner


class Receipts(ProcessApplication):
    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        """Other events: nothing to do."""

    @policy.register(Account.Opened)
    def _(self, domain_event: Any, processing_event: Any) -> None:
        processing_event.collect_events(Receipt(domain_event.owner))


class Branch(Accounts):
    """A second leader of the same follower."""


def _owners(app: Application) -> list[str]:
    notifications = app.recorder.select_notifications(start=None, limit=1_000_000)
    return sorted(app.mapper.to_domain_event(n).owner for n in notifications if n.topic.endswith("Receipt.Issued"))


def _open_all(accounts: Accounts, owners: list[str]) -> None:
    for owner in owners:
        accounts.open_and_deposit(owner)


def _caught_up(runner: Runner) -> None:
    receipts = runner.get(Receipts)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(
            receipts.recorder.max_tracking_id(leader.name) == leader.recorder.max_notification_id()
            for leader in (runner.get(Accounts), runner.get(Branch))
        ):
            return
        time.sleep(0.02)
    raise AssertionError("the process application did not catch up with its leaders in 30 s")


@pytest.mark.parametrize("runner_class", [SingleThreadedRunner, MultiThreadedRunner])
@pytest.mark.usefixtures("photon_env")
def test_a_follower_of_two_leaders_processes_each_event_once_across_restarts(runner_class: type[Runner]) -> None:
    system = System(pipes=[[Accounts, Receipts], [Branch, Receipts]])
    expected: list[str] = []
    for round_ in range(3):
        runner = runner_class(system)
        runner.start()
        try:
            accounts, branch = runner.get(Accounts), runner.get(Branch)
            names = [f"{round_}-{n}" for n in range(6)]
            writer = threading.Thread(target=_open_all, args=(branch, ["b" + name for name in names]))
            writer.start()  # the two leaders write at once
            for name in names:
                accounts.open_and_deposit("a" + name)
            writer.join()
            expected += ["a" + name for name in names] + ["b" + name for name in names]
            if round_ == 1:
                runner.stop()  # perhaps before the follower has processed everything
                runner = runner_class(system)
                runner.start()
                # A multi-threaded runner's follower pulls when prompted: a new event prompts it.
                runner.get(Accounts).open_and_deposit("after-restart")
                runner.get(Branch).open_and_deposit("after-restart")
                expected += ["after-restart"] * 2
            _caught_up(runner)
            assert _owners(runner.get(Receipts)) == sorted(expected)
        finally:
            runner.stop()


class AccountsView(PhotonTrackingRecorder):
    """A view of the accounts opened, its position tracked in Photon."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owners: list[str] = []

    def opened(self, owner: str, tracking: Tracking) -> None:
        self.owners.append(owner)
        self.insert_tracking(tracking)


class AccountsProjection(Projection[AccountsView]):
    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register(Account.Opened)
    def _(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.opened(domain_event.owner, tracking)


class Census(Aggregate):
    @event("Started")
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1


class CensusProjection(EventSourcedProjection[Any]):
    census_id: Any = None

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[Any]) -> None:
        """Other events: nothing to do."""

    @policy.register(Account.Opened)
    def _(self, domain_event: Any, processing_event: ProcessingEvent[Any]) -> None:
        try:
            census = self.repository.get(CensusProjection.census_id)
        except AggregateNotFoundError:
            census = Census()
            CensusProjection.census_id = census.id
        census.count_one()
        processing_event.collect_events(census)


@pytest.mark.usefixtures("photon_env")
def test_the_librarys_projections_resume_where_they_tracked() -> None:
    CensusProjection.census_id = None
    accounts = Accounts()
    try:
        accounts.open_and_deposit("Ada", 1)
        for round_ in range(2):
            with ProjectionRunner(
                application_class=Accounts, projection_class=AccountsProjection, view_class=AccountsView
            ) as runner:
                accounts.open_and_deposit(f"Bob{round_}", 2)
                last = accounts.recorder.max_notification_id()
                runner.wait(last, timeout=30)
                # The first runner saw both accounts; the second only the one opened after it
                # (its view is new, its tracking record in Photon says where to start).
                assert runner.view.owners == (["Ada", "Bob0"] if round_ == 0 else ["Bob1"])
                assert runner.view.max_tracking_id("Accounts") == last
        for round_ in range(2):
            with EventSourcedProjectionRunner(application_class=Accounts, projection_class=CensusProjection) as census:
                accounts.open_and_deposit(f"Cy{round_}")
                census.wait(accounts.recorder.max_notification_id(), timeout=30)
                assert census.projection.repository.get(CensusProjection.census_id).count == 4 + round_
    finally:
        accounts.close()
