"""Every documented MailUp answer lands in the right class (no I/O)."""

import random

import pytest

from worker.engine.retry import backoff
from worker.mailup.errors import (
    SMS_SENT_CODES,
    AccountBlocked,
    AmbiguousError,
    Api,
    Condition,
    PermanentError,
    TransientError,
    classify,
    parse_retry_after,
)

SMS_ACCOUNT_LEVEL = {"104": Condition.NO_SENDER_NAME, "205": Condition.NO_CREDITS}
SMS_PERMANENT = [(400, str(c)) for c in range(100, 108)] + [(403, str(c)) for c in range(201, 208)]
EMAIL_ACCOUNT_LEVEL = ["102", "103", "104", "105", "106", "107", "108", "112"]


def _class(api: Api, status: int, code: str | None, **options: object) -> object:
    verdict = classify(api, status, code, idempotent=False, **options)  # type: ignore[arg-type]
    return None if verdict is None else verdict[0]


@pytest.mark.parametrize(("status", "code"), SMS_PERMANENT)
def test_documented_sms_errors_are_permanent_or_pause_the_account(status: int, code: str) -> None:
    expected = AccountBlocked if code in SMS_ACCOUNT_LEVEL else PermanentError
    assert _class(Api.SMS, status, code) is expected


@pytest.mark.parametrize("status", [401, 403])
def test_sms_access_denied_pauses_the_channel(status: int) -> None:
    assert classify(Api.SMS, status, "250", idempotent=False) == (
        AccountBlocked,
        Condition.ACCESS_DENIED,
    )


def test_a_refused_list_secret_is_named() -> None:
    assert classify(Api.SMS, 400, "103", idempotent=False) == (
        PermanentError,
        Condition.LIST_SECRET_INVALID,
    )


@pytest.mark.parametrize(("status", "code"), [(500, "300"), (500, "302"), (502, None), (504, None)])
def test_a_5xx_is_no_proof_that_nothing_happened(status: int, code: str | None) -> None:
    assert _class(Api.SMS, status, code) is AmbiguousError
    # ...but an idempotent call may simply be repeated
    assert classify(Api.SMS, status, code, idempotent=True) == (TransientError, None)


def test_503_is_proof_only_with_retry_after() -> None:
    assert _class(Api.EMAIL, 503, None, retry_after=5.0) is TransientError
    assert _class(Api.EMAIL, 503, None) is AmbiguousError


def test_429_was_not_acted_on() -> None:
    assert _class(Api.CONSOLE, 429, "429") is TransientError
    assert _class(Api.SMS, 429, None) is TransientError


@pytest.mark.parametrize("code", ["0", "301"])
def test_sent_sms_answers_are_success(code: str) -> None:
    assert classify(Api.SMS, 200, code, idempotent=False, success_codes=SMS_SENT_CODES) is None


def test_301_means_sent_only_for_sms() -> None:
    assert _class(Api.SMS, 200, "301") is PermanentError


@pytest.mark.parametrize("code", EMAIL_ACCOUNT_LEVEL)
def test_email_answers_that_stop_the_whole_account_pause_it(code: str) -> None:
    assert _class(Api.EMAIL, 403, code) is AccountBlocked


@pytest.mark.parametrize("code", ["101", "109", "110", "111"])
def test_email_answers_about_the_message_are_permanent(code: str) -> None:
    assert _class(Api.EMAIL, 403, code) is PermanentError


def test_email_operation_failed_is_permanent() -> None:
    assert _class(Api.EMAIL, 400, "1") is PermanentError


def test_an_undocumented_error_code_on_200_is_not_retried() -> None:
    assert _class(Api.SMS, 200, "999") is PermanentError


def test_retry_after_header() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_bounded_by_the_cap() -> None:
    rng = random.Random(1)
    delays = [backoff(3, base=2, cap=600, rng=rng) for _ in range(2000)]
    assert 0 <= min(delays) < 0.5  # full jitter reaches down to zero
    assert 7 < max(delays) <= 8  # and up to base * 2**(attempt-1)
    assert max(backoff(30, base=2, cap=60, rng=rng) for _ in range(200)) <= 60


def test_backoff_never_undercuts_retry_after() -> None:
    rng = random.Random(2)
    assert min(backoff(1, base=1, cap=2, retry_after=30, rng=rng) for _ in range(100)) == 30


@pytest.mark.parametrize("api", list(Api))
def test_a_404_is_named_not_found_and_pauses_nothing(api: Api) -> None:
    assert classify(api, 404, None, idempotent=True) == (PermanentError, Condition.NOT_FOUND)
    # A documented code keeps its own name
    assert classify(Api.SMS, 404, "103", idempotent=True) == (
        PermanentError,
        Condition.LIST_SECRET_INVALID,
    )
