"""Every documented MailUp answer lands in the right class (no I/O)."""

import random

import pytest

from worker.jobs.retry import backoff
from worker.mailup.errors import (
    SMS_SENT_CODES,
    PermanentError,
    TransientError,
    classify,
    parse_retry_after,
)

SMS_PERMANENT = [(400, str(c)) for c in range(100, 108)] + [(403, str(c)) for c in range(201, 208)]


@pytest.mark.parametrize(("status", "code"), [*SMS_PERMANENT, (403, "250"), (401, "250")])
def test_documented_sms_errors_are_permanent(status: int, code: str) -> None:
    assert classify(status, code) is PermanentError


@pytest.mark.parametrize(
    ("status", "code"), [(500, "300"), (500, "302"), (503, None), (502, None), (429, None)]
)
def test_server_side_failures_and_throttling_are_transient(status: int, code: str | None) -> None:
    assert classify(status, code) is TransientError


@pytest.mark.parametrize("code", ["0", "301"])
def test_sent_sms_answers_are_success(code: str) -> None:
    assert classify(200, code, SMS_SENT_CODES) is None


def test_301_means_sent_only_for_sms() -> None:
    assert classify(200, "301") is PermanentError


@pytest.mark.parametrize("code", [str(c) for c in range(101, 113)])
def test_documented_email_errors_are_permanent(code: str) -> None:
    assert classify(403, code) is PermanentError


def test_email_operation_failed_is_permanent() -> None:
    assert classify(400, "1") is PermanentError


def test_an_undocumented_error_code_on_200_is_not_retried() -> None:
    assert classify(200, "999") is PermanentError


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
