from pathlib import Path

import pytest

from worker.errors import ConfigurationError
from worker.settings import get_settings


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in ("MAILUP_JOBS_DATABASE_URL", "MAILUP_JOBS_BROKER_URL", "MAILUP_JOBS_ACCOUNTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAILUP_JOBS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_embedded_defaults_need_nothing_installed(tmp_path: Path) -> None:
    settings = get_settings()
    assert settings.ledger_url == f"sqlite:///{tmp_path / 'ledger.db'}"
    assert settings.broker_url == "filesystem://"
    assert settings.sms_url == "https://sendsms.mailup.com/api/v2.0"


def test_a_malformed_variable_is_one_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILUP_JOBS_READ_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="MAILUP_JOBS_READ_TIMEOUT"):
        get_settings()


def test_more_accounts_come_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILUP_USERNAME", "m1")
    monkeypatch.setenv("MAILUP_JOBS_ACCOUNTS", '{"eu": {"username": "m2", "sms_per_hour": 60}}')
    settings = get_settings()
    assert settings.account("default").username == "m1"
    assert settings.account("eu").sms_per_hour == 60
    with pytest.raises(ConfigurationError, match="'us'"):
        settings.account("us")


def test_a_secret_setting_never_shows_in_its_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILUP_PASSWORD", "hunter2-very-secret")
    settings = get_settings()
    assert "hunter2-very-secret" not in repr(settings)
    assert "hunter2-very-secret" not in repr(settings.account("default"))


def test_a_variable_set_but_empty_is_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAILUP_JOBS_BROKER_URL", "MAILUP_JOBS_DELIVERY", "MAILUP_JOBS_ACCOUNTS"):
        monkeypatch.setenv(name, " ")

    settings = get_settings()

    assert settings.broker_url == "filesystem://"
    assert settings.delivery == settings.extra_accounts == {}
