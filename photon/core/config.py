"""Configuration: Photon's dotted keys, their defaults, and where values come from.

Precedence, highest first: the command line (``-rest.port 3000``), the environment
(``PHOTON_REST_PORT=3000``), ``photon.properties`` in the working directory, the defaults
below. Every key is declared once as a `Setting`; backends declare their own keys on their
class, so an installed third-party backend's keys are known too.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import javaproperties

from photon.core.errors import ConfigError
from photon.core.setting import ENV_PREFIX, Setting, closest_key

log = logging.getLogger("photon.config")

PROPERTIES_FILE = "photon.properties"


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def parse_port(text: str) -> int:
    value = parse_int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a port number 0-65535, got {value}")
    return value


def parse_positive(text: str) -> int:
    value = parse_int(text)
    if value < 1:
        raise ValueError(f"expected a number of at least 1, got {value}")
    return value


def parse_non_negative(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        raise ValueError(f"expected a number of at least 0, got {value}")
    return value


def parse_positive_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {text!r}")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")

    return parse


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("microservice.name", "photon", "Service id; also names the AMQP command queue."),
    Setting("rest.host", "localhost", "Host or IP the HTTP API listens on (0.0.0.0 for every interface)."),
    Setting("rest.port", "3000", "Port of the HTTP API.", parse_port),
    Setting("rest.keystore", None, "PEM file with the TLS certificate and key; when set, HTTP is served over TLS."),
    Setting("rest.keypass", None, "Password of the key in rest.keystore.", secret=True),
    Setting(
        "tcp.plaintext",
        "false",
        "With rest.keystore set, events.port and projections.port speak TLS too; true keeps them plaintext "
        "(e.g. behind a proxy that ends TLS).",
        parse_bool,
    ),
    Setting("admin.user", "admin", "User name for GET /auth/token (HTTP Basic)."),
    Setting("admin.pass", "p4010n", "Password for GET /auth/token (HTTP Basic).", secret=True),
    Setting(
        "admin.secret",
        lambda: secrets.token_urlsafe(32),
        "Secret that signs API tokens (random at each start unless set).",
        secret=True,
    ),
    Setting("admin.token.ttl", "3600", "Seconds an API token stays valid.", parse_positive),
    Setting("projections.port", "8375", "TCP port streaming projection updates, one JSON line each.", parse_port),
    Setting("events.port", "8376", "TCP port taking newline-delimited JSON events (bulk ingest).", parse_port),
    Setting(
        "muon.url",
        None,
        "AMQP URL of a RabbitMQ broker (amqp://user:pass@host:port/vhost); unset = no AMQP.",
        secret=True,
    ),
    Setting(
        "muon.wait",
        "0",
        "Seconds to keep retrying an unreachable AMQP broker at start (0 = fail at once).",
        parse_non_negative,
    ),
    Setting(
        "parallel.projections",
        lambda: str(os.cpu_count() or 1),
        "Worker processes that run projections (default: the number of cores).",
        parse_positive,
    ),
    Setting("projections.path", "projections", "Folder of .hy and .py projection files, watched while running."),
    Setting("projections.watch", "true", "Watch projections.path for added, changed and deleted files.", parse_bool),
    Setting(
        "projections.balance",
        "true",
        "Move projections between workers by what they cost live: cheap ones onto fewer workers, heavy ones apart.",
        parse_bool,
    ),
    Setting(
        "projections.timeout",
        "10",
        "Seconds one reduction call may take before its projection is failed and its worker replaced.",
        parse_positive_float,
    ),
    Setting(
        "projections.checkpoint.events",
        "10000",
        "Checkpoint a projection after this many events (and at projections.checkpoint.seconds).",
        parse_positive,
    ),
    Setting(
        "projections.checkpoint.seconds",
        "5",
        "Checkpoint a projection that moved at least this often, in seconds.",
        parse_positive_float,
    ),
    Setting("db.backend", "sqlite", "Storage backend plugin (see `photon backends`)."),
    Setting(
        "payload.max.bytes", "1048576", "Largest accepted event, in bytes of JSON (payload included).", parse_positive
    ),
    Setting(
        "rest.body.max.bytes",
        "67108864",
        "Largest accepted HTTP request body (one event or a batch), in bytes.",
        parse_positive,
    ),
    Setting("commit.batch.max", "5000", "Most events written in one group-commit transaction.", parse_positive),
    Setting(
        "subscription.buffer",
        "10000",
        "Live events buffered per subscriber; a slower subscriber falls back to reading the store.",
        parse_positive,
    ),
    Setting(
        "subscription.buffer.bytes",
        "8388608",
        "Bytes of live event data buffered per subscriber; a slower subscriber is told it fell behind "
        "and reads from the store until it has caught up again.",
        parse_positive,
    ),
    Setting(
        "replay.page.bytes",
        "4194304",
        "Bytes of event data in one page of history read from the store (replays, subscriptions, reads).",
        parse_positive,
    ),
    Setting(
        "replay.readahead.bytes",
        "8388608",
        "Bytes of event data a streaming replay reads ahead of what its client has taken.",
        parse_positive,
    ),
    Setting("log.level", "INFO", "Log level.", one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting(
        "log.format",
        "text",
        "Log lines as text (for people) or json (one JSON object a line: time, level, logger, message, the "
        "request's fields).",
        one_of("text", "json"),
    ),
    Setting(
        "otel.endpoint",
        None,
        "OpenTelemetry collector for traces, OTLP over HTTP (http://host:4318); unset = no tracing. Needs the "
        "otel extra.",
    ),
    Setting("otel.service.name", None, "service.name of the traces (default: microservice.name)."),
    Setting("log.access", "false", "Log every HTTP request (uvicorn's access log), in log.format.", parse_bool),
)


def all_settings() -> dict[str, Setting]:
    """Core keys plus the keys every installed backend declares, by key."""
    from photon.core.backend import available_backends  # here: the registry loads every backend class

    found = {s.key: s for s in CORE_SETTINGS}
    for cls in available_backends().values():
        for setting in cls.settings:
            found.setdefault(setting.key, setting)
    return found


def read_properties(path: Path) -> dict[str, str]:
    """Read a Java .properties file by Java's rules (`javaproperties`): `key=value`, `key: value` or
    `key value`, `#`/`!` comments, `\\` line continuations, and escapes (`\\=`, `\\:`, `\\uXXXX`, a
    doubled backslash for one, as in a Windows path written for Java).

    The file is read as UTF-8 (Java 9's default for properties files); `\\uXXXX` escapes work either way.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            return dict(javaproperties.load(handle))
    except javaproperties.InvalidUEscapeError as exc:
        raise ConfigError(f"{path}: bad escape {exc.escape!r} (a \\u escape needs four hex digits)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _unknown(key: str, known: Iterable[str], where: str) -> ConfigError:
    hint = closest_key(key, known)
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    return ConfigError(f"unknown configuration key {key!r} ({where}){suggestion}")


class Config(Mapping[str, Any]):
    """The effective configuration: every key's parsed value and where it came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], settings: dict[str, Setting]) -> None:
        self._values = values
        self.sources = sources
        self.settings = settings

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with some keys replaced by already-parsed values (dots as underscores in names)."""
        values = dict(self._values)
        for name, value in overrides.items():
            values[name.replace("_", ".")] = value
        return Config(values, dict(self.sources), self.settings)

    def redacted(self) -> dict[str, Any]:
        """The configuration for logging: secrets hidden (a secret URL keeps all but its password)."""
        return {
            key: (_hide(value) if self.settings[key].secret and value is not None else value)
            for key, value in sorted(self._values.items())
        }


def _hide(value: Any) -> str:
    text = str(value)
    if "://" in text:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", text)
    return "****"


def load_config(
    cli: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    settings: dict[str, Setting] | None = None,
    properties: bool = True,
) -> Config:
    """Build the effective configuration from the command line, environment, properties file and defaults.

    `properties=False` skips `photon.properties` (for stores opened from code with explicit settings).
    """
    settings = settings if settings is not None else all_settings()
    aliases = {alias: s.key for s in settings.values() for alias in s.aliases}
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd

    def canonical(key: str, where: str) -> str:
        key = key.strip()
        if key in settings:
            return key
        if key in aliases:
            return aliases[key]
        raise _unknown(key, settings, where)

    raw: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for key, setting in settings.items():
        raw[key] = setting.default_text()
        sources[key] = "default"

    properties_file = cwd / PROPERTIES_FILE
    if properties and properties_file.is_file():
        for key, value in read_properties(properties_file).items():
            name = canonical(key, str(properties_file))
            raw[name] = value
            sources[name] = str(properties_file)

    env_names = {s.env_var: s.key for s in settings.values()}
    env_names.update({Setting(alias, None, "").env_var: key for alias, key in aliases.items()})
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        if var in env_names:
            raw[env_names[var]] = value
            sources[env_names[var]] = f"environment {var}"
        else:
            # The environment is shared with other programs (and test tools), so an unknown
            # PHOTON_ variable is reported, not fatal.
            hint = closest_key(var, env_names)
            log.warning("ignoring unknown environment variable %s%s", var, f" (did you mean {hint}?)" if hint else "")

    for key, value in (cli or {}).items():
        name = canonical(key, "command line")
        raw[name] = value
        sources[name] = "command line"

    values: dict[str, Any] = {}
    for key, text in raw.items():
        if text is None:
            values[key] = None
            continue
        try:
            values[key] = settings[key].parse(text)
        except ValueError as exc:
            raise ConfigError(f"bad value for {key} (from {sources[key]}): {exc}") from None
    return Config(values, sources, settings)
