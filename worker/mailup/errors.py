"""What MailUp answers mean: every documented answer is classified here and nowhere else.

- success: HTTP 2xx with Code 0 (and SMS Code 301: sent and charged, no statistics);
- permanent: HTTP 400/401/403 or any other application error code — the docs say a
  retry will fail, so it never happens;
- transient: connection refused, connect timeout, HTTP 5xx (SMS codes 300 and 302), 429;
- ambiguous: read timeout or a connection dropped after the request left — MailUp may have
  acted on it, so a non-idempotent call is never retried blindly.
"""

from __future__ import annotations

from typing import ClassVar

SUCCESS_CODES = frozenset({"0"})
# SMS answers that mean "sent": 301 is sent and charged, but DeliveryId is 0.
SMS_SENT_CODES = frozenset({"0", "301"})
SMS_SENT_WITHOUT_STATISTICS = "301"
# Transactional email: the SMTP+ user cannot send (not enabled, blocked, blocked until a
# date, deleted). Every job of the account would fail the same way until that changes.
SMTP_USER_CANNOT_SEND = frozenset({"103", "104", "105", "112"})
# Application codes that MailUp answers with HTTP 500: a server-side failure, worth a retry.
TRANSIENT_CODES = frozenset({"300", "302"})


class MailUpError(Exception):
    """A MailUp call that did not succeed. Texts never carry credentials or request bodies."""

    retryable: ClassVar[bool] = False
    # True where MailUp may have acted on the request although we got no answer.
    outcome_unknown: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after


class PermanentError(MailUpError):
    """Bad input, bad credentials, no credits, opt-out…: retrying would fail the same way."""


class TransientError(MailUpError):
    """The request was not acted on (or failed on MailUp's side): safe to retry later."""

    retryable = True


class AmbiguousError(MailUpError):
    """The request may have been processed; only an idempotent call may be retried."""

    outcome_unknown = True


def classify(
    http_status: int, code: str | None, success_codes: frozenset[str] = SUCCESS_CODES
) -> type[MailUpError] | None:
    """Map an HTTP status and MailUp application code to an error class (None: success)."""
    if http_status == 429 or http_status >= 500 or code in TRANSIENT_CODES:
        return TransientError
    if http_status >= 400:
        return PermanentError
    if code is not None and code not in success_codes:
        return PermanentError
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
