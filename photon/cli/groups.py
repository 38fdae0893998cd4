"""``photon groups``: create, change, list, show, reset and delete consumer groups; consume as a member.

They talk to a running server (``-url``; credentials from ``admin.user``/``admin.pass``): a
group lives in the server's process, where its members connect. ``photon groups consume``
joins as a member and prints each delivery as one JSON line, acknowledging it once printed
(``-no-ack`` leaves them unacknowledged: they go back to the group when the command ends).
"""

from __future__ import annotations

from typing import Any

import click
import orjson

from photon.cli.options import (
    CONTEXT,
    PhotonCommandGroup,
    client_for,
    config_from,
    config_options,
    url_option,
)
from photon.core.errors import PhotonError
from photon.core.requests import is_digits, parse_integer
from photon.groups.definition import MAX_IN_FLIGHT_LIMIT, STRATEGIES


@click.group(cls=PhotonCommandGroup, context_settings=CONTEXT)
def groups() -> None:
    """Consumer groups on a running server: list, show, create, update, delete, reset, replay-parked, consume."""


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


_SETTINGS = [
    click.option("-stream", "stream", default=None, help="A stream, __all__ (default) or __category__:<name>."),
    click.option(
        "-filter",
        "filter_",
        default=None,
        metavar="JSON",
        help='e.g. {"stream-prefix": ["acc"], "event-types": ["x"]}; null (update) removes it.',
    ),
    click.option("-strategy", type=click.Choice(STRATEGIES), default=None, help="round-robin (default) or pinned."),
    click.option("-max-in-flight", "max_in_flight", type=int, default=None, help="Per member (default 10)."),
    click.option("-ack-timeout-ms", "ack_timeout_ms", type=int, default=None, help="Default 30000."),
    click.option("-max-retries", "max_retries", type=int, default=None, help="Before parking (default 10)."),
    click.option("-serial/-no-serial", "serial", default=None, help="One event in flight for the whole group."),
]


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (only those: an update changes no others);
    ``-filter null`` is kept, as it removes the filter."""
    keys = ("stream", "strategy", "max_in_flight", "ack_timeout_ms", "max_retries", "serial")
    settings = {k: value for k in keys if (value := options.pop(k)) is not None}
    raw_filter = options.pop("filter_")
    if raw_filter is not None:
        try:
            settings["filter"] = orjson.loads(raw_filter)
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="-filter") from None
    return settings


def _with_settings(func: Any) -> Any:
    for option in reversed(_SETTINGS):
        func = option(func)
    return func


@groups.command("list")
@url_option
@config_options
def list_groups(url: str | None, **params: Any) -> None:
    """One line per group: name, stream, strategy, checkpoint, members, in flight (tab-separated)."""
    with client_for(config_from(params), url) as client:
        for group in client.groups():
            row = (
                group["group-name"],
                group["stream"],
                group["strategy"],
                group["checkpoint"],
                len(group["members"]),
                group["in-flight"],
            )
            click.echo("\t".join(map(str, row)))


@groups.command("show")
@click.argument("name")
@url_option
@config_options
def show(name: str, url: str | None, **params: Any) -> None:
    """Print group NAME's description as JSON: definition, checkpoint, members, counters."""
    with client_for(config_from(params), url) as client:
        _echo_json(client.group(name))


@groups.command("create")
@click.argument("name")
@click.option("-start", default=None, help="begin (default), end or an order-id.")
@_with_settings
@url_option
@config_options
def create(name: str, start: str | None, url: str | None, **params: Any) -> None:
    """Create consumer group NAME and print its description."""
    settings = _settings(params)
    if start is not None:
        settings["start"] = parse_integer(start, "start", text=True, where="option") if is_digits(start) else start
    with client_for(config_from(params), url) as client:
        _echo_json(client.create_group(name, **settings))


@groups.command("update")
@click.argument("name")
@_with_settings
@url_option
@config_options
def update(name: str, url: str | None, **params: Any) -> None:
    """Change group NAME's settings (its position stays)."""
    settings = _settings(params)
    with client_for(config_from(params), url) as client:
        _echo_json(client.update_group(name, **settings))


@groups.command("delete")
@click.argument("name")
@url_option
@config_options
def delete(name: str, url: str | None, **params: Any) -> None:
    """Delete group NAME and its position (its parked stream stays)."""
    with client_for(config_from(params), url) as client:
        client.delete_group(name)
    click.echo(f"deleted consumer group {name}")


@groups.command("reset")
@click.argument("name")
@click.argument("from_order_id", metavar="FROM", type=click.IntRange(min=1))
@url_option
@config_options
def reset(name: str, from_order_id: int, url: str | None, **params: Any) -> None:
    """Start group NAME over from order-id FROM."""
    with client_for(config_from(params), url) as client:
        group = client.reset_group(name, from_order_id)
    click.echo(f"consumer group {name} starts over at checkpoint {group['checkpoint']}")


@groups.command("replay-parked")
@click.argument("name")
@url_option
@config_options
def replay_parked(name: str, url: str | None, **params: Any) -> None:
    """Hand group NAME's parked events back to it."""
    with client_for(config_from(params), url) as client:
        count = client.replay_parked(name)
    click.echo(f"{count} parked events handed back to {name}")


@groups.command("consume")
@click.argument("name")
@click.option("-member", default=None, help="This member's id (default: a new one).")
@click.option("-limit", type=click.IntRange(min=1), default=None, help="Stop after this many deliveries.")
@click.option("-ack/-no-ack", "ack", default=True, help="Acknowledge each delivery once printed (default).")
@url_option
@config_options
def consume(name: str, member: str | None, limit: int | None, ack: bool, url: str | None, **params: Any) -> None:
    """Join group NAME as a member; print each delivery as {"attempt": n, "event": {...}} (NDJSON).

    With -limit the member is given -limit deliveries and no more (the server gives it none it
    will not print, so no other event's attempt is spent): one event at a time when acknowledging
    (the next comes once the last is acked), up to -limit at once with -no-ack. When the server
    ends the membership (the group reset, changed or deleted, the server stopping) it says so on
    standard error and exits with an error.
    """
    count = 0
    prefetch = None if limit is None else 1 if ack else min(limit, MAX_IN_FLIGHT_LIMIT)
    with (
        client_for(config_from(params), url) as client,
        client.join_group(name, member, max_in_flight=prefetch, limit=limit) as joined,
    ):
        for delivery in joined:
            click.echo(b'{"attempt":%d,"event":%s}' % (delivery.attempt, delivery.event.data))
            if ack:
                joined.ack(delivery.event.order_id)
            count += 1
            if limit is not None and count >= limit:
                return
    raise PhotonError(
        f"the server ended this member of group {name!r} after {count} deliver{'y' if count == 1 else 'ies'}: "
        "the group was reset, "
        "changed or deleted, or the server stopped (consume again to go on)"
    )
