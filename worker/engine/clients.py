"""MailUp clients built from the settings of a job's account: credentials never come from
the job's payload, the broker or the caller. Every client shares, per process, the
account's OAuth2 token and MailUp's per-second API limits with every other process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy import select

from worker.engine.ratelimit import Lead, RateLimiter, limiter_for, pace
from worker.engine.tokens import AccessTokens, access_tokens
from worker.errors import ConfigurationError
from worker.ledger.crypto import secret_box
from worker.ledger.db import connection
from worker.ledger.models import SmtpUserAccount
from worker.mailup.console import ConsoleClient
from worker.mailup.errors import Condition, MailUpError
from worker.mailup.http import Throttle, Timeouts
from worker.mailup.oauth import OAuthClient
from worker.mailup.sms import SendPace, SmsClient
from worker.mailup.transactional import SmtpUser, TransactionalClient
from worker.settings import DEFAULT_ACCOUNT, Settings

T = TypeVar("T")


def variable(account: str, field: str) -> str:
    """The environment variable that holds ``field`` of ``account``."""
    if account == DEFAULT_ACCOUNT:
        return f"MAILUP_{field.upper()}"
    return f"MAILUP_JOBS_ACCOUNTS[{account!r}].{field}"


def require(account: str, values: Mapping[str, object]) -> None:
    """ConfigurationError naming the first of ``values`` that is not set."""
    for field, value in values.items():
        if not value:
            raise ConfigurationError(f"{variable(account, field)} is not set")


def _timeouts(settings: Settings) -> Timeouts:
    return Timeouts(settings.connect_timeout, settings.read_timeout)


# Per settings object (held, so its id cannot be reused): this process's limiter and tokens.
_shared: dict[int, tuple[Settings, RateLimiter, AccessTokens]] = {}
# Worker threads share them: one thread makes them.
_making = threading.Lock()


def _process_shared(settings: Settings) -> tuple[RateLimiter, AccessTokens]:
    if id(settings) not in _shared:
        with _making:
            if id(settings) not in _shared:
                tokens = access_tokens(settings, lambda account: oauth_client(settings, account))
                _shared[id(settings)] = (settings, limiter_for(settings), tokens)
    _, limiter, tokens = _shared[id(settings)]
    return limiter, tokens


def limiter(settings: Settings) -> RateLimiter:
    return _process_shared(settings)[0]


def throttle(settings: Settings, account: str, api: str) -> Throttle:
    """Wait for the account's next slot under MailUp's per-second limit of ``api``
    ("sms": transactional SMS sends; "console": every other method)."""
    shared, key, per_second = _slots(settings, account, api)
    return lambda: pace(shared, key, per_second)


# How long before their slots this process's SMS sends record their calls (ratelimit.Lead).
_LEAD = Lead()


def send_pace(settings: Settings, account: str) -> SendPace:
    """``throttle`` for SMS sends, running ``ready`` (recording the call) just before the slot."""
    shared, key, per_second = _slots(settings, account, "sms")
    return lambda ready: pace(shared, key, per_second, ready, _LEAD)


def _slots(settings: Settings, account: str, api: str) -> tuple[RateLimiter, str, float]:
    per_second = settings.sms_per_second if api == "sms" else settings.console_per_second
    return limiter(settings), f"{account}:{api}-api", per_second


def oauth_client(settings: Settings, account: str) -> OAuthClient:
    config = settings.account(account)
    secret = config.client_secret.get_secret_value()
    password = config.password.get_secret_value()
    require(
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
    password = config.password.get_secret_value()
    require(
        account,
        {"account_id": config.account_id, "username": config.username, "password": password},
    )
    assert config.account_id is not None
    return SmsClient(
        settings.sms_url,
        account_id=config.account_id,
        username=config.username,
        password=password,
        timeouts=_timeouts(settings),
        send_pace=send_pace(settings, account),
        api_throttle=throttle(settings, account, "console"),
    )


def console_client(settings: Settings, account: str) -> ConsoleClient:
    """The Console API with the account's shared OAuth2 token."""
    tokens = _process_shared(settings)[1]
    return ConsoleClient(
        settings.console_url,
        token=lambda: tokens.get(account),
        renew=lambda rejected: tokens.renew(account, rejected),
        timeouts=_timeouts(settings),
        throttle=throttle(settings, account, "console"),
    )


def with_smtp_user(settings: Settings, account: str, use: Callable[[TransactionalClient], T]) -> T:
    """``use`` a transactional client as the account's SMTP+ user.

    Its secret is the password MailUp returned when this system last created or reset that
    user (stored encrypted: a reset makes the old one invalid), else the setting. When
    MailUp says one is not authorized (nothing is sent then), the other is tried.
    """
    config = settings.account(account)
    secrets = [stored_smtp_password(settings, account, config.smtp_user)]
    secrets.append(config.smtp_secret.get_secret_value())
    candidates = [s for s in dict.fromkeys(secrets) if s]
    require(account, {"smtp_user": config.smtp_user, "smtp_secret": candidates})
    for number, secret in enumerate(candidates, start=1):
        client = TransactionalClient(
            settings.send_url,
            user=SmtpUser(config.smtp_user, secret),
            timeouts=_timeouts(settings),
            api_throttle=throttle(settings, account, "console"),
        )
        try:
            return use(client)
        except MailUpError as exc:
            if exc.condition != Condition.SMTP_NOT_AUTHORIZED or number == len(candidates):
                raise
    raise AssertionError("unreachable: the last candidate returns or raises")


def stored_smtp_password(settings: Settings, account: str, username: str) -> str:
    """The password this system stored for an SMTP+ user ("" if none)."""
    if not username:
        return ""
    with connection(settings.ledger_url) as db:
        encrypted = db.scalar(
            select(SmtpUserAccount.password_encrypted).where(
                SmtpUserAccount.account == account, SmtpUserAccount.username == username
            )
        )
    return secret_box(settings).decrypt(encrypted) if encrypted else ""
