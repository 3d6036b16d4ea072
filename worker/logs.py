"""Log lines of every mailup-jobs process: readable text, or one JSON object a line
(``MAILUP_JOBS_LOG_FORMAT=json``), and never a secret in either. A text line escapes the
control characters of its message and exception text: a MailUp error text or a user's name
cannot forge a line (JSON escapes them already).

Celery configures the worker's and beat's logging itself; ``on_celery_logging`` (connected
to its ``after_setup_logger`` and ``after_setup_task_logger`` signals in worker.app) then
sets the format and the mask on its handlers. Pool processes are forked after that and
inherit both. Not covered: the note Celery writes straight to stdout from its signal
handler when a worker shuts down ("worker: Warm shutdown").
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from celery.utils.log import get_multiprocessing_logger
from pydantic import BaseModel, SecretStr

from worker.escape import printable
from worker.settings import Settings, get_settings

MASK = "***"
# What the runner's line for each job run carries as record attributes (worker.engine.runner).
JOB_FIELDS = ("job_id", "kind", "account", "attempt", "outcome", "duration_ms", "error")
# Celery's default line, used by the processes Celery does not run.
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"

# An Authorization header's value, whatever its scheme, and a Basic or Bearer credential
# anywhere (long enough not to be a word); OAuth tokens in a form or a JSON body.
_CREDENTIALS = re.compile(
    r"""(?i)(\bauthorization\b["']?\s*[:=]\s*["']?(?:basic\s+|bearer\s+)?)[^\s"',;}]+"""
    r"|(\b(?:basic|bearer)\s+)[A-Za-z0-9+/._~-]{16,}=*"
    r"""|(\b(?:access|refresh)_token\b["']?\s*[:=]\s*["']?)[^\s"'&,;}]+"""
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: each SecretStr of every account and of the settings
    themselves (passwords, client and SMTP+ secrets, the secret key), and the passwords in
    the ledger's and the broker's URLs."""
    models: list[BaseModel] = [settings, *settings.extra_accounts.values()]
    values = [
        value.get_secret_value()
        for model in models
        for name in type(model).model_fields
        if isinstance(value := getattr(model, name), SecretStr)
    ]
    for url in (settings.database_url, settings.broker_url):
        password = urlsplit(url).password
        if password:
            values += [password, unquote(password)]
    return values


class SecretMask(logging.Filter):
    """Replaces secrets with ``***`` in a record's message, exception, stack and extra
    attributes: the values given (as they are and URL-encoded) and credentials by shape."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms = {form for value in secrets if value for form in _encodings(value)}
        # Longest first, so that a secret containing another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def mask(self, text: str) -> str:
        text = _CREDENTIALS.sub(lambda m: (m[1] or m[2] or m[3]) + MASK, text)
        return self._values.sub(MASK, text) if self._values else text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.mask(_message(record)), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for name, value in vars(record).items():
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, self.mask(value))
        return True


def _encodings(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value)}


def _message(record: logging.LogRecord) -> str:
    """The record's message with its arguments."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # arguments that do not fit the format
        return f"{record.msg} {record.args}"


class EscapeControls(logging.Filter):
    """For text lines: a record's message (its arguments in it) and its exceptions' texts
    with their control characters escaped; a traceback keeps its own line breaks. Before the
    mask, which then masks the traceback made here (one made already is left as it is: it
    may be masked)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(_message(record)), ()
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and not record.exc_text:
            record.exc_text = readable_traceback(error)
        return True


def readable_traceback(error: BaseException) -> str:
    """``error``'s traceback, each exception's text in it (of its chain and groups too) on
    one line, escaped."""
    trace = traceback.TracebackException.from_exception(error)
    texts = set(_exception_texts(trace))
    chunks = (printable(c.removesuffix("\n")) + "\n" if c in texts else c for c in trace.format())
    return "".join(chunks).removesuffix("\n")


def _exception_texts(trace: traceback.TracebackException) -> Iterator[str]:
    """What ``trace.format()`` writes of each exception's type, text and notes."""
    yield from trace.format_exception_only()
    for linked in (trace.__cause__, trace.__context__, *(trace.exceptions or ())):
        if linked is not None:
            yield from _exception_texts(linked)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, process, message, a job run's fields
    when the record has them, and the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str)


def install(logger: logging.Logger, settings: Settings) -> None:
    """Give ``logger``'s handlers the configured format and the secret mask (once); for
    text lines, the escapes first."""
    text = settings.log_format != "json"
    filters = [*([EscapeControls()] if text else []), SecretMask(secret_values(settings))]
    for handler in logger.handlers:
        for each in filters:
            if not any(isinstance(existing, type(each)) for existing in handler.filters):
                handler.addFilter(each)
        if not text:
            handler.setFormatter(JsonFormatter())


def on_celery_logging(logger: logging.Logger, **_: Any) -> None:
    """Celery's ``after_setup_logger`` / ``after_setup_task_logger``: the root and task
    loggers, and the multiprocessing logger Celery gave a handler of its own."""
    settings = get_settings()
    for each in (logger, get_multiprocessing_logger()):
        if each is not None:
            install(each, settings)


def on_worker_init(**_: Any) -> None:
    """Celery's ``celeryd_init``, sent before the worker sets up its logging: the warnings
    it gives until then (running as root, say) are lines in the configured format too."""
    configure(get_settings())


def celery_options(settings: Settings) -> list[str]:
    """Options for the `celery` command: its banners are plain text printed outside
    logging, so a JSON log goes without them."""
    return ["--quiet"] if settings.log_format == "json" else []


def configure(settings: Settings) -> None:
    """Log to stderr, with Python's warnings, from a process whose logging Celery has not
    set up (``mailup-jobs metrics``; a worker until Celery takes over)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    install(root, settings)
    logging.captureWarnings(True)
