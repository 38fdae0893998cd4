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

from .backend import available_backends, missing_driver
from .config import Config, Setting, all_settings, closest_key, load_config
from .errors import PhotonError, ServerUnreachable

DEFAULT_COMMAND = "serve"


class ServerFailed(PhotonError):
    """The server could not start or stopped on an operating-system error."""


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


class PhotonCommand(click.Command):
    """A command that refuses an unknown ``-dotted.key`` naming the closest valid one.

    Without this, click reads ``-sqlite.pth`` as the short option ``-s`` and says "No such
    option: -s", which names nothing the user typed.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                for opt in (*param.opts, *param.secondary_opts):
                    takes_value[opt] = not param.is_flag and not param.count
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                break
            if arg in takes_value:
                index += 2 if takes_value[arg] else 1
                continue
            if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and not _is_number(arg):
                known = [opt.lstrip("-") for opt in takes_value if not opt.startswith("--")]
                hint = closest_key(arg[1:], known)
                suggestion = f"; did you mean -{hint}?" if hint else ""
                raise click.UsageError(f"unknown option {arg}{suggestion}", ctx)
            index += 1
        return super().parse_args(ctx, args)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class PhotonGroup(click.Group):
    """A group whose default command runs when no command is named (datasette-style)."""

    command_class = PhotonCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            # The default command takes no arguments, so a first word that is not an option is a
            # command name, mistyped: say so, rather than hand it to `serve` as an argument.
            raise click.UsageError(self._unknown_command(args[0]), ctx)
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help", "--version")):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def _unknown_command(self, word: str) -> str:
        names = sorted(self.commands)
        if word == "help":
            return (
                f"no command 'help': `photon -h` lists the commands ({', '.join(names)}), "
                "`photon COMMAND -h` explains one"
            )
        hint = closest_key(word, names)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        return f"no such command {word!r}{suggestion} (commands: {', '.join(names)})"


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


def _read_ways(indexed: frozenset[str]) -> str:
    """How a backend answers category and event-type reads: from an index, or by scanning `__all__`."""
    return ", ".join(
        f"{kind}: {'index' if kind in indexed else 'scanning __all__'}" for kind in ("category", "event-type")
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
            click.echo(f"    -{setting.key}: {_help(setting)}")


@cli.command(context_settings=CONTEXT)
@config_options
def serve(**params: Any) -> None:
    """Run the server (HTTP API, TCP ingest) on the configured store until SIGTERM or SIGINT."""
    from .logs import configure_logging

    config = config_from(params)
    configure_logging(config)
    from .server import run

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
        click.echo(f"photon: error: {exc}{hint}", err=True)
        sys.exit(2)


# Commands defined in their own modules; importing one registers its commands on `cli`.
from . import backup_cli, cli_client, cli_groups, cli_lifetime, cli_projections  # noqa: E402, F401  (backup, restore; emit, replay, streams; groups; metadata, delete, scavenge, redact; projections)
