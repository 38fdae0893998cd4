"""Client commands: ``photon emit``, ``photon replay STREAM``, ``photon streams``, ``photon read-matching``.

They talk to a running server (``-url``, default ``http://rest.host:rest.port`` of the same
configuration; credentials from ``admin.user``/``admin.pass``), or, when ``-db.backend`` is
given on the command line, open that store directly (the server must not be running on it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

import click
import orjson

from photon.cli.options import (
    CONTEXT,
    PhotonCommand,
    client_for,
    config_from,
    config_options,
    direct,
    url_option,
    warn_if_transient,
)
from photon.core.append_request import AppendOptions, append_options, parse_emit, parse_query
from photon.core.errors import ValidationError
from photon.core.requests import ReplayOptions, from_query
from photon.core.subscriptions import STREAM_TYPES, CaughtUp

if TYPE_CHECKING:
    pass

EMIT_CHUNK = 1000


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data + b"\n")


def _chunks(stream: IO[bytes]) -> Iterator[tuple[list[int], list[Any]]]:
    """Batches of the events on stdin, each with the line number of each event."""
    chunk: list[Any] = []
    lines: list[int] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            chunk.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"line {number}: malformed JSON: {exc}") from None
        lines.append(number)
        if len(chunk) >= EMIT_CHUNK:
            yield lines, chunk
            chunk, lines = [], []
    if chunk:
        yield lines, chunk


@contextmanager
def _naming_lines(lines: list[int] | None) -> Iterator[None]:
    """A refused event of stdin named by its line: the error gives its index in the batch
    (`ValidationError.index`, "event 3: ..."), which in the second batch of 1000 lines is line 1004."""
    try:
        yield
    except ValidationError as exc:
        if lines is None:
            raise
        if exc.index is not None and exc.index < len(lines):
            line, message = lines[exc.index], str(exc).removeprefix(f"event {exc.index}: ")
        elif len(lines) == 1:
            line, message = lines[0], str(exc)
        else:
            raise
        raise type(exc)(f"line {line}: {message}", exc.field) from None


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("event", required=False)
@click.option(
    "-expected-version",
    "expected_version",
    default=None,
    metavar="N|any|no-stream",
    help="Optimistic concurrency for an event given as argument.",
)
@click.option(
    "-expected-versions",
    "expected_versions",
    default=None,
    metavar="JSON",
    help='Expected versions of several streams, e.g. \'{"a": 3, "b": "no-stream"}\' (EVENT argument only).',
)
@click.option(
    "-condition",
    "condition",
    default=None,
    metavar="JSON",
    help='Store only if no event matches: \'{"query": [{"event-types": [..], "tags": [..]}], "after": N}\'.',
)
@url_option
@config_options
def emit(
    event: str | None,
    expected_version: str | None,
    expected_versions: str | None,
    condition: str | None,
    url: str | None,
    **params: Any,
) -> None:
    """Store EVENT (JSON object, list, or the emit wrapper {"events": [...], ...}), or NDJSON events
    from stdin; print what was stored.

    Stdin is sent in atomic batches of 1000 lines; on an error, earlier batches stay stored, and
    the refused event is named by its line.
    """
    config = config_from(params)
    options: AppendOptions | None = None
    if event is not None and event != "-":
        try:
            doc = orjson.loads(event)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"EVENT is not valid JSON: {exc}") from None
        request = parse_emit(doc, expected_version=expected_version)
        options = request.options
        extra = append_options(
            "any", _json_option(expected_versions, "-expected-versions"), _json_option(condition, "-condition")
        )
        options = replace(
            options,
            expected_versions=extra.expected_versions or options.expected_versions,
            condition=extra.condition or options.condition,
        )
        if options.expected_versions is not None and options.expected_version != "any":
            raise ValidationError("give expected-version or expected-versions, not both", "expected-versions")
        batches: Iterator[tuple[list[int] | None, Any]] = iter([(None, request.events)])
    else:
        if expected_version is not None or expected_versions is not None or condition is not None:
            raise click.UsageError("-expected-version(s) and -condition apply to an EVENT argument, not to stdin")
        batches = _chunks(sys.stdin.buffer)
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config) as store:
            warn_if_transient(store)
            for lines, batch in batches:
                with _naming_lines(lines):
                    stored_events = store.append_request(batch, options or AppendOptions())
                for stored in stored_events:
                    _out(stored.data)
        return
    with client_for(config, url) as client:
        for lines, batch in batches:
            if options is None:
                with _naming_lines(lines):
                    answer = client.emit(batch)
            else:
                answer = client.emit(
                    batch,
                    expected_version=options.expected_version,
                    expected_versions=options.expected_versions,
                    condition=options.condition,
                )
            for stored in answer if isinstance(answer, list) else [answer]:
                _out(stored.data)


def _json_option(text: str | None, flag: str) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"{flag} is not valid JSON: {exc}") from None


@click.command("read-matching", cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("query", default="[]")
@click.option("-after", "after", type=int, default=0, metavar="ORDER-ID", help="Only events after this order-id.")
@click.option("-limit", "limit", type=int, default=None, metavar="N", help="Stop after N events.")
@url_option
@config_options
def read_matching(query: str, after: int, limit: int | None, url: str | None, **params: Any) -> None:
    """Print the events of client streams matching QUERY (a JSON list of {"event-types": [..], "tags": [..]};
    default: every event) as NDJSON: what a conditional append with that query checks."""
    config = config_from(params)
    items = _json_option(query, "QUERY")
    parse_query(items)  # refused here, before any connection, when malformed
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config, read_only=True) as store:
            for event in store.read_matching(items, after=after, limit=limit):
                _out(event.data)
        return
    with client_for(config, url) as client:
        for found in client.read_matching(items, after=after, limit=limit):
            _out(found.data)


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("stream", default="__all__")
@click.option(
    "-stream-type",
    "stream_type",
    type=click.Choice(STREAM_TYPES),
    default="cold",
    show_default=True,
    help="cold: history then exit; hot: live only; hot-cold: history then live.",
)
@click.option("-from", "from_", default=None, metavar="ORDER-ID", help="First order-id (inclusive).")
@click.option("-from-version", "from_version", default=None, metavar="N", help="First stream-version.")
@click.option("-from-time", "from_time", default=None, metavar="MS", help="First event-time (epoch ms).")
@click.option("-to", "to", default=None, metavar="ORDER-ID", help="Last order-id (inclusive).")
@click.option("-event-types", "event_types", default=None, metavar="A,B", help="Only these event types.")
@click.option("-limit", "limit", default=None, metavar="N", help="Stop after N events.")
@url_option
@config_options
def replay(
    stream: str,
    stream_type: str,
    from_: str | None,
    from_version: str | None,
    from_time: str | None,
    to: str | None,
    event_types: str | None,
    limit: str | None,
    url: str | None,
    **params: Any,
) -> None:
    """Print STREAM's events (default __all__) as NDJSON; the caught-up point is reported on stderr."""
    config = config_from(params)
    # The flags are read by the core's request model, as the server reads the same options.
    given = {
        "stream-type": stream_type,
        "from": from_,
        "from-version": from_version,
        "from-time": from_time,
        "to": to,
        "event-types": event_types,
        "limit": limit,
    }
    options = from_query(ReplayOptions, {k: [v] for k, v in given.items() if v is not None}, where="option")
    types = list(options.event_types) if options.event_types else None
    if direct(config):
        if stream_type != "cold":
            raise click.UsageError("live replay (hot, hot-cold) needs a running server: use -url, not -db.backend")
        from photon.core.store import EventStore

        with EventStore.open(config, read_only=True) as store:
            for event in store.read(
                stream,
                from_order_id=options.from_order_id,
                from_version=options.from_version,
                from_time=options.from_time,
                to_order_id=options.to_order_id,
                event_types=types,
                limit=options.limit,
            ):
                _out(event.data)
        return
    with client_for(config, url) as client:
        items = client.replay(
            stream,
            stream_type=options.stream_type,
            from_=options.from_order_id,
            from_version=options.from_version,
            from_time=options.from_time,
            to=options.to_order_id,
            event_types=types,
            limit=options.limit,
        )
        try:
            for item in items:
                if isinstance(item, CaughtUp):
                    click.echo(f"caught up at order-id {item.order_id}; live events follow", err=True)
                else:
                    _out(item.data)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@url_option
@config_options
def streams(url: str | None, **params: Any) -> None:
    """List the streams and their number of events (tab-separated)."""
    config = config_from(params)
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config, read_only=True) as store:
            found = [(s.stream_name, s.total_events) for s in store.streams()]
    else:
        with client_for(config, url) as client:
            found = [(s.stream_name, s.total_events) for s in client.streams()]
    for name, total in found:
        click.echo(f"{name}\t{total}")
