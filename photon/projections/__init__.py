"""Reduce projections in Hy or Python, folded in a pool of worker processes, with checkpoints.

`ProjectionManager(store, config)` is the service; `definition` reads projection sources.
"""

from photon.projections.definition import (
    Definition,
    DefinitionError,
    ProjectionSpec,
    load,
    spec_from_file,
    spec_from_template,
)
from photon.projections.manager import ProjectionManager
from photon.projections.registry import STREAMS_PROJECTION

__all__ = [
    "STREAMS_PROJECTION",
    "Definition",
    "DefinitionError",
    "ProjectionManager",
    "ProjectionSpec",
    "load",
    "spec_from_file",
    "spec_from_template",
]
