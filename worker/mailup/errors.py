"""What MailUp answers mean: every documented answer is classified here and nowhere else.

- success: HTTP 2xx with Code 0 (and SMS Code 301: sent and charged, no statistics);
- permanent: HTTP 4xx or an application error code: the docs say a retry will fail;
- account-level: a code that means nothing of the account's channel can go out until
  someone acts (no SMS credits, a suspended account, a blocked SMTP+ user): the channel
  pauses instead of failing its backlog job by job;
- transient, provably not acted on: connection refused, connect timeout, HTTP 429, and
  503 with Retry-After (a server shedding load before it looks at the request);
- ambiguous: a read timeout, a connection dropped after the request left, or any other
  5xx (MailUp's docs never say a 5xx means nothing happened) — unless the call is
  idempotent, then it is simply transient.
"""

from __future__ import annotations

import enum
from http import HTTPStatus
from typing import ClassVar


class Api(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"  # transactional email (send.mailup.com)
    CONSOLE = "console"
    OAUTH = "oauth"


SUCCESS_CODES = frozenset({"0"})
# SMS answers that mean "sent": 301 is sent and charged, but DeliveryId is 0.
SMS_SENT_CODES = frozenset({"0", "301"})
SMS_SENT_WITHOUT_STATISTICS = "301"


class Condition(enum.StrEnum):
    """A MailUp answer that job kinds react to, by name rather than by code."""

    LIST_SECRET_INVALID = "list_secret_invalid"
    # MailUp does not hold what the call names (HTTP 404, on any API).
    NOT_FOUND = "not_found"
    # Account-level: the channel pauses.
    NO_CREDITS = "no_credits"
    ACCESS_DENIED = "access_denied"
    NO_SENDER_NAME = "no_sender_name"
    SMTP_NOT_AUTHORIZED = "smtp_not_authorized"
    SMTP_USER_DISABLED = "smtp_user_disabled"
    SMTP_USER_BLOCKED = "smtp_user_blocked"
    SMTP_USER_BLOCKED_UNTIL = "smtp_user_blocked_until"
    SMTP_USER_DELETED = "smtp_user_deleted"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_SUSPENDED = "account_suspended"
    ACCOUNT_DELETED = "account_deleted"


_CONDITIONS: dict[Api, dict[str, Condition]] = {
    Api.SMS: {
        "103": Condition.LIST_SECRET_INVALID,
        "104": Condition.NO_SENDER_NAME,
        "205": Condition.NO_CREDITS,
        "250": Condition.ACCESS_DENIED,
    },
    # The token endpoint refusing the console user's password (RFC 6749's error name).
    Api.OAUTH: {"invalid_grant": Condition.ACCESS_DENIED},
    Api.EMAIL: {
        "102": Condition.SMTP_NOT_AUTHORIZED,
        "103": Condition.SMTP_USER_DISABLED,
        "104": Condition.SMTP_USER_BLOCKED,
        "105": Condition.SMTP_USER_BLOCKED_UNTIL,
        "106": Condition.ACCOUNT_NOT_FOUND,
        "107": Condition.ACCOUNT_SUSPENDED,
        "108": Condition.ACCOUNT_DELETED,
        "112": Condition.SMTP_USER_DELETED,
    },
}
# What each documented application code means, in the docs' words (two typos mended): the
# transactional email and SMTP+ table (pages 000 and 001), the SMS table (page 001), and the
# token endpoint's RFC 6749 error names that MailUp's OAuth2 answers with.
MEANINGS: dict[Api, dict[str, str]] = {
    Api.EMAIL: {
        "0": "Ok",
        "1": "The operation failed.",
        "101": "The input is null.",
        "102": "The operation is not authorized.",
        "103": "The user is not enabled.",
        "104": "The user is blocked.",
        "105": "The user is blocked until this date.",
        "106": "The MailUp account cannot be found.",
        "107": "The MailUp account has been suspended.",
        "108": "The MailUp account has been deleted.",
        "109": "At least one recipient is required.",
        "110": "The sender is required.",
        "111": "The template cannot be found.",
        "112": "The user has been deleted.",
    },
    Api.SMS: {
        "0": "Ok.",
        "301": "The message was sent but the statistics are incorrect due to an error",
        "100": "No request found",
        "101": "Missing or empty parameters",
        "102": "ListGUID is not valid for the current account or list",
        "103": "ListSecret is not valid for the current account or list",
        "104": "SMS sender name is empty for list nr. N",
        "105": "Number or Prefix missing in the recipient",
        "106": "Recipient is invalid",
        "107": "Content too long",
        "201": "listID is not valid for the current account or list",
        "202": "ListGUID is not in a correct format",
        "203": "ListSecret is not in a correct format",
        "204": "Cannot send SMS to USA recipient",
        "205": "Sending denied: NO CREDITS",
        "206": "SMS number [recipient] is in optout state for list nr.[idList].",
        "207": "Provided SMS sender is not certified and cannot be used to send messages",
        "250": "Access denied",
        "300": "Operation failed: a generic error occur",
        "302": "Error delivering message to [recipient]",
    },
    Api.OAUTH: {
        "invalid_grant": "The user name or password (or the refresh token) was refused.",
        "invalid_client": "The client id or client secret was refused.",
    },
}


def meaning(api: Api, code: str) -> str | None:
    """What MailUp's docs say ``code`` means on ``api``; None if they say nothing.

    The Console API answers with the HTTP status as its ErrorCode; a Console call may also
    meet the token endpoint's refusal.
    """
    found = MEANINGS.get(api, {}).get(code) or MEANINGS[Api.OAUTH].get(code)
    if found is None and api == Api.CONSOLE and code.isdigit():
        try:
            return f"HTTP {code} {HTTPStatus(int(code)).phrase}"
        except ValueError:
            return None
    return found


ACCOUNT_LEVEL = frozenset(Condition) - {Condition.LIST_SECRET_INVALID, Condition.NOT_FOUND}
# Account-level conditions that concern one list only: jobs on other lists still go out.
LIST_LEVEL = frozenset({Condition.NO_SENDER_NAME})


class MailUpError(Exception):
    """A MailUp call that did not succeed. Texts never carry credentials or request bodies."""

    retryable: ClassVar[bool] = False
    # True where MailUp may have acted on the request although we got no answer.
    outcome_unknown: ClassVar[bool] = False
    # True where nothing of the account's channel can be sent until someone acts.
    account_level: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        condition: Condition | None = None,
        may_have_acted: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after
        self.condition = condition
        # MailUp may have acted on the request (an idempotent call's lost answer is retried,
        # yet what it did may show: a delete's 404 on the next try).
        self.may_have_acted = self.outcome_unknown if may_have_acted is None else may_have_acted


class PermanentError(MailUpError):
    """Bad input, bad credentials, opt-out…: retrying would fail the same way."""


class AccountBlocked(PermanentError):
    """Nothing of this account's channel can be sent until someone acts (no credits, a
    suspended account, a blocked SMTP+ user): the channel pauses, the job waits."""

    account_level = True


class TransientError(MailUpError):
    """MailUp provably did not act on the request: safe to try again later."""

    retryable = True


class AmbiguousError(MailUpError):
    """MailUp may have acted on the request: only an idempotent call may be repeated."""

    outcome_unknown = True


def classify(
    api: Api,
    http_status: int,
    code: str | None,
    *,
    idempotent: bool,
    retry_after: float | None = None,
    success_codes: frozenset[str] = SUCCESS_CODES,
) -> tuple[type[MailUpError], Condition | None] | None:
    """Map an answer to an error class and named condition (None: success)."""
    if http_status == 429 or (http_status == 503 and retry_after is not None):
        return TransientError, None
    if http_status >= 500:
        return (TransientError if idempotent else AmbiguousError), None
    condition = _CONDITIONS.get(api, {}).get(code or "")
    if condition is None and http_status == 404:
        condition = Condition.NOT_FOUND
    if condition in ACCOUNT_LEVEL:
        return AccountBlocked, condition
    if http_status >= 400 or (code is not None and code not in success_codes):
        return PermanentError, condition
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
