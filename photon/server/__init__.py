"""The Photon server and its front ends: HTTP (with the web console), TCP ingest, AMQP/Muon and the
projection-updates listener, each a service over one `photon.core.store.EventStore`.
"""

from photon.server.server import SERVICES, PhotonServer, run

__all__ = ["SERVICES", "PhotonServer", "run"]
