"""``photon projections``: list, show, add and remove projections.

Like the other client commands they talk to a running server (``-url``; credentials from
``admin.user``/``admin.pass``), or, when ``-db.backend`` is given on the command line, work on
that store directly (no server may be running on it): the set is what ``__config__`` registers,
a value is folded in this process from the projection's last checkpoint, and a change is
recorded in ``__config__`` for the next server start.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from photon.cli.options import (
    CONTEXT,
    PhotonCommandGroup,
    client_for,
    config_from,
    config_options,
    direct,
    url_option,
)
from photon.core.errors import NotFound, PhotonError


@click.group(cls=PhotonCommandGroup, context_settings=CONTEXT)
def projections() -> None:
    """List, show, add and remove projections, on a running server or directly on a store."""


@projections.command("list")
@url_option
@config_options
def list_projections(url: str | None, **params: Any) -> None:
    """One tab-separated line per projection: name, stream, status and position (the order-id it
    has read the store up to; events of other streams or types are passed over, not folded).

    Directly on a store the status is `stopped` (or `invalid` when its definition does not load;
    the Clojure Photon's projections, which cannot run here, are `stopped` as on a server) and the
    position is that of its last checkpoint.
    """
    config = config_from(params)
    if direct(config):
        from photon.core.events import ALL_STREAM
        from photon.core.store import EventStore
        from photon.projections.checkpoints import read_checkpoint
        from photon.projections.definition import DefinitionError, cannot_run, load
        from photon.projections.registry import projections as registered_projections

        rows = []
        with EventStore.open(config, read_only=True) as store:
            for name, spec in sorted(registered_projections(store).items()):
                try:
                    stream, status = load(spec).stream_name, "stopped"
                except DefinitionError:
                    # The Clojure Photon's projections (restored from its backup) are kept, stopped, as
                    # the server shows them; only a definition that does not load is invalid.
                    stream = str(spec.fields.get("stream-name") or ALL_STREAM)
                    status = "stopped" if cannot_run(spec) is not None else "invalid"
                saved = read_checkpoint(store, name)
                position = saved.order_id if saved is not None else 0
                rows.append((name, stream, status, position))
    else:
        with client_for(config, url) as client:
            rows = [
                (p["projection-name"], p["stream-name"] or "", p["status"], p["position"]) for p in client.projections()
            ]
    for row in rows:
        click.echo("\t".join(map(str, row)))


@projections.command("show")
@click.argument("name")
@click.argument("key", required=False)
@url_option
@config_options
def show(name: str, key: str | None, url: str | None, **params: Any) -> None:
    """Print projection NAME's current value as JSON (only KEY of it when given).

    A failed projection's value is printed, the state before the event its reduction failed on,
    and the command fails naming the error."""
    config = config_from(params)
    if direct(config):
        from photon.core.store import EventStore
        from photon.projections.offline import fold, key_of
        from photon.projections.registry import projections as registered_projections

        with EventStore.open(config, read_only=True) as store:
            spec = registered_projections(store).get(name)
            if spec is None:
                raise NotFound(f"projection {name!r} does not exist")
            folded = fold(store, spec)
        failure = folded.error
        value = key_of(name, folded.value, key) if key is not None else folded.value
    else:
        with client_for(config, url) as client:
            value = client.projection_value(name, key)
            failed = [p for p in client.projections() if p["projection-name"] == name and p["status"] == "failed"]
            failure = failed[0]["last-error"] if failed else None
    click.echo(orjson.dumps(value).decode())
    if failure is not None:
        raise PhotonError(f"projection {name!r} failed: {failure}; shown is its value before that")


@projections.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-name", "name", default=None, metavar="NAME", help="The projection's name (default: the file's own).")
@url_option
@config_options
def add(file: Path, name: str | None, url: str | None, **params: Any) -> None:
    """Register (or replace) the projection a .hy or .py FILE defines; it folds from the start."""
    from photon.projections.definition import declared_name, spec_from_file

    config = config_from(params)
    spec = spec_from_file(file)
    spec = replace(spec, name=name or declared_name(spec))
    if direct(config):
        from photon.core.store import EventStore
        from photon.projections.offline import register

        with EventStore.open(config) as store:
            register(store, spec)
    else:
        with client_for(config, url) as client:
            client.add_projection(spec.name, spec.source, spec.language)
    click.echo(f"registered projection {spec.name}", err=True)


@projections.command("remove")
@click.argument("name")
@url_option
@config_options
def remove(name: str, url: str | None, **params: Any) -> None:
    """Remove projection NAME."""
    config = config_from(params)
    if direct(config):
        from photon.core.store import EventStore
        from photon.projections.offline import unregister

        with EventStore.open(config) as store:
            unregister(store, name)
    else:
        with client_for(config, url) as client:
            client.remove_projection(name)
    click.echo(f"removed projection {name}", err=True)
