"""Checking a projection's definition in a separate process, under the time limit.

Loading a definition runs its code (module-level statements of a file, Hy macros...). Code
that never returns must not hang the server, so the manager checks definitions in a helper
process: the answer is what the manager needs (the name, stream, initial value, event types)
or the reason the definition is unusable. A helper that runs past `projections.timeout` is
killed and the definition is reported as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from photon.projections.child_signals import ignore_stop_signals
from photon.projections.definition import DefinitionError, ProjectionSpec, declared_name, load
from photon.projections.pool import context


@dataclass(frozen=True)
class Checked:
    """What checking a definition found."""

    name: str
    """The projection's name (for files: the `projection-name` the source declares, else the file name)."""
    stream_name: str = "__all__"
    initial_value: Any = None
    event_types: frozenset[str] | None = None
    error: str | None = None


def check_payload(payload: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    """Load a definition (in the helper process); returns (name, fields, error)."""
    spec = ProjectionSpec.from_payload(payload)
    name = declared_name(spec) if spec.origin == "file" else spec.name
    try:
        definition = load(spec)
    except DefinitionError as exc:
        return name, None, str(exc)
    except BaseException as exc:
        return name, None, f"{type(exc).__name__}: {exc}"
    types = sorted(definition.event_types) if definition.event_types is not None else None
    fields = {"stream-name": definition.stream_name, "initial-value": definition.initial_value, "event-types": types}
    return name, fields, None


def to_checked(result: tuple[str, dict[str, Any] | None, str | None]) -> Checked:
    name, fields, error = result
    if fields is None:
        return Checked(name, error=error)
    types = fields["event-types"]
    return Checked(
        name,
        stream_name=fields["stream-name"],
        initial_value=fields["initial-value"],
        event_types=frozenset(types) if types is not None else None,
    )


def check_here(spec: ProjectionSpec) -> Checked:
    """Check in this process: for the built-in definitions only (their code is Photon's own)."""
    return to_checked(check_payload(spec.to_payload()))


def _serve(conn: Any) -> None:
    """The helper process: check each definition sent; ends when the manager's end closes."""
    ignore_stop_signals()
    while True:
        try:
            payload = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(check_payload(payload))


class Checker:
    """A helper process that loads definitions, replaced when one runs past the time limit.

    A plain process on a pipe rather than a process pool: its only link to the manager is the
    pipe, so it ends by itself if the manager is killed.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._process: Any = None
        self._conn: Any = None
        self._lock = asyncio.Lock()

    def _start(self) -> None:
        ctx = context()
        self._conn, child = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=_serve, args=(child,), name="photon-projection-check", daemon=True)
        self._process.start()
        child.close()

    def _roundtrip(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
        self._conn.send(payload)
        result: tuple[str, dict[str, Any] | None, str | None] = self._conn.recv()
        return result

    async def check(self, spec: ProjectionSpec) -> Checked:
        async with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()
            try:
                result = await asyncio.wait_for(asyncio.to_thread(self._roundtrip, spec.to_payload()), self.timeout)
                return to_checked(result)
            except TimeoutError:
                self.close()
                return Checked(
                    spec.name,
                    error=f"loading the definition ran past the time limit of {self.timeout:g} s (projections.timeout)",
                )
            except (EOFError, OSError) as exc:  # the code ended the helper process
                self.close()
                return Checked(spec.name, error=f"loading the definition ended its process: {type(exc).__name__}")

    def close(self) -> None:
        """Stop the helper (killed: it may be stuck in a definition's code)."""
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
