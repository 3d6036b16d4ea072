"""HTTP towards MailUp: one requests.Session per thread, explicit timeouts, and the
translation of network failures into transient (never left) or ambiguous (may have left)."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from worker.mailup.errors import (
    SUCCESS_CODES,
    AmbiguousError,
    Api,
    TransientError,
    classify,
    parse_retry_after,
)

# Called right before a request leaves: waits for the account's share of MailUp's API limit.
Throttle = Callable[[], None]


def no_throttle() -> None:
    """For calls MailUp does not limit per second (the token endpoint, email sends)."""


# requests.Session is not documented thread-safe: each worker thread keeps its own (and its
# keep-alive pool); a forked child makes new ones.
_local = threading.local()


def session() -> requests.Session:
    """This thread's session (keep-alive pool)."""
    if getattr(_local, "pid", None) != os.getpid():
        made = requests.Session()
        made.headers["User-Agent"] = "mailup-jobs"
        # requests would re-read the whole environment for proxies on every request; the
        # environment is read once here and in _proxies instead.
        made.trust_env = False
        made.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE", True)
        _local.session, _local.pid = made, os.getpid()
    session_: requests.Session = _local.session
    return session_


def last_status() -> int | None:
    """The HTTP status of the last answer this thread had from MailUp (since ``forget``)."""
    status: int | None = getattr(_local, "last_status", None)
    return status


def forget_last_status() -> None:
    _local.last_status = None


@functools.cache
def _proxies(origin: str) -> dict[str, str]:
    """HTTP(S)_PROXY for this origin, unless NO_PROXY exempts it."""
    return dict(requests.utils.get_environ_proxies(origin))


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0


@dataclass(frozen=True)
class Reply:
    """A MailUp answer that classified as success."""

    http_status: int
    code: str | None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        """The answer's ``Data``: the SMS envelope's, or a bare JSON array or number."""
        return self.body.get("Data")


def _never_left(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the request was not sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def call(
    method: str,
    url: str,
    *,
    api: Api,
    operation: str,
    timeouts: Timeouts,
    idempotent: bool,
    throttle: Throttle = no_throttle,
    success_codes: frozenset[str] = SUCCESS_CODES,
    **kwargs: Any,
) -> Reply:
    """Make one HTTP call and return the parsed success, or raise a classified MailUpError.

    ``operation`` names the call in error texts; the URL and body never appear there.
    """
    throttle()
    try:
        response = session().request(
            method,
            url,
            timeout=(timeouts.connect, timeouts.read),
            proxies=_proxies(_origin(url)),
            **kwargs,
        )
    except requests.ConnectionError as exc:
        if _never_left(exc):
            raise TransientError(f"{operation}: could not connect to MailUp") from None
        if idempotent:
            raise TransientError(f"{operation}: connection dropped", may_have_acted=True) from None
        raise AmbiguousError(
            f"{operation}: connection dropped after the request was sent"
        ) from None
    except requests.Timeout:
        if idempotent:
            raise TransientError(f"{operation}: no answer in time", may_have_acted=True) from None
        raise AmbiguousError(f"{operation}: no answer within {timeouts.read:g}s") from None
    _local.last_status = response.status_code
    body = _json(response)
    code = _first(body, "Code", "ErrorCode", "error")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    verdict = classify(
        api,
        response.status_code,
        code,
        idempotent=idempotent,
        retry_after=retry_after,
        success_codes=success_codes,
    )
    if verdict is None:
        return Reply(response.status_code, code, body)
    error, condition = verdict
    # SMS, email, Console and OAuth2 each name their error text differently.
    described = _first(body, "Description", "Message", "ErrorDescription", "error_description")
    description = described or response.reason or ""
    raise error(
        f"{operation}: HTTP {response.status_code}"
        + (f" code {code}" if code else "")
        + (f": {description}" if description else ""),
        http_status=response.status_code,
        code=code,
        retry_after=retry_after,
        condition=condition,
        may_have_acted=_may_have_acted(api, response.status_code, code, retry_after),
    )


def _may_have_acted(api: Api, status: int, code: str | None, retry_after: float | None) -> bool:
    """Whether the answer would leave a call that is not idempotent in doubt."""
    verdict = classify(api, status, code, idempotent=False, retry_after=retry_after)
    return verdict is not None and verdict[0].outcome_unknown


def _first(body: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if body.get(key) not in (None, ""):
            return str(body[key])
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"Data": body}  # a bare array or number
