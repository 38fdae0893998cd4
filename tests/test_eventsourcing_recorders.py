"""The `eventsourcing` library's own recorder and factory test cases, unchanged, against Photon:
embedded on SQLite, embedded on PostgreSQL, and remote against a real Photon server.

Each case is subclassed as the library's own modules subclass them (a `create_recorder`, an
environment for the factory), once per mode. Nothing of the library's tests is overridden."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.dcb.tests import DCBRecorderTestCase
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from photon.eventsourcing import (
    PhotonAggregateRecorder,
    PhotonApplicationRecorder,
    PhotonFactory,
    PhotonProcessRecorder,
    PhotonTrackingRecorder,
)

from .eventsourcing_modes import EmbeddedPostgres, EmbeddedSQLite, PhotonMode, RemoteServer, SharedSQLite


class _Recorders(PhotonMode):
    """`create_recorder` from a factory made for the test's fresh store, closed after the test."""

    __test__ = False  # the cases run through their subclasses per mode, below

    def setUp(self) -> None:
        self.factory = self.new_factory()
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.factory.close()


class _Aggregate(_Recorders, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        recorder: AggregateRecorder = self.factory.aggregate_recorder()
        return recorder


class _Application(_Recorders, ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        recorder: ApplicationRecorder = self.factory.application_recorder()
        return recorder

    def test_insert_subscribe(self) -> None:
        # The library keeps this case optional; its own modules run it, and so do we.
        self.optional_test_insert_subscribe()


class _Tracking(_Recorders, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder: TrackingRecorder = self.factory.tracking_recorder()
        return recorder


class _Process(_Recorders, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder: ProcessRecorder = self.factory.process_recorder()
        return recorder


class _NonInterleaving(_Recorders, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        recorder: ApplicationRecorder = self.factory.application_recorder()
        return recorder


class _DCB(_Recorders, DCBRecorderTestCase):
    # The library's DCB test case is run by its own modules through these two methods.
    def test_append_read(self) -> None:
        self._test_append_read(self.factory.dcb_recorder())

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(self.factory.dcb_recorder())


class _TrackingSubclass(PhotonTrackingRecorder):
    pass


class _Factory(PhotonMode, InfrastructureFactoryTestCase[PhotonFactory]):
    __test__ = False

    def expected_factory_class(self) -> type[PhotonFactory]:
        return PhotonFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PhotonAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return PhotonApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PhotonTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _TrackingSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PhotonProcessRecorder

    def setUp(self) -> None:
        self.env = Environment("TestCase", {"PERSISTENCE_MODULE": "photon.eventsourcing", **self.photon_env})
        super().setUp()


def _modes(case: type[Any], name: str) -> dict[str, type[Any]]:
    modes = {"EmbeddedSQLite": EmbeddedSQLite, "EmbeddedPostgres": EmbeddedPostgres, "Remote": RemoteServer}
    return {f"Test{name}{m}": type(f"Test{name}{m}", (mode, case), {"__test__": True}) for m, mode in modes.items()}


for _case, _name in [
    (_Aggregate, "AggregateRecorder"),
    (_Application, "ApplicationRecorder"),
    (_Tracking, "TrackingRecorder"),
    (_Process, "ProcessRecorder"),
    (_NonInterleaving, "NonInterleavingNotificationIDs"),
    (_DCB, "DCBRecorder"),
    (_Factory, "InfrastructureFactory"),
]:
    for _class_name, _class in _modes(_case, _name).items():
        _class.__module__ = __name__
        globals()[_class_name] = _class
del _case, _name, _class_name, _class


class TestApplicationRecorderSharedStore(SharedSQLite, _Application):
    """The application recorder's cases in a store that holds other events first."""

    __test__ = True

    @pytest.mark.skip(
        reason="the library's test_insert_select expects a fresh recorder's first notification ids to be 1, 2, 3; "
        "here other events hold the first order-ids (the EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False case)"
    )
    def test_insert_select(self) -> None:
        pass


class TestNonInterleavingNotificationIDsSharedStore(SharedSQLite, _NonInterleaving):
    __test__ = True
