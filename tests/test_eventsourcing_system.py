"""A system of the library's applications on one Photon store: a process application follows
another, its new events and its tracking records written atomically, and resumes where it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.system import ProcessApplication, SingleThreadedRunner, System


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
