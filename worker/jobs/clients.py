"""MailUp clients built from the settings of a job's account: credentials never come from
the job's payload, the broker or the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from worker.errors import ConfigurationError
from worker.ledger.crypto import secret_box
from worker.ledger.db import connection
from worker.ledger.models import SmtpUserAccount
from worker.mailup.console import ConsoleClient
from worker.mailup.http import Timeouts
from worker.mailup.oauth import OAuthClient
from worker.mailup.sms import SmsClient
from worker.mailup.transactional import SmtpUser, TransactionalClient
from worker.settings import DEFAULT_ACCOUNT, Settings

if TYPE_CHECKING:
    from worker.tokens import AccessTokens


def variable(account: str, field: str) -> str:
    """The environment variable that holds ``field`` of ``account``."""
    if account == DEFAULT_ACCOUNT:
        return f"MAILUP_{field.upper()}"
    return f"MAILUP_JOBS_ACCOUNTS[{account!r}].{field}"


def _require(account: str, values: dict[str, object]) -> None:
    for field, value in values.items():
        if not value:
            raise ConfigurationError(f"{variable(account, field)} is not set")


def _timeouts(settings: Settings) -> Timeouts:
    return Timeouts(settings.connect_timeout, settings.read_timeout)


def oauth_client(settings: Settings, account: str) -> OAuthClient:
    config = settings.account(account)
    secret = config.client_secret.get_secret_value()
    password = config.password.get_secret_value()
    _require(
        account,
        {
            "client_id": config.client_id,
            "client_secret": secret,
            "username": config.username,
            "password": password,
        },
    )
    return OAuthClient(
        settings.token_url,
        client_id=config.client_id,
        client_secret=secret,
        username=config.username,
        password=password,
        timeouts=_timeouts(settings),
    )


def sms_client(settings: Settings, account: str) -> SmsClient:
    config = settings.account(account)
    _require(
        account,
        {
            "account_id": config.account_id,
            "username": config.username,
            "password": config.password.get_secret_value(),
        },
    )
    assert config.account_id is not None
    return SmsClient(
        settings.sms_url,
        account_id=config.account_id,
        username=config.username,
        password=config.password.get_secret_value(),
        timeouts=_timeouts(settings),
    )


def transactional_client(settings: Settings, account: str) -> TransactionalClient:
    """SendMessage / SendTemplate / ListUserInfo as the account's SMTP+ user.

    Its secret comes from settings or, when unset there, from the password MailUp returned
    when this system created or reset that user (stored encrypted).
    """
    config = settings.account(account)
    secret = config.smtp_secret.get_secret_value() or _stored_password(
        settings, account, config.smtp_user
    )
    _require(account, {"smtp_user": config.smtp_user, "smtp_secret": secret})
    return TransactionalClient(
        settings.send_url, user=SmtpUser(config.smtp_user, secret), timeouts=_timeouts(settings)
    )


# Per settings object (held, so its id cannot be reused): the process's token source.
_token_sources: dict[int, tuple[Settings, AccessTokens]] = {}


def _tokens(settings: Settings) -> AccessTokens:
    from worker.tokens import access_tokens  # the token store needs this module's oauth_client

    if id(settings) not in _token_sources:
        _token_sources[id(settings)] = (settings, access_tokens(settings))
    return _token_sources[id(settings)][1]


def console_client(settings: Settings, account: str) -> ConsoleClient:
    """The Console API with the account's shared OAuth2 token."""
    tokens = _tokens(settings)
    return ConsoleClient(
        settings.console_url,
        token=lambda: tokens.get(account),
        renew=lambda rejected: tokens.renew(account, rejected),
        timeouts=_timeouts(settings),
    )


def _stored_password(settings: Settings, account: str, username: str) -> str:
    if not username:
        return ""
    with connection(settings.ledger_url) as db:
        encrypted = db.scalar(
            select(SmtpUserAccount.password_encrypted).where(
                SmtpUserAccount.account == account, SmtpUserAccount.username == username
            )
        )
    return secret_box(settings).decrypt(encrypted) if encrypted else ""
