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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from .definition import DefinitionError, ProjectionSpec, declared_name, load
from .pool import context


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


class Checker:
    """A helper process that loads definitions, replaced when one runs past the time limit."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._executor: ProcessPoolExecutor | None = None

    async def check(self, spec: ProjectionSpec) -> Checked:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(max_workers=1, mp_context=context())
        future = self._executor.submit(check_payload, spec.to_payload())
        try:
            return to_checked(await asyncio.wait_for(asyncio.wrap_future(future), self.timeout))
        except TimeoutError:
            self._kill()
            return Checked(
                spec.name,
                error=f"loading the definition ran past the time limit of {self.timeout:g} s (projections.timeout)",
            )
        except Exception as exc:  # the helper died (e.g. the code exited the process)
            self._kill()
            return Checked(spec.name, error=f"loading the definition failed: {type(exc).__name__}: {exc}")

    def _kill(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
