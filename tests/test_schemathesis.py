"""Schemathesis, with every one of its checks, against a real `photon` process: the OpenAPI
description and the server agree (statuses, content types, request and response schemas,
Allow headers, auth), and no input gives a 5xx.

The run is bounded (a few examples per operation, a fixed seed); its configuration is
tests/schemathesis.toml and its hooks tests/schemathesis_hooks.py, which say why each
setting is there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .live import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_schemathesis_finds_nothing_against_a_live_server(tmp_path: Path) -> None:
    args = ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-admin.secret", "s3cret"]
    args += ["-sqlite.path", str(tmp_path / "p.db"), "-projections.path", str(tmp_path / "projections")]
    server = ServerProcess(tmp_path, args)
    try:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        env.pop("CI", None)  # the same run locally and in CI (no CI profile for hypothesis)
        run = subprocess.run(
            [
                SCHEMATHESIS,
                "--config-file",
                str(ROOT / "tests" / "schemathesis.toml"),
                "run",
                server.url + "/openapi.json",
                "--max-examples",
                "5",
                "--seed",
                "1",
                "--request-timeout",
                "10",
                "--header",
                f"Authorization: Token {server.token()}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
        )
    finally:
        server.terminate()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    # Every operation but the two endless streams was tested, and none failed.
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert selected, output[-5000:]
    chosen, described, tested = map(int, selected.groups())
    assert chosen == tested == described - 2 and tested > 40, output[-5000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counted and counted.group(1) == counted.group(2) and int(counted.group(1)) > 1000, output[-5000:]
