from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.errors import ConfigurationError
from gateway.settings import load_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPSGRAPH_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./.opsgraph/opsgraph.db"
    assert settings.redis_url is None
    assert settings.connectors() == {}


def test_connectors_come_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGRAPH_ERP__BASE_URL", "http://127.0.0.1:9102")
    monkeypatch.setenv("OPSGRAPH_ERP__SECRET", "s3cret")
    settings = load_settings()
    assert list(settings.connectors()) == ["erp"]
    assert str(settings.erp.base_url) == "http://127.0.0.1:9102/"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OPSGRAPH_DATABASE_URL", "mysql://db/x", "OPSGRAPH_DATABASE_URL: Value error, driver"),
        ("OPSGRAPH_DATABASE_URL", "::nonsense::", "OPSGRAPH_DATABASE_URL: Value error, not a"),
        ("OPSGRAPH_REDIS_URL", "http://x", "OPSGRAPH_REDIS_URL: Value error, must start with"),
        ("OPSGRAPH_PORT", "99999", "OPSGRAPH_PORT: Input should be less than or equal to 65535"),
        ("OPSGRAPH_CRM__BASE_URL", "not a url", "OPSGRAPH_CRM__BASE_URL: Input should be a valid"),
    ],
)
def test_a_bad_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert err.value.message.startswith(message)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_the_cli_stops_with_one_line_on_a_bad_database_url() -> None:
    done = _cli("migrate", OPSGRAPH_DATABASE_URL="mysql://db/x")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "opsgraph: OPSGRAPH_DATABASE_URL: Value error, driver 'mysql' is not supported; "
        "use one of ['postgresql+asyncpg', 'sqlite+aiosqlite']"
    ]
    assert "Traceback" not in done.stderr + done.stdout


def test_the_cli_stops_with_one_line_on_a_bad_ownership_file(tmp_path: object) -> None:
    done = _cli("serve", OPSGRAPH_OWNERSHIP_FILE="/nonexistent/ownership.toml")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "opsgraph: ownership file /nonexistent/ownership.toml: No such file or directory"
    ]
