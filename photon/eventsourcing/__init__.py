"""Photon as a persistence module of the `eventsourcing` library.

Select it the library's usual way, ``PERSISTENCE_MODULE=photon.eventsourcing``; see
`photon.eventsourcing.factory` for its settings and `photon.eventsourcing.mapping` for how the
library's stored events become Photon events.
"""

from photon.eventsourcing.dcb import PhotonDCBRecorder, PhotonDCBSubscription
from photon.eventsourcing.factory import PhotonFactory
from photon.eventsourcing.recorders import (
    PhotonAggregateRecorder,
    PhotonApplicationRecorder,
    PhotonProcessRecorder,
    PhotonSubscription,
    PhotonTrackingRecorder,
)

Factory = PhotonFactory

__all__ = [
    "Factory",
    "PhotonAggregateRecorder",
    "PhotonApplicationRecorder",
    "PhotonDCBRecorder",
    "PhotonDCBSubscription",
    "PhotonFactory",
    "PhotonProcessRecorder",
    "PhotonSubscription",
    "PhotonTrackingRecorder",
]
