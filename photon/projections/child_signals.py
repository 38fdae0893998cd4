"""How the projections' child processes (workers, the definition checker) treat stop signals.

The manager ends its children itself: a message asks each to stop, a stuck one is killed, and a
child whose manager died ends when its pipe closes. A stop signal sent to the whole process
group (Ctrl-C in a terminal, or a service manager's SIGTERM to every process of the service)
must not end them first: the manager would count them as lost and start replacements while it
is shutting down.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def ignore_stop_signals() -> None:
    """In a child process: leave stopping to the manager."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
