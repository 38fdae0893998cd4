"""Consumer groups in Photon's AMQP protocol: message types and headers (docs/amqp.md).

Shared by the service (`photon.server.amqp.groups`, which reads the bodies with
`photon.server.amqp.group_messages`) and the Python clients, so both speak the same formats.
"""

from __future__ import annotations

from typing import Final

# Requests (the AMQP `type` of a message on `<service>.commands`).
GROUP_JOIN: Final = "group-join"
"""Join a group: deliveries go to the request's `reply_to`, with its `correlation_id`."""
GROUP_LEAVE: Final = "group-leave"
"""End the membership started with the same `reply_to` and `correlation_id` (`cancel` works too)."""
GROUP_ACK: Final = "group-ack"
GROUP_NACK: Final = "group-nack"
GROUP_LIST: Final = "group-list"
GROUP_DESCRIBE: Final = "group-describe"
GROUP_CREATE: Final = "group-create"
GROUP_UPDATE: Final = "group-update"
GROUP_DELETE: Final = "group-delete"
GROUP_RESET: Final = "group-reset"
GROUP_REPLAY_PARKED: Final = "group-replay-parked"

# Messages to a member's queue (besides `event` for each delivery and `error`).
GROUP_JOINED: Final = "group-joined"
"""``{"group-name", "member"}``: the first message of a membership."""
GROUP_ENDED: Final = "group-ended"
"""``{"group-name", "member", "reason"}``: the last one; the member's unacknowledged events went back."""

#: Requests answered once with a `done` reply (or an `error`).
GROUP_CALLS: Final = (
    GROUP_ACK,
    GROUP_NACK,
    GROUP_LIST,
    GROUP_DESCRIBE,
    GROUP_CREATE,
    GROUP_UPDATE,
    GROUP_DELETE,
    GROUP_RESET,
    GROUP_REPLAY_PARKED,
)
GROUP_REQUEST_TYPES: Final = (GROUP_JOIN, GROUP_LEAVE, *GROUP_CALLS)

# Headers of a delivery (an `event` message whose body is the event as stored).
ORDER_ID_HEADER: Final = "order-id"
ATTEMPT_HEADER: Final = "attempt"
