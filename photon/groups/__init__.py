"""Consumer groups: many members share one group's events, with acks, retries and parking.

See `engine` for how events are shared and acknowledged, `manager` for the set of groups kept in
`__config__`, `definition` for a group's settings and `state` for what is stored between runs.
"""

from photon.groups.definition import STRATEGIES, GroupSpec, parse_spec
from photon.groups.engine import NACK_ACTIONS, AckResult, Delivery, Group, Member
from photon.groups.manager import GroupManager

__all__ = [
    "NACK_ACTIONS",
    "STRATEGIES",
    "AckResult",
    "Delivery",
    "Group",
    "GroupManager",
    "GroupSpec",
    "Member",
    "parse_spec",
]
