"""Every setting of mailup-jobs, read from the environment (or from an application's
configuration: ``settings_from``, ``use_settings``) in this one place.

The defaults run on one machine with nothing installed: an SQLite ledger and kombu's
``filesystem://`` broker under ``MAILUP_JOBS_DATA_DIR``. Point ``MAILUP_JOBS_BROKER_URL`` at
``redis://…`` and ``MAILUP_JOBS_DATABASE_URL`` at ``postgresql+psycopg://…`` to run the same
code on many hosts.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.errors import ConfigurationError

DEFAULT_ACCOUNT = "default"

# What a job does when MailUp's answer to a call that changes something is lost: at most
# once (in doubt, a person checks) or at least once (retried, maybe sent twice).
Delivery = Literal["at_most_once", "at_least_once"]


class AccountSettings(BaseModel):
    """One MailUp account: console user, SMS account id, SMTP+ user and sending speed."""

    username: str = ""
    password: SecretStr = SecretStr("")
    account_id: int | None = None
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    smtp_user: str = ""
    smtp_secret: SecretStr = SecretStr("")
    # The purchased speed; 0 means no limit is enforced on our side.
    sms_per_hour: int = Field(default=0, ge=0)
    email_per_hour: int = Field(default=0, ge=0)
    # Per job kind, overriding the kind's own delivery policy for this account.
    delivery: dict[str, Delivery] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    # Where the embedded defaults keep their files (ledger, broker folders, secret key).
    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".mailup-jobs", alias="MAILUP_JOBS_DATA_DIR"
    )
    database_url: str = Field(default="", alias="MAILUP_JOBS_DATABASE_URL")
    broker_url: str = Field(default="filesystem://", alias="MAILUP_JOBS_BROKER_URL")
    # A Fernet key (urlsafe base64, 32 bytes). Empty: generated once into data_dir/secret.key.
    secret_key: SecretStr = Field(default=SecretStr(""), alias="MAILUP_JOBS_SECRET_KEY")

    console_url: str = Field(
        default="https://services.mailup.com/API/v1.1/Rest/ConsoleService.svc",
        alias="MAILUP_CONSOLE_URL",
    )
    token_url: str = Field(
        default="https://services.mailup.com/Authorization/OAuth/Token", alias="MAILUP_TOKEN_URL"
    )
    send_url: str = Field(default="https://send.mailup.com/API/v2.0", alias="MAILUP_SEND_URL")
    sms_url: str = Field(default="https://sendsms.mailup.com/api/v2.0", alias="MAILUP_SMS_URL")

    # The "default" account, from the plain MAILUP_* variables.
    username: str = Field(default="", alias="MAILUP_USERNAME")
    password: SecretStr = Field(default=SecretStr(""), alias="MAILUP_PASSWORD")
    account_id: int | None = Field(default=None, alias="MAILUP_ACCOUNT_ID")
    client_id: str = Field(default="", alias="MAILUP_CLIENT_ID")
    client_secret: SecretStr = Field(default=SecretStr(""), alias="MAILUP_CLIENT_SECRET")
    smtp_user: str = Field(default="", alias="MAILUP_SMTP_USER")
    smtp_secret: SecretStr = Field(default=SecretStr(""), alias="MAILUP_SMTP_SECRET")
    sms_per_hour: int = Field(default=0, ge=0, alias="MAILUP_JOBS_SMS_PER_HOUR")
    email_per_hour: int = Field(default=0, ge=0, alias="MAILUP_JOBS_EMAIL_PER_HOUR")
    # Delivery policy per job kind for the default account, as JSON: {"send_sms": "at_least_once"}.
    # (NoDecode: the JSON text is read by _json, from the environment and an app's config alike.)
    delivery: Annotated[dict[str, Delivery], NoDecode] = Field(
        default_factory=dict, alias="MAILUP_JOBS_DELIVERY"
    )
    # Further accounts, as JSON: {"eu": {"username": "m1", "password": "…", "account_id": 1}}.
    extra_accounts: Annotated[dict[str, AccountSettings], NoDecode] = Field(
        default_factory=dict, alias="MAILUP_JOBS_ACCOUNTS"
    )

    # MailUp's own API limits per account (LIMITS.md), shared by every process and host.
    console_per_second: float = Field(default=5.0, gt=0, alias="MAILUP_JOBS_CONSOLE_PER_SECOND")
    sms_per_second: float = Field(default=30.0, gt=0, alias="MAILUP_JOBS_SMS_PER_SECOND")
    # How often a paused channel is tried again (a probe send, or ListUserInfo for email).
    pause_probe: float = Field(default=60.0, gt=0, alias="MAILUP_JOBS_PAUSE_PROBE")

    # HTTP timeouts towards MailUp, in seconds.
    connect_timeout: float = Field(default=5.0, gt=0, alias="MAILUP_JOBS_CONNECT_TIMEOUT")
    read_timeout: float = Field(default=30.0, gt=0, alias="MAILUP_JOBS_READ_TIMEOUT")

    # Retries of transient failures: full-jitter exponential backoff, bounded.
    max_attempts: int = Field(default=8, ge=1, alias="MAILUP_JOBS_MAX_ATTEMPTS")
    backoff_base: float = Field(default=2.0, gt=0, alias="MAILUP_JOBS_BACKOFF_BASE")
    backoff_cap: float = Field(default=600.0, gt=0, alias="MAILUP_JOBS_BACKOFF_CAP")

    # After a creating call whose answer was lost (a campaign send, a new list, group…), how
    # long the job looks at MailUp for what it made before it is in_doubt (MailUp lists what
    # it made seconds, sometimes minutes, later).
    verify_window: float = Field(default=600.0, gt=0, alias="MAILUP_JOBS_VERIFY_WINDOW")

    # Sweeper: how often it runs, when a published job counts as lost by the broker, and
    # how long a worker owns a running job before it counts as dead.
    sweep_interval: float = Field(default=15.0, gt=0, alias="MAILUP_JOBS_SWEEP_INTERVAL")
    republish_after: float = Field(default=120.0, gt=0, alias="MAILUP_JOBS_REPUBLISH_AFTER")
    lease_margin: float = Field(default=30.0, gt=0, alias="MAILUP_JOBS_LEASE_MARGIN")

    # Trusted senders: how often beat reads them from MailUp, and how long an SMTP+ user
    # creation or a campaign send waits for its senders' confirmation before it fails.
    trusted_sender_poll: float = Field(default=60.0, gt=0, alias="MAILUP_JOBS_TRUSTED_SENDER_POLL")
    sender_confirm_days: float = Field(default=7.0, gt=0, alias="MAILUP_JOBS_SENDER_CONFIRM_DAYS")

    # How often beat asks MailUp how the posted import chunks are doing.
    import_poll: float = Field(default=15.0, gt=0, alias="MAILUP_JOBS_IMPORT_POLL")
    # How often beat reads MailUp's sending queues (three Console calls per account, more
    # when a queue has pages), and how often it looks for due campaign schedules.
    sending_poll: float = Field(default=30.0, gt=0, alias="MAILUP_JOBS_SENDING_POLL")
    schedule_poll: float = Field(default=10.0, gt=0, alias="MAILUP_JOBS_SCHEDULE_POLL")
    # A schedule not dispatched this long after its time is missed, never sent late.
    schedule_max_late: float = Field(default=3600.0, gt=0, alias="MAILUP_JOBS_SCHEDULE_MAX_LATE")
    # When set, beat purges once a day the personal data of jobs finished this many days ago.
    retention_days: int | None = Field(default=None, gt=0, alias="MAILUP_JOBS_RETENTION_DAYS")

    # A MailUp call is a wait: each worker process runs this many jobs at once, on threads
    # ("threads"), or in as many forked processes ("prefork", for kinds that burn CPU).
    worker_pool: Literal["threads", "prefork"] = Field(default="threads", alias="MAILUP_JOBS_POOL")
    worker_concurrency: int = Field(default=64, ge=1, alias="MAILUP_JOBS_CONCURRENCY")
    # Messages each worker process reserves ahead; with acks_late a crash returns them.
    worker_prefetch: int = Field(default=1, ge=1, alias="MAILUP_JOBS_PREFETCH")
    log_level: str = Field(default="INFO", alias="MAILUP_JOBS_LOG_LEVEL")
    # text: readable lines; json: one JSON object a line, for log collectors.
    log_format: Literal["text", "json"] = Field(default="text", alias="MAILUP_JOBS_LOG_FORMAT")
    # Flower's login: user:password, several separated by commas (Flower's basic auth).
    flower_auth: SecretStr = Field(default=SecretStr(""), alias="MAILUP_JOBS_FLOWER_AUTH")

    # The messages of these validators never repeat the value: a URL may hold a password.
    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        url = value.strip()
        if url:
            _check_database_url(url)
        return url

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        url = value.strip() or "filesystem://"  # set but empty, as in a .env: the default
        if not _is_broker_url(url):
            raise ValueError("must be a broker URL, e.g. redis://host:6379/0")
        return url

    @field_validator("console_url", "token_url", "send_url", "sms_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("delivery", "extra_accounts", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        """JSON text (the environment's form, or an application's) or the dict itself."""
        if not isinstance(value, str):
            return value
        if not value.strip():  # set but empty, as in a .env: the default
            return {}
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:  # its message quotes no part of the value
            raise ValueError(f"must be JSON: {exc.msg} (character {exc.pos})") from None

    @field_validator("flower_auth")
    @classmethod
    def _user_password_pairs(cls, value: SecretStr) -> SecretStr:
        pairs = [pair.partition(":") for pair in value.get_secret_value().split(",")]
        filled = all(user.strip() and password.strip() for user, _, password in pairs)
        if value.get_secret_value() and not filled:
            # The message never repeats the value: it holds passwords.
            raise ValueError("must be user:password, several separated by commas")
        return value

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def ledger_is_shared(self) -> bool:
        """A ledger other hosts reach (not SQLite): they must share its key and a broker."""
        return bool(self.database_url) and not self.database_url.startswith("sqlite")

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://"))

    @property
    def lease_seconds(self) -> float:
        """How long a claim lasts: the longest a MailUp call can take, plus a margin."""
        return self.connect_timeout + self.read_timeout + self.lease_margin

    @functools.cached_property  # read on every enqueue: built once
    def accounts(self) -> dict[str, AccountSettings]:
        default = AccountSettings(
            username=self.username,
            password=self.password,
            account_id=self.account_id,
            client_id=self.client_id,
            client_secret=self.client_secret,
            smtp_user=self.smtp_user,
            smtp_secret=self.smtp_secret,
            sms_per_hour=self.sms_per_hour,
            email_per_hour=self.email_per_hour,
            delivery=self.delivery,
        )
        return {DEFAULT_ACCOUNT: default, **self.extra_accounts}

    def account(self, name: str) -> AccountSettings:
        try:
            return self.accounts[name]
        except KeyError:
            raise ConfigurationError(
                f"unknown MailUp account {name!r}: define it in MAILUP_JOBS_ACCOUNTS"
            ) from None


# A URL's scheme (RFC 3986): "redis", "rediss", "redis+socket", "filesystem", …
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _is_broker_url(url: str) -> bool:
    """SCHEME://… with a number for a port, if any: what kombu's transports take."""
    scheme, separator, _ = url.partition("://")
    try:
        _ = urlsplit(url).port  # reading it raises ValueError when it is not a number
    except ValueError:
        return False
    return bool(separator and _SCHEME.fullmatch(scheme))


