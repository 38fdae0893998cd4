"""How many events of each event-type the store holds (every stream)."""

projection_name = "events-per-type"
stream_name = "__all__"
initial_value: dict[str, int] = {}


def reduction(state, event):
    kind = event["event-type"]
    state[kind] = state.get(kind, 0) + 1
    return state
