"""What an operator can fix, said in one line: a setting, the ledger or broker down, a
ledger not migrated, MailUp refusing. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


def explain(exc: BaseException) -> str | None:
    """The one line for ``exc``, or None when it is not the operator's to fix."""
    # Imported here: the CLI's start-up stays light for commands that never fail.
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import DBAPIError

    from worker.errors import ConfigurationError
    from worker.ledger.migrate import shown
    from worker.mailup.errors import MailUpError
    from worker.settings import get_settings

    if isinstance(exc, ConfigurationError):
        return f"configuration error: {exc}"
    if isinstance(exc, MailUpError):
        return f"MailUp: {exc.message}"
    if isinstance(exc, (BrokerError, RedisConnectionError)):
        from kombu.utils.url import maybe_sanitize_url

        broker = maybe_sanitize_url(get_settings().broker_url)
        return f"the broker at {broker} is unreachable: {_first_line(exc)}"
    if isinstance(exc, DBAPIError):
        ledger = shown(get_settings().ledger_url)
        text = _first_line(exc.orig or exc)
        if "no such table" in text or "does not exist" in text:
            return f"the ledger at {ledger} is not set up: run `mailup-jobs migrate`"
        return f"the ledger at {ledger} is unreachable: {text}"
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
