"""MailUp clients built from the settings of a job's account: credentials never come from
the job's payload, the broker or the caller."""

from __future__ import annotations

from worker.errors import ConfigurationError
from worker.mailup.http import Timeouts
from worker.mailup.sms import SmsClient
from worker.settings import DEFAULT_ACCOUNT, Settings


def variable(account: str, field: str) -> str:
    """The environment variable that holds ``field`` of ``account``."""
    if account == DEFAULT_ACCOUNT:
        return f"MAILUP_{field.upper()}"
    return f"MAILUP_JOBS_ACCOUNTS[{account!r}].{field}"


def sms_client(settings: Settings, account: str) -> SmsClient:
    config = settings.account(account)
    for field, value in (
        ("account_id", config.account_id),
        ("username", config.username),
        ("password", config.password.get_secret_value()),
    ):
        if not value:
            raise ConfigurationError(f"{variable(account, field)} is not set")
    assert config.account_id is not None
    return SmsClient(
        settings.sms_url,
        account_id=config.account_id,
        username=config.username,
        password=config.password.get_secret_value(),
        timeouts=Timeouts(settings.connect_timeout, settings.read_timeout),
    )
