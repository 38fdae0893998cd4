"""What a consumer group keeps in the backend between runs: its checkpoint and the acks above it.

Stored as one JSON value under the checkpoint key ``group:<name>`` (every backend has that
key/value table, and backups carry it):

- `checkpoint`: every event of the group's source up to this order-id is done (acked, skipped or
  parked) or did not match the group's filter;
- `done`: order-ids above the checkpoint that are done (acked out of order);
- `attempts`: deliveries so far of events above the checkpoint that were delivered more than once
  (so a restart keeps counting towards the max retry count);
- `parked-replayed`: the order-id in the parked stream up to which parked events were handed back
  to the group; `replaying`: those of them not yet done (order-ids in the parked stream);
- `generation`: counts parked-event replays (part of the ids of parked events, see engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEY_PREFIX = "group:"


def state_key(group: str) -> str:
    return KEY_PREFIX + group


@dataclass
class GroupState:
    checkpoint: int
    done: list[int] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    parked_replayed: int = 0
    replaying: list[int] = field(default_factory=list)
    generation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "done": self.done,
            "attempts": {str(k): v for k, v in self.attempts.items()},
            "parked-replayed": self.parked_replayed,
            "replaying": self.replaying,
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, value: Any, start: int) -> GroupState:
        """The stored state, or a fresh one that starts at `start` (an order-id)."""
        if not isinstance(value, dict):
            return cls(checkpoint=max(start - 1, 0))
        return cls(
            checkpoint=int(value.get("checkpoint", 0)),
            done=[int(x) for x in value.get("done", [])],
            attempts={int(k): int(v) for k, v in value.get("attempts", {}).items()},
            parked_replayed=int(value.get("parked-replayed", 0)),
            replaying=[int(x) for x in value.get("replaying", [])],
            generation=int(value.get("generation", 0)),
        )
