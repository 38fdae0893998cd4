"""The last 10 orders placed (events of type "order-placed" on any stream), newest last."""

projection_name = "last-orders"
event_types = ["order-placed"]
initial_value: list[dict] = []

KEEP = 10


def reduction(state, event):
    state.append(
        {
            "order-id": event["order-id"],
            "stream-name": event["stream-name"],
            "event-time": event["event-time"],
            "payload": event["payload"],
        }
    )
    del state[:-KEEP]
    return state
