"""What a process checks before it starts, so that nothing fails mid-job for a setting it
could have checked: ``mailup-jobs worker`` and ``beat`` refuse to start when a check fails;
``mailup-jobs check`` runs the same ones plus connectivity (broker, MailUp's hosts).

Every check is one line naming what to fix: the variable, or the command to run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.exc import SQLAlchemyError

from worker.app import check_broker, create_app
from worker.engine.clients import require, stored_smtp_password, variable
from worker.errors import ConfigurationError
from worker.jobs.registry import KINDS
from worker.ledger import migrate
from worker.ledger.crypto import secret_box
from worker.settings import DEFAULT_ACCOUNT, AccountSettings, Settings, get_settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def startup_checks() -> list[Check]:
    """What ``worker`` and ``beat`` need: settings, the secret key, credentials, a ledger at
    the code's revision. Stops at the first check that leaves nothing else to check."""
    try:
        settings = get_settings()
        check_broker(settings)
    except ConfigurationError as exc:
        return [Check("settings", False, str(exc))]
    checks = [Check("settings", True, "read")]
    checks.append(_check("secret key", lambda: _secret_key(settings)))
    checks.append(_check("ledger", lambda: _ledger(settings)))
    for account, config in settings.accounts.items():
        check_account = functools.partial(_account, settings, account, config)
        checks.append(_check(f"account {account}", check_account))
    checks.append(_check("credentials", lambda: _some_credentials(settings)))
    return checks


def all_checks() -> list[Check]:
    """``mailup-jobs check``: the start checks, then the broker and MailUp's hosts."""
    checks = startup_checks()
    if not checks[0].ok:
        return checks
    settings = get_settings()
    checks.append(_check("broker", lambda: _broker(settings)))
    for name, url in _mailup_urls(settings):
        checks.append(_check(name, functools.partial(_answers, url, settings.connect_timeout)))
    return checks


def _check(name: str, run: Callable[[], str]) -> Check:
    try:
        return Check(name, True, run())
    except ConfigurationError as exc:
        return Check(name, False, str(exc))


def _secret_key(settings: Settings) -> str:
    secret_box(settings)
    if settings.secret_key.get_secret_value():
        return "MAILUP_JOBS_SECRET_KEY is a valid key"
    return f"generated once into {settings.data_dir / 'secret.key'} (one host only)"


def _ledger(settings: Settings) -> str:
    url = settings.ledger_url
    shown = migrate.shown(url)
    try:
        revision = migrate.current(url)
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"{shown} is unreachable: {_first_line(exc)}") from None
    expected = migrate.head()
    if revision is None:
        raise ConfigurationError(f"{shown} has no tables yet: run `mailup-jobs migrate`")
    if revision != expected:
        raise ConfigurationError(
            f"{shown} is at revision {revision}, the code needs {expected}: "
            "run `mailup-jobs migrate`"
        )
    return f"{shown} at revision {revision}"


def _account(settings: Settings, account: str, config: AccountSettings) -> str:
    """Each group of credentials is complete, or absent."""
    password = config.password.get_secret_value()
    basic = {"username": config.username, "password": password}
    if any(basic.values()):
        require(account, basic)
    uses = []
    if config.account_id is not None:
        require(account, basic)
        uses.append("SMS")
    oauth = {
        "client_id": config.client_id,
        "client_secret": config.client_secret.get_secret_value(),
    }
    if any(oauth.values()):
        require(account, {**oauth, **basic})
        uses.append("Console")
    if config.smtp_user or config.smtp_secret.get_secret_value():
        secret = config.smtp_secret.get_secret_value() or _stored(settings, account, config)
        require(account, {"smtp_user": config.smtp_user, "smtp_secret": secret})
        uses.append("transactional email")
    unknown = sorted(set(config.delivery) - set(KINDS))
    if unknown:
        name = "MAILUP_JOBS_DELIVERY"
        if account != DEFAULT_ACCOUNT:
            name = variable(account, "delivery")
        raise ConfigurationError(
            f"{name} names unknown job kinds {unknown}; known: {', '.join(sorted(KINDS))}"
        )
    return ", ".join(uses) if uses else "no credentials (not used)"


def _stored(settings: Settings, account: str, config: AccountSettings) -> str:
    try:
        return stored_smtp_password(settings, account, config.smtp_user)
    except SQLAlchemyError:
        return ""  # the ledger check says why


def _some_credentials(settings: Settings) -> str:
    for config in settings.accounts.values():
        if config.account_id is not None or config.client_id or config.smtp_user:
            return "at least one account can reach MailUp"
    raise ConfigurationError(
        "no MailUp credentials: set MAILUP_ACCOUNT_ID, MAILUP_USERNAME and MAILUP_PASSWORD "
        "(SMS), MAILUP_CLIENT_ID and MAILUP_CLIENT_SECRET (Console), or MAILUP_SMTP_USER "
        "and MAILUP_SMTP_SECRET (transactional email)"
    )


def _broker(settings: Settings) -> str:
    shown = maybe_sanitize_url(settings.broker_url)
    try:
        with create_app(settings).connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, timeout=settings.connect_timeout)
    except Exception as exc:
        raise ConfigurationError(f"{shown} is unreachable: {_first_line(exc)}") from None
    return f"{shown} answers"


def _mailup_urls(settings: Settings) -> Iterator[tuple[str, str]]:
    yield "MAILUP_SMS_URL", settings.sms_url
    yield "MAILUP_SEND_URL", settings.send_url
    yield "MAILUP_CONSOLE_URL", settings.console_url
    yield "MAILUP_TOKEN_URL", settings.token_url


def _answers(url: str, timeout: float) -> str:
    """Any HTTP answer will do: this checks the host and port, not the credentials."""
    try:
        response = requests.get(url, timeout=(timeout, timeout))
    except requests.RequestException as exc:
        raise ConfigurationError(f"{url} does not answer: {type(exc).__name__}") from None
    return f"{url} answers HTTP {response.status_code}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
