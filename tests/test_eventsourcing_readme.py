"""The README's eventsourcing example runs and prints what the README shows: the library's
bank-account application on an embedded Photon store, then a Photon projection folding its events
through the installed `photon` command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
SECTION = (ROOT / "README.md").read_text().split("## The eventsourcing library", 1)[1].split("\n## ", 1)[0]
PHOTON = shutil.which("photon", path=str(Path(sys.executable).parent)) or "photon"


def test_bank_accounts_example_and_its_projection(tmp_path: Path) -> None:
    code = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    commands = re.search(r"```sh\n(.*?)```", SECTION, re.S)
    shown = re.search(r"prints\n\n```\n(.*?)```", SECTION, re.S)
    assert len(code) >= 2 and commands and shown
    for block in code[:2]:
        name = re.match(r"# (\S+\.py)\n", block)
        assert name, block[:40]
        (tmp_path / name.group(1)).write_text(block)
    output = []
    for line in commands.group(1).strip().splitlines():
        argv = shlex.split(line)
        argv[0] = sys.executable if argv[0] == "python" else PHOTON
        env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        output.append(result.stdout)
    assert "".join(output) == shown.group(1)
