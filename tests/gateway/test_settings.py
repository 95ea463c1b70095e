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
        ("OPSGRAPH_DATABASE_URL", "mysql://db/x", "OPSGRAPH_DATABASE_URL: driver"),
        ("OPSGRAPH_DATABASE_URL", "::nonsense::", "OPSGRAPH_DATABASE_URL: not a"),
        ("OPSGRAPH_REDIS_URL", "http://x", "OPSGRAPH_REDIS_URL: must start with"),
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


@pytest.mark.parametrize("system", ["billing", "erp", "crm", "support"])
def test_a_configured_system_needs_a_secret(system: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(f"OPSGRAPH_{system.upper()}__SECRET", raising=False)
    with pytest.raises(ConfigurationError) as err:
        load_settings(**{system: {"base_url": "http://127.0.0.1:8101"}})
    variable = f"OPSGRAPH_{system.upper()}"
    assert err.value.message == f"{variable}__SECRET: required when {variable}__BASE_URL is set"


@pytest.mark.parametrize("secret", ["sandbox secret", "sandbox-secret\n", "\tx", "s\x7f", "sécret"])
@pytest.mark.parametrize("field", ["secret", "webhook_secret"])
def test_a_secret_that_cannot_go_into_a_header_is_refused(field: str, secret: str) -> None:
    erp = {"base_url": "http://127.0.0.1:8102", "secret": "sandbox-secret", field: secret}
    with pytest.raises(ConfigurationError) as err:
        load_settings(erp=erp)
    assert err.value.message == (
        f"OPSGRAPH_ERP__{field.upper()}: "
        "must not contain whitespace, control or non-ASCII characters"
    )


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
        "opsgraph: OPSGRAPH_DATABASE_URL: driver 'mysql' is not supported; "
        "use one of ['postgresql+asyncpg', 'sqlite+aiosqlite']"
    ]
    assert "Traceback" not in done.stderr + done.stdout


def test_the_cli_stops_with_one_line_on_a_bad_ownership_file(tmp_path: object) -> None:
    done = _cli("serve", OPSGRAPH_OWNERSHIP_FILE="/nonexistent/ownership.toml")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "opsgraph: ownership file /nonexistent/ownership.toml: No such file or directory"
    ]
