"""The README stays true: every configuration key is documented, and the quickstart prints what it shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from photon.core.config import all_settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_every_configuration_key_is_in_the_readme() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [key for key in all_settings() if f"| `{key}` |" not in table]
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


def test_every_http_route_is_in_the_readme(tmp_path: Path) -> None:
    from photon.core.config import load_config
    from photon.core.store import EventStore
    from photon.server.http import create_app
    from photon.server.server import Projections, TransferRoutes

    config = load_config({"db.backend": "memory", "projections.path": str(tmp_path)}, environ={})
    with EventStore.open(config) as store:
        extra = [*Projections(store, config).http_routes(), *TransferRoutes(store, config).http_routes()]
        app = create_app(store, config, extra_routes=extra)
        paths = {getattr(route, "path", "") for route in app.routes}
    assert {"/api/ping", "/api/projections", "/api/new-stream"} <= paths and len(paths) > 20

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    documented = {shape(p) for p in re.findall(r"`(/[^` ]*)`", README)}
    missing = sorted(p for p in paths if p and shape(p) not in documented)
    assert not missing, f"routes missing from the README's HTTP API table: {missing}"


def test_the_appends_example_runs_as_written(tmp_path: Path) -> None:
    code = re.search(r"## The core API\n\n```python\n(.*?)```", (ROOT / "docs" / "appends.md").read_text(), re.S)
    assert code, "docs/appends.md's example is missing"
    script = tmp_path / "appends.py"
    script.write_text(code.group(1) + "print([e.stream_version for e in stored])\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[5, 1]\n"
