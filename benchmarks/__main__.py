"""Every benchmark, one after the other: ``python -m benchmarks [NAME ...]``.

Names: core, server, backup, projections, backends, amqp (default: all that are installed).
Each prints its own table of figures, targets and side-by-side ratios; run one alone with
``python -m benchmarks.NAME --help`` to see its options. The results, and the commands that
produced them, are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

ORDER = ["core", "server", "backup", "projections", "backends", "amqp"]


def main(argv: list[str]) -> None:
    names = argv or ORDER
    unknown = [name for name in names if name not in ORDER]
    if unknown:
        sys.exit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(ORDER)}")
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            print(f"== {name}: not available ({exc})")
            continue
        print(f"\n== {name}  (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)", flush=True)
        started = time.perf_counter()
        module.main([])
        print(f"-- {name} took {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
