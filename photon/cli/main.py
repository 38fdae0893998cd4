"""The `photon` command: Photon's java-style options (``-rest.port 3000``) on a click group.

``photon`` with no command (or with only options) runs the default command. Every command
takes every configuration key as an option, generated from the settings registry, so the
command line, ``PHOTON_*`` variables and ``photon.properties`` all speak the same keys.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from photon.cli import backup, client_commands, groups, lifetime, projections
from photon.cli.options import CONTEXT, PhotonGroup, config_from, config_options, setting_help
from photon.core.backend import available_backends, missing_driver
from photon.core.errors import NotAuthorized, PhotonError, ServerUnreachable


class ServerFailed(PhotonError):
    """The server could not start or stopped on an operating-system error."""


@click.group(cls=PhotonGroup, context_settings=CONTEXT)
@click.version_option(package_name="photon-eventstore", message="photon %(version)s")
def cli() -> None:
    """Photon: an event store. Run without a command to serve (`photon serve`); `photon serve -h` lists
    every setting (-rest.port 3000, ...)."""


@cli.command(context_settings=CONTEXT)
@config_options
def info(**params: Any) -> None:
    """Open the configured store (read-only) and print its state."""
    from photon.core.store import EventStore

    config = config_from(params)
    with EventStore.open(config, read_only=True) as store:
        streams = store.streams()
        click.echo(f"backend: {store.backend.describe()}")
        click.echo(f"last order-id: {store.last_order_id()}")
        click.echo(f"streams: {len(streams)}")
        for stream in streams[:20]:
            click.echo(f"  {stream.stream_name}: {stream.total_events} event{'' if stream.total_events == 1 else 's'}")
        if len(streams) > 20:
            click.echo(f"  ... and {len(streams) - 20} more")


def _read_ways(indexed: frozenset[str]) -> str:
    """How a backend answers category, event-type and tags reads: from an index, or by scanning `__all__`."""
    return ", ".join(
        f"{kind}: {'index' if kind in indexed else 'scanning __all__'}" for kind in ("category", "event-type", "tags")
    )


@cli.command(context_settings=CONTEXT)
def backends() -> None:
    """List the storage backends, whether each can be used here, and their configuration keys."""
    for name, cls in available_backends().items():
        aliases = f" (alias {', '.join(cls.aliases)})" if cls.aliases else ""
        state = "installed" if missing_driver(cls) is None else f"needs: pip install 'photon-eventstore[{cls.extra}]'"
        click.echo(f"{name}{aliases} [{state}]: {cls.description}")
        click.echo(f"    reads by {_read_ways(cls.indexed_reads)}")
        for setting in cls.settings:
            click.echo(f"    -{setting.key}: {setting_help(setting)}")


@cli.command(context_settings=CONTEXT)
@config_options
def serve(**params: Any) -> None:
    """Run the server (HTTP API, TCP ingest) on the configured store until SIGTERM or SIGINT."""
    from photon.server.logs import configure_logging

    config = config_from(params)
    configure_logging(config)
    from photon.server.server import run

    try:
        run(config)
    except OSError as exc:  # reported as every other command's errors are: `photon: error: ...`, exit 2
        raise ServerFailed(f"cannot start the server: {exc}") from None


def main() -> None:
    try:
        cli.main(prog_name="photon", standalone_mode=True)
    except PhotonError as exc:
        hint = ""
        if isinstance(exc, ServerUnreachable):
            hint = " (is it running? `photon` starts one; -db.backend works on a store directly)"
        elif isinstance(exc, NotAuthorized):
            hint = (
                " (the server refused the credentials: give its admin.user and admin.pass with -admin.user/-admin.pass,"
                " PHOTON_ADMIN_PASS or photon.properties)"
            )
        click.echo(f"photon: error: {exc}{hint}", err=True)
        sys.exit(2)


for command in (
    backup.backup,
    backup.restore,
    client_commands.emit,
    client_commands.read_matching,
    client_commands.replay,
    client_commands.streams,
    groups.groups,
    lifetime.metadata,
    lifetime.delete,
    lifetime.scavenge,
    lifetime.redact,
    projections.projections,
):
    cli.add_command(command)
