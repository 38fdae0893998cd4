"""Preparing an append: a batch of client (or internal) events checked and made ready for the writer.

Runs in the caller's thread, so that the single writer's share of each append stays small: every
event is validated and gets its id and event-time, and what the batch asks for (an expected
version of its one stream, or of several) is checked for consistency.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from photon.core.append_request import AppendCondition, AppendOptions
from photon.core.append_waits import client_ids
from photon.core.errors import ValidationError
from photon.core.event_validation import prepare_batch, prepare_event, prepare_plain
from photon.core.events import PendingEvent, new_event_id, new_event_ids, now_millis

_STREAM_NAME = itemgetter(0)  # PendingEvent.stream_name

BATCH_VALIDATION = 16
"""Batches of at least this many events are first checked field by field (`prepare_batch`)."""


def prepare_append(
    batch: list[Any], options: AppendOptions, max_bytes: int, *, internal: bool
) -> tuple[list[PendingEvent], int | str, Mapping[str, int | str] | None, AppendCondition | None]:
    """The batch's events ready for the writer, with its expected version(s) and condition.

    Raises `ValidationError` naming the event (by index, in a batch of several) and the field.
    """
    if not batch:
        raise ValidationError("no events to append")
    if len(batch) == 1:
        # The append of many single-event writers: checked on its own (what the batch paths
        # would do, without their lists of ids and their checks across events). Its error
        # names no index, as before.
        _one_kind_of_expected(options)
        pending = [prepare_event(batch[0], max_bytes, internal, None, new_event_id)]
        return pending, options.expected_version, options.expected_versions, options.condition
    now = now_millis()  # one clock reading for the whole batch
    if internal:
        fast = None
    elif len(batch) >= BATCH_VALIDATION:
        fast = prepare_batch(batch, max_bytes, now)
    else:
        fast = prepare_plain(batch, max_bytes, now)
    if fast is not None:
        pending = fast
    else:
        # Ids for the events that come without one, made together (those left over go unused).
        new_id = iter(new_event_ids(len(batch))).__next__
        pending = []
        for index, event in enumerate(batch):
            try:
                pending.append(prepare_event(event, max_bytes, internal, now, new_id))
            except ValidationError as exc:
                if len(batch) > 1:
                    raise type(exc)(f"event {index}: {exc}", exc.field, index) from None
                raise
    expected = options.expected_version
    # Pending events are read by position (see `PendingEvent`): the batch path's are plain tuples.
    if expected != "any" and len(set(map(_STREAM_NAME, pending))) > 1:
        raise ValidationError(
            "expected-version needs every event of the batch in one stream (use expected-versions for several)",
            "expected-version",
        )
    _one_kind_of_expected(options)
    checks = options.expected_versions
    chosen = client_ids(pending)
    if len(chosen) > 1 and len(set(chosen)) < len(chosen):
        # Only ids the client chose can repeat: the store's own are unique by construction.
        seen: set[str] = set()
        for index, (_stream, event_id, _type, _time, _body, chosen_id) in enumerate(pending):
            if not chosen_id:
                continue
            if event_id in seen:
                raise ValidationError(f"event {index}: id {event_id!r} appears twice in the batch", "id", index)
            seen.add(event_id)
    return pending, expected, checks, options.condition


def _one_kind_of_expected(options: AppendOptions) -> None:
    """An append names one expected version, or one per stream, not both."""
    if options.expected_versions is not None and options.expected_version != "any":
        raise ValidationError("give expected-version or expected-versions, not both", "expected-versions")
