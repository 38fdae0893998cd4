"""The license, the container recipe and the compose file agree with the project."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from photon.core.config import CORE_SETTINGS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_license_is_the_apache_2_text_pyproject_names() -> None:
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_the_dockerfile_builds_with_the_readme_install_command() -> None:
    install = re.search(
        r"```sh\n(python3 -m venv \.venv && \.venv/bin/pip install -e \.) && \.venv/bin/photon\n```", README
    )
    assert install, "the README's install command has moved"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"RUN {install.group(1)}" in dockerfile
    defaults = {s.key: s.default for s in CORE_SETTINGS}
    exposed = set(re.search(r"^EXPOSE (.*)$", dockerfile, re.M).group(1).split())  # type: ignore[union-attr]
    assert exposed == {defaults["rest.port"], defaults["projections.port"], defaults["events.port"]}
    assert "/health/ready" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_runs_photon_and_rabbitmq_as_a_profile() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    photon, rabbitmq = compose["services"]["photon"], compose["services"]["rabbitmq"]
    assert photon["build"]["context"] == "." and "profiles" not in photon
    assert rabbitmq["profiles"] == ["amqp"] and "rabbitmq" in rabbitmq["image"]
    assert {"PHOTON_MUON_URL", "PHOTON_ADMIN_SECRET"} <= set(photon["environment"])
    assert "photon-data:/data" in photon["volumes"]


def test_the_readme_documents_the_container_and_says_it_is_not_built_here() -> None:
    section = README.split("## Container", 1)[1].split("\n## ", 1)[0]
    assert "docker build" in section and "compose" in section and "--profile amqp" in section
    assert "not built" in section


def test_every_package_in_the_tree_is_installed() -> None:
    # pyproject lists the packages (the backends folder installs as photon_backends), so a new
    # package left out of the list is missing from a wheel while an editable install still works.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "photon").rglob("__init__.py")}
    found |= {
        ".".join(("photon_backends", *init.parent.relative_to(ROOT / "backends").parts))
        for init in (ROOT / "backends").rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == found
    console = ROOT / "photon" / "server" / "console"
    shipped = setuptools["package-data"]["photon.server"]
    files = {p.relative_to(console.parent).as_posix() for p in console.rglob("*") if p.is_file()}
    assert files and all(any(Path(f).match(pattern) for pattern in shipped) for f in files)