def _check_database_url(url: str) -> None:
    """A URL SQLAlchemy parses, naming a database it knows; else ValueError saying so."""
    # Imported here: the embedded default (no URL) reads its settings without SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("must be a database URL, e.g. postgresql+psycopg://user@host/db") from None
    try:
        parsed.get_dialect()  # loads the dialect, not its driver
    except NoSuchModuleError:
        raise ValueError(
            f"{parsed.drivername}:// is no database SQLAlchemy knows: "
            "e.g. postgresql+psycopg://user@host/db"
        ) from None


# Every setting's name: its environment variable.
NAMES = frozenset(str(field.alias) for field in Settings.model_fields.values())

# Where the process's settings come from instead of the environment (see use_settings).
_source: Callable[[], Settings] | None = None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once: from the source given to ``use_settings`` (an
    application's configuration), else the environment. A bad variable is one error naming
    it."""
    return _source() if _source is not None else _validated(Settings)


def use_settings(source: Callable[[], Settings] | None) -> None:
    """Make ``source`` the process's settings from the next ``get_settings()`` on (None: the
    environment again). The Flask extension and the Django app give theirs."""
    global _source
    _source = source
    get_settings.cache_clear()


def settings_from(values: Mapping[str, Any], *, named: Callable[[str], str] = str) -> Settings:
    """Settings from ``values`` keyed by their environment variables' names (as Flask's
    ``app.config`` has them); what they leave out comes from the environment. Validated like
    the environment: one ConfigurationError naming each bad setting as ``named`` spells it."""
    unknown = sorted(set(values) - NAMES)
    if unknown:
        raise ConfigurationError(f"unknown setting {named(unknown[0])}")
    return _validated(lambda: Settings(**values), named)


def _validated(read: Callable[[], Settings], named: Callable[[str], str] = str) -> Settings:
    try:
        return read()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = named(str(error["loc"][0])) if error["loc"] else "settings"
            inner = ".".join(str(part) for part in error["loc"][1:])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}{f' ({inner})' if inner else ''}: {message}")
        raise ConfigurationError("invalid setting " + "; ".join(problems)) from None
