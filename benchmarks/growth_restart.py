"""The realistic restart of `benchmarks.growth` alone, on a kept store, for two checkouts alternately.

    python -m benchmarks.growth_restart DIR [--trees BEFORE,AFTER] [--rounds 2]

DIR holds ``bench.db``, a SQLite store whose projections have caught up and checkpointed (a
server run on it until then). Each round starts ``photon serve`` of each checkout in turn
(``PYTHONPATH`` set to the checkout) and reports, as `benchmarks.growth` does, the seconds until
the HTTP API answers, until every projection has resumed (none ``loading``; a checkout without
that status has resumed when it answers), and the stop that follows (``--append N``: after N
events are appended and folded, so the stop finds the projections past their checkpoints).
``--server-args`` adds options of ``photon serve``
(``"-projections.checkpoint.seconds 600"``: no periodic checkpoint comes before the stop). One
JSON line a start.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import orjson

from .growth import restart_figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--trees", default=".", type=lambda t: t.split(","))
    parser.add_argument("--rounds", default=2, type=int)
    parser.add_argument(
        "--append", default=0, type=int, help="events appended before each stop (the stop finds them folded)"
    )
    parser.add_argument("--server-args", default="", help="more options of photon serve, split at spaces")
    args = parser.parse_args(argv)
    for _ in range(args.rounds):
        for tree in args.trees:
            os.environ["PYTHONPATH"] = str(Path(tree).resolve())
            load = os.getloadavg()[0]
            store_args = ["-sqlite.path", str(args.dir / "bench.db"), *args.server_args.split()]
            figures = restart_figures(args.dir, store_args, args.append)
            line = {"tree": tree, "load": round(load, 2), **{k: round(v, 2) for k, v in figures.items()}}
            print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
