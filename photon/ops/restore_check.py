"""The checker process of a restore (see `photon.ops.restore.load_verified`).

    python -m photon._restore_check FILE

checks a backup file as `photon.ops.restore.check_backup` does against an empty store, and prints
one JSON verdict line (see `photon.ops.restore.check_file`).
"""

from __future__ import annotations

import sys

import orjson

from photon.ops.restore import check_file


def main(argv: list[str]) -> int:
    sys.stdout.buffer.write(orjson.dumps(check_file(argv[0])) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
