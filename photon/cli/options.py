"""What every `photon` command shares: the java-style ``-key value`` options of every configuration
key, the effective configuration they give, the command class that names a mistyped key, the
default-command group, and the options and client of the commands that talk to a server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from photon.core.config import Config, all_settings, load_config
from photon.core.errors import ConfigError
from photon.core.setting import Setting, closest_key

if TYPE_CHECKING:
    from photon.client.blocking import PhotonClient
    from photon.core.store import EventStore

DEFAULT_COMMAND = "serve"


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
            help=setting_help(setting),
        )(command)
    return command


def setting_help(setting: Setting) -> str:
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
            name, equals, value = arg.partition("=")
            if equals and takes_value.get(name):
                # `-rest.port=3000` (the -Dkey=value habit) would be named as an unknown option
                # "-rest.port=3000" with the hint "-rest.port", which reads as the same thing.
                raise click.UsageError(f"option {name} takes its value after a space: {name} {value}", ctx)
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


class PhotonCommandGroup(click.Group):
    """A command group (`photon projections`, `photon groups`) whose commands name a mistyped key."""

    command_class = PhotonCommand


def url_option(command: Any) -> Any:
    return click.option(
        "-url",
        "url",
        default=None,
        metavar="URL",
        help="Server to talk to (default: http://<rest.host>:<rest.port>, https when rest.keystore is set).",
    )(command)


def direct(config: Config) -> bool:
    return config.sources.get("db.backend") == "command line"


def client_for(config: Config, url: str | None) -> PhotonClient:
    keystore = config["rest.keystore"]
    if url is None:
        scheme = "https" if keystore else "http"
        url = f"{scheme}://{config['rest.host']}:{config['rest.port']}"
    # `photon streams -sqlite.path x.db` means that store: talking to a server instead, with the
    # store's key set aside, would answer about some other store (or fail to find a server).
    from photon.core.backend import available_backends

    store_keys = sorted({s.key for cls in available_backends().values() for s in cls.settings})
    given = [key for key in store_keys if config.sources.get(key) == "command line"]
    if given:
        raise ConfigError(
            f"-{given[0]} names a store, but this command talks to the server at {url}: a command works on "
            f"a store directly only when given -db.backend (-db.backend {config['db.backend']} -{given[0]} ...)"
        )
    # A self-signed server certificate is its own authority: trust the configured keystore's.
    verify: bool | str = keystore if keystore and url.startswith("https") else True
    from photon.client.blocking import PhotonClient  # here: commands on a store need no HTTP client

    return PhotonClient(url, config["admin.user"], config["admin.pass"], verify=verify)


def warn_if_transient(store: EventStore) -> None:
    """A command that writes into a store that ends with the command says so (the memory backend)."""
    if not store.backend.persistent:
        click.echo(
            f"photon: warning: the {store.backend.name} backend keeps events only in this process: what this "
            "command stores is gone when it exits (use a persistent -db.backend, or -url to a running server)",
            err=True,
        )
