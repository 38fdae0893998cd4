"""The README stays true: every configuration key is documented, and the quickstart prints what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from photon.config import all_settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_every_configuration_key_is_in_the_readme() -> None:
    missing = [key for key in all_settings() if f"`{key}`" not in README]
    assert not missing, f"keys missing from the README's configuration table: {missing}"


def test_quickstart_prints_what_the_readme_shows(tmp_path: Path) -> None:
    section = README.split("## Quickstart (Python)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    shown = re.search(r"prints\n\n```\n(.*?)```", section, re.S)
    assert code and shown
    script = tmp_path / "quickstart.py"
    script.write_text(code.group(1))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown.group(1)
