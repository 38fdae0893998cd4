"""The infrastructure factory: which Photon to use, read from the environment the library's way.

- ``PHOTON_URL`` set: a running Photon server at that URL, with the credentials
  ``PHOTON_ADMIN_USER`` / ``PHOTON_ADMIN_PASS`` (the server's own keys, defaults as the server's)
  and ``PHOTON_TLS_CA`` (a CA file, for a server with a self-signed certificate).
- Otherwise an embedded store, configured by Photon's own variables exactly as the server reads
  them (``PHOTON_DB_BACKEND``, ``PHOTON_SQLITE_PATH``, ``PHOTON_POSTGRES_URL``, ...: every key of
  Photon's settings registry; an unknown ``PHOTON_`` variable is reported in the log, as the
  server reports it); the applications of a process that name the same store share it.
- ``PHOTON_CATEGORY``: the category of the application's streams (default: the application's
  name, or ``eventsourcing`` when it has none); ``ORIGINATOR_ID_TYPE``: ``uuid`` (default) or
  ``text``, as for the library's own modules.

Like every library setting, each may be prefixed with the application's name in capitals
(``BANKACCOUNTS_PHOTON_SQLITE_PATH``) to give one application of a process its own value.
"""

from __future__ import annotations

from typing import Any, cast

from eventsourcing.dcb.persistence import DCBInfrastructureFactory
from eventsourcing.persistence import InfrastructureFactory, ProcessRecorder
from eventsourcing.utils import Environment, EnvType, resolve_topic

from photon.core.config import load_config
from photon.core.errors import ValidationError
from photon.core.setting import ENV_PREFIX
from photon.eventsourcing.access import EmbeddedAccess, PhotonAccess, RemoteAccess
from photon.eventsourcing.dcb import PhotonDCBRecorder
from photon.eventsourcing.mapping import IdType, check_category
from photon.eventsourcing.recorders import (
    PhotonAggregateRecorder,
    PhotonApplicationRecorder,
    PhotonProcessRecorder,
    PhotonTrackingRecorder,
)

DEFAULT_CATEGORY = "eventsourcing"


class PhotonFactory(InfrastructureFactory[PhotonTrackingRecorder], DCBInfrastructureFactory[PhotonTrackingRecorder]):
    """Recorders over an embedded Photon store or a Photon server (see the module docstring);
    also the factory of DCB applications."""

    PHOTON_URL = "PHOTON_URL"
    PHOTON_ADMIN_USER = "PHOTON_ADMIN_USER"
    PHOTON_ADMIN_PASS = "PHOTON_ADMIN_PASS"
    PHOTON_TLS_CA = "PHOTON_TLS_CA"
    PHOTON_CATEGORY = "PHOTON_CATEGORY"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        configured = self.env.get(self.PHOTON_CATEGORY)
        try:
            self.category = check_category(configured or self.env.name or DEFAULT_CATEGORY)
        except ValueError as exc:
            # Name the setting to change: the category given, or the one to give instead of the name.
            where = f"{self.PHOTON_CATEGORY}: {exc}" if configured else f"{exc}; set {self.PHOTON_CATEGORY}"
            raise ValidationError(where, self.PHOTON_CATEGORY) from None
        id_type = (self.env.get(self.ORIGINATOR_ID_TYPE) or "uuid").lower()
        if id_type not in ("uuid", "text"):
            raise ValueError(f"Invalid {self.ORIGINATOR_ID_TYPE} {id_type!r}: it must be 'uuid' or 'text'")
        self.originator_id_type = cast(IdType, id_type)
        url = self.env.get(self.PHOTON_URL)
        self.access: PhotonAccess
        if url:
            try:
                self.access = RemoteAccess(
                    url,
                    self.env.get(self.PHOTON_ADMIN_USER) or "admin",
                    self.env.get(self.PHOTON_ADMIN_PASS) or "p4010n",
                    verify=self.env.get(self.PHOTON_TLS_CA) or True,
                )
            except ValidationError as exc:
                setting = {"url": self.PHOTON_URL, "verify": self.PHOTON_TLS_CA}.get(exc.field or "")
                if setting is None:
                    raise
                raise ValidationError(f"{setting}: {exc}", setting) from None
        else:
            self.access = EmbeddedAccess(load_config(environ=self._photon_environ(), properties=False))

    def _photon_environ(self) -> dict[str, str]:
        """The environment's ``PHOTON_`` variables (the application's prefixed ones first), under
        the names the server reads, but the module's own: `load_config` parses them as the server
        does, and reports an unknown one (a mistyped name) in the log as the server does."""
        own = {self.PHOTON_URL, self.PHOTON_TLS_CA, self.PHOTON_CATEGORY}
        found: dict[str, str] = {}
        for prefix in (f"{self.env.name.upper()}_" if self.env.name else None, ""):
            if prefix is None:
                continue
            for var, value in self.env.items():
                name = var[len(prefix) :]
                if var.startswith(prefix + ENV_PREFIX) and name not in own:
                    found.setdefault(name, value)
        return found

    def _recorder_args(self, category: str) -> dict[str, Any]:
        return {"access": self.access, "category": category, "originator_id_type": self.originator_id_type}

    def aggregate_recorder(self, purpose: str = "events") -> PhotonAggregateRecorder:
        category = self.category if purpose == "events" else check_category(f"{self.category}.{purpose}")
        return PhotonAggregateRecorder(**self._recorder_args(category))

    def application_recorder(self) -> PhotonApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[PhotonApplicationRecorder] = resolve_topic(topic) if topic else PhotonApplicationRecorder
        return cls(**self._recorder_args(self.category))

    def tracking_recorder(
        self, tracking_recorder_class: type[PhotonTrackingRecorder] | None = None
    ) -> PhotonTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else PhotonTrackingRecorder
        assert tracking_recorder_class is not None
        return tracking_recorder_class(**self._recorder_args(self.category))

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[PhotonProcessRecorder] = resolve_topic(topic) if topic else PhotonProcessRecorder
        return cls(**self._recorder_args(self.category))

    def dcb_recorder(self) -> PhotonDCBRecorder:
        return PhotonDCBRecorder(self.access, self.category)

    def close(self) -> None:
        self.access.close()
        super().close()
