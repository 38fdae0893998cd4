"""The `photon` command: Photon's java-style options (``-rest.port 3000``) on a click group.

``photon`` with no command (or with only options) runs the default command. Every command
takes every configuration key as an option, generated from the settings registry, so the
command line, ``PHOTON_*`` variables and ``photon.properties`` all speak the same keys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from .backend import available_backends
from .config import Config, Setting, all_settings, load_config
from .errors import PhotonError

DEFAULT_COMMAND = "info"


def _param_name(key: str) -> str:
    return "cfg_" + key.replace(".", "_").replace("-", "_")


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``-key value`` option per configuration key to a click command."""
    settings = sorted(all_settings().values(), key=lambda s: s.key, reverse=True)
    for setting in settings:
        names = [f"-{setting.key}", *(f"-{alias}" for alias in setting.aliases)]
        command = click.option(
            *names,
            _param_name(setting.key),
            default=None,
            metavar="VALUE",
            help=_help(setting),
        )(command)
    return command


def _help(setting: Setting) -> str:
    default = setting.default
    shown = "computed at start" if callable(default) else ("unset" if default is None else default)
    return f"{setting.help} (default: {shown})"


def config_from(params: dict[str, Any]) -> Config:
    """The effective configuration for a command's parameters (pops the config options)."""
    cli: dict[str, str] = {}
    for key in all_settings():
        value = params.pop(_param_name(key), None)
        if value is not None:
            cli[key] = value
    return load_config(cli)


class PhotonGroup(click.Group):
    """A group whose default command runs when no command is named (datasette-style)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help", "--version")):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


@click.group(cls=PhotonGroup, context_settings=CONTEXT)
@click.version_option(package_name="photon-eventstore", message="photon %(version)s")
def cli() -> None:
    """Photon: an event store. Run without a command to use the default one."""


@cli.command(context_settings=CONTEXT)
@config_options
def info(**params: Any) -> None:
    """Open the configured store (read-only) and print its state."""
    from .store import EventStore

    config = config_from(params)
    with EventStore.open(config, read_only=True) as store:
        streams = store.streams()
        click.echo(f"backend: {store.backend.describe()}")
        click.echo(f"last order-id: {store.last_order_id()}")
        click.echo(f"streams: {len(streams)}")
        for stream in streams[:20]:
            click.echo(f"  {stream.stream_name}: {stream.total_events} events")
        if len(streams) > 20:
            click.echo(f"  ... and {len(streams) - 20} more")


@cli.command(context_settings=CONTEXT)
def backends() -> None:
    """List the installed storage backends and their configuration keys."""
    for name, cls in available_backends().items():
        aliases = f" (alias {', '.join(cls.aliases)})" if cls.aliases else ""
        click.echo(f"{name}{aliases}: {cls.description}")
        for setting in cls.settings:
            click.echo(f"    -{setting.key}: {_help(setting)}")


def main() -> None:
    try:
        cli.main(prog_name="photon", standalone_mode=True)
    except PhotonError as exc:
        click.echo(f"photon: error: {exc}", err=True)
        sys.exit(2)


# Commands defined in their own modules; importing one registers its commands on `cli`.
from . import backup_cli  # noqa: E402, F401
