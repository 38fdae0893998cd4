"""Commands for streams over their lifetime: ``photon metadata``, ``photon delete``,
``photon scavenge`` and ``photon redact``, against a running server (``-url``) or, given
``-db.backend``, directly on a store (the server must not be running on it)."""

from __future__ import annotations

from typing import Any

import click
import orjson

from photon.cli.options import CONTEXT, PhotonCommand, client_for, config_from, config_options, direct, url_option
from photon.core.errors import ValidationError
from photon.ops.progress import progress_bar


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("stream")
@click.argument("metadata", required=False)
@url_option
@config_options
def metadata(stream: str, metadata: str | None, url: str | None, **params: Any) -> None:
    """Print STREAM's metadata, or set it to METADATA (a JSON object: max-age in seconds, max-count,
    truncate-before, and any user keys; it replaces the whole metadata)."""
    config = config_from(params)
    doc = None
    if metadata is not None:
        try:
            doc = orjson.loads(metadata)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"METADATA is not valid JSON: {exc}") from None
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config, read_only=doc is None) as store:
            found = (
                store.set_stream_metadata(stream, doc) if doc is not None else store.stream_metadata(stream)
            ).to_json()
    else:
        with client_for(config, url) as client:
            found = client.set_stream_metadata(stream, doc) if doc is not None else client.stream_metadata(stream)
    click.echo(orjson.dumps(found).decode())


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.argument("stream")
@click.option("-hard", "hard", is_flag=True, help="A tombstone: the stream can never be written again.")
@url_option
@config_options
def delete(stream: str, hard: bool, url: str | None, **params: Any) -> None:
    """Delete STREAM: soft (writing to it again continues its numbering) or, with -hard, for good."""
    config = config_from(params)
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config) as store:
            removed = store.delete_stream(stream, hard=hard)
    else:
        with client_for(config, url) as client:
            removed = client.delete_stream(stream, hard=hard)
    click.echo(f"deleted {stream} ({'hard' if hard else 'soft'}) at version {removed}")


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@url_option
@config_options
def scavenge(url: str | None, **params: Any) -> None:
    """Remove deleted, expired and truncated events and give the space back, while writers go on.

    Safe to stop at any point (even killed) and to run again. A progress bar shows on a terminal
    when run directly on a store."""
    config = config_from(params)
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config) as store, progress_bar("scavenge") as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            report = store.scavenge(advance).to_json()
    else:
        with client_for(config, url) as client:
            report = client.scavenge()
    click.echo(orjson.dumps(report).decode())


@click.command(cls=PhotonCommand, context_settings=CONTEXT)
@click.option("-stream", "stream", default=None, metavar="NAME", help="Redact every event of this stream.")
@click.option("-id", "ids", multiple=True, metavar="ID", help="Redact the event with this id (repeatable).")
@click.option("-reason", "reason", default=None, help="Why (kept in the marker and in __config__).")
@url_option
@config_options
def redact(stream: str | None, ids: tuple[str, ...], reason: str | None, url: str | None, **params: Any) -> None:
    """Replace the payload of a stream's events, or of chosen events, with a redaction marker."""
    config = config_from(params)
    event_ids = list(ids) if ids else None
    if direct(config):
        from photon.core.store import EventStore

        with EventStore.open(config) as store:
            count = store.redact(stream=stream, event_ids=event_ids, reason=reason)
    else:
        with client_for(config, url) as client:
            count = client.redact(stream=stream, event_ids=event_ids, reason=reason)
    click.echo(f"redacted {count} events")
