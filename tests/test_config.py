"""Configuration: keys, precedence (command line > environment > photon.properties > defaults), errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from photon.core.backend import backend_class, backend_names
from photon.core.config import all_settings, load_config, read_properties
from photon.core.errors import ConfigError, UnknownBackend
from photon.core.store import EventStore


def test_defaults(tmp_path: Path) -> None:
    config = load_config({}, environ={}, cwd=tmp_path)
    assert config["rest.port"] == 3000
    assert config["db.backend"] == "sqlite"
    assert config["sqlite.path"] == "photon.db"
    assert config["admin.user"] == "admin" and config["admin.pass"] == "p4010n"
    assert config["parallel.projections"] >= 1
    assert len(config["admin.secret"]) >= 32
    assert config.sources["rest.port"] == "default"


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "photon.properties").write_text(
        "# comment\nrest.port=4000\nrest.host : 0.0.0.0\nmicroservice.name photon-props\n"
    )
    environ = {"PHOTON_REST_PORT": "5000", "PHOTON_MICROSERVICE_NAME": "from-env"}
    config = load_config({"rest.port": "6000"}, environ=environ, cwd=tmp_path)
    assert config["rest.port"] == 6000 and config.sources["rest.port"] == "command line"
    assert config["microservice.name"] == "from-env"
    assert config["rest.host"] == "0.0.0.0"
    config = load_config({}, environ=environ, cwd=tmp_path)
    assert config["rest.port"] == 5000
    config = load_config({}, environ={}, cwd=tmp_path)
    assert config["rest.port"] == 4000 and config["microservice.name"] == "photon-props"


def test_unknown_key_names_the_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown configuration key 'rest.prot'.*did you mean 'rest.port'"):
        load_config({"rest.prot": "1"}, environ={}, cwd=tmp_path)
    (tmp_path / "photon.properties").write_text("sqlite.pth=/tmp/x\n")
    with pytest.raises(ConfigError, match="photon.properties.*did you mean 'sqlite.path'"):
        load_config({}, environ={}, cwd=tmp_path)


def test_unknown_environment_variable_is_only_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_config({}, environ={"PHOTON_REST_PROT": "1"}, cwd=tmp_path)
    assert config["rest.port"] == 3000
    assert "PHOTON_REST_PROT" in caplog.text and "PHOTON_REST_PORT" in caplog.text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("rest.port", "http", "bad value for rest.port.*whole number"),
        ("rest.port", "70000", "bad value for rest.port.*0-65535"),
        ("parallel.projections", "0", "bad value for parallel.projections.*at least 1"),
        ("sqlite.synchronous", "SOMETIMES", "bad value for sqlite.synchronous.*FULL, NORMAL, OFF"),
        ("log.level", "LOUD", "bad value for log.level"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({key: value}, environ={}, cwd=tmp_path)


def test_photon_aliases(tmp_path: Path) -> None:
    config = load_config({"h2.path": "/tmp/old.db"}, environ={"PHOTON_H2_PATH": "/tmp/env.db"}, cwd=tmp_path)
    assert config["sqlite.path"] == "/tmp/old.db"
    assert backend_class("h2").name == "sqlite"
    assert backend_class("dummy").name == "memory"


def test_unknown_backend_lists_the_available_ones() -> None:
    with pytest.raises(UnknownBackend, match=r"unknown db.backend 'riak' \(available backends: .*sqlite") as error:
        EventStore.open(db_backend="riak")
    for name in ("memory", "file", "sqlite"):
        assert name in str(error.value)
    assert {"sqlite", "h2", "memory", "dummy", "file"} <= set(backend_names())


def test_properties_reader_handles_continuations_and_separators(tmp_path: Path) -> None:
    path = tmp_path / "p.properties"
    path.write_text("! bang comment\na.b = one \\\n  two\nc:d\ne\n")
    assert read_properties(path) == {"a.b": "one two", "c": "d", "e": ""}


def test_unknown_backend_names_the_closest() -> None:
    with pytest.raises(UnknownBackend, match="unknown db.backend 'sqlit'; did you mean 'sqlite'"):
        backend_class("sqlit")


def test_properties_follow_java_escapes(tmp_path: Path) -> None:
    path = tmp_path / "photon.properties"
    # Java reads `p\=q\u00e9` as `p=qé`, a doubled backslash as one, and `key value` as key=value.
    path.write_text(
        "admin.pass=p\\=q\\u00e9\n"
        "sqlite.path = C:\\\\data\\\\photon.db\n"
        "admin.user   ada\n"
        "microservice.name=caf\u00e9\n",
        encoding="utf-8",
    )
    config = load_config({}, environ={}, cwd=tmp_path)
    assert config["admin.pass"] == "p=q\u00e9"
    assert config["sqlite.path"] == "C:\\data\\photon.db"
    assert config["admin.user"] == "ada"
    assert config["microservice.name"] == "caf\u00e9"


def test_properties_with_a_bad_escape_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "photon.properties"
    path.write_text("admin.pass=\\u12\n")
    with pytest.raises(ConfigError, match=r"photon.properties: bad escape"):
        load_config({}, environ={}, cwd=tmp_path)


def test_example_properties_file_reads_back_as_the_defaults(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "photon.properties.example"
    entries = [line[1:] for line in example.read_text().splitlines() if line.startswith("#") and "=" in line]
    settings = [line for line in entries if not line.startswith(" ") and not line.endswith("=")]
    (tmp_path / "photon.properties").write_text("\n".join(settings))
    config = load_config({}, environ={}, cwd=tmp_path)
    for key, setting in all_settings().items():
        if not callable(setting.default) and setting.default is not None:
            assert config[key] == setting.parse(setting.default), key


def test_example_properties_file_lists_every_key() -> None:
    example = Path(__file__).parent.parent / "photon.properties.example"
    text = example.read_text()
    for key, setting in all_settings().items():
        assert f"{key}=" in text, f"{key} is missing from photon.properties.example"
        default = setting.default_text() if not callable(setting.default) else None
        if default is not None:
            assert f"{key}={default}" in text, f"{key}'s default is not {default} in the example"
