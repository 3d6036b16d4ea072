"""Validation at the door and idempotency keys (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from producers import (
    ContentTruncatedWarning,
    InvalidJob,
    NotGsmWarning,
    manage_list_secret,
    send_sms,
)
from tests.conftest import Env
from tests.helpers import job, job_count

GOOD = {"list_id": 1, "recipient": "+393350000001", "content": "hello"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipient": "3350000001"}, "recipient"),  # no international prefix
        ({"recipient": "+39 335 abc"}, "recipient"),
        ({"recipient": "+12"}, "recipient"),
        ({"sender": "TwelveChars1"}, "sender"),  # 12 characters
        ({"sender": "Bad sender"}, "sender"),
        ({"template_id": 3}, "template_id"),  # both content and template
        ({"content": None}, "template_id"),  # neither
        ({"list_id": 0}, "list_id"),
        ({"account": "nowhere"}, "account"),
        ({"priority": 12}, "priority"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    env: Env, change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidJob) as raised:
        send_sms(**{**GOOD, **change})  # type: ignore[arg-type]

    assert raised.value.field == field
    assert field in str(raised.value)
    assert job_count() == 0


def test_a_bad_list_guid_is_refused(env: Env) -> None:
    with pytest.raises(InvalidJob, match="list_guid"):
        manage_list_secret("create", list_id=1, list_guid="xxxxxxxx-aaa-bbbb-cccc-e3a98b626156")
    assert job_count() == 0


def test_an_unknown_guid_is_required_only_when_mailup_cannot_tell_it(env: Env) -> None:
    manage_list_secret("rotate", list_id=1)  # the worker reads it from the Console API
    env.monkeypatch.delenv("MAILUP_CLIENT_ID")
    env.set()
    with pytest.raises(InvalidJob, match=r"list_guid.*MAILUP_CLIENT_ID"):
        manage_list_secret("rotate", list_id=2)
    assert job_count() == 1


def test_the_same_idempotency_key_returns_the_first_job(env: Env) -> None:
    first = send_sms(**GOOD, idempotency_key="order-1")  # type: ignore[arg-type]
    again = send_sms(**GOOD, idempotency_key="order-1")  # type: ignore[arg-type]

    assert again == first
    assert job_count() == 1


def test_producers_racing_for_one_key_get_one_job(env: Env, insert_jobs_calls: list[int]) -> None:
    # Count the writes: a producer that lost the race writes again and finds the job
    writes = insert_jobs_calls
    producers = 6
    for round_ in range(20):
        start, key = threading.Barrier(producers), f"race-{round_}"
        with ThreadPoolExecutor(producers) as pool:
            ids = set(pool.map(_produce, [start] * producers, [key] * producers))
        assert len(ids) == 1
        assert job_count() == round_ + 1
        if len(writes) > producers * (round_ + 1):
            return  # a producer lost the race: its retry found the winner's job
    pytest.fail("no two producers raced for a key in 20 rounds")


def _produce(start: threading.Barrier, key: str) -> str:
    start.wait()
    return send_sms(**GOOD, idempotency_key=key)  # type: ignore[arg-type]


def test_an_idempotency_key_reused_for_other_parameters_is_refused(env: Env) -> None:
    send_sms(**GOOD, idempotency_key="order-2")  # type: ignore[arg-type]
    with pytest.raises(InvalidJob) as raised:
        send_sms(**{**GOOD, "content": "other"}, idempotency_key="order-2")  # type: ignore[arg-type]
    assert raised.value.field == "idempotency_key"
    assert job_count() == 1


def test_a_text_past_670_characters_once_merged_is_flagged(env: Env) -> None:
    # 660 characters as written, 690 once [Name] is filled: MailUp sends the first 670
    content = "x" * 654 + "[Name]"
    with pytest.warns(ContentTruncatedWarning, match="690 characters"):
        job_id = send_sms(**{**GOOD, "content": content, "dynamic_fields": {"Name": "y" * 36}})  # type: ignore[arg-type]
    assert job(job_id)["status"] == "queued"

    # and the other way round: long as written, short once merged, is not truncated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = "[LongFieldName]" * 50  # 750 characters as written
        send_sms(**{**GOOD, "content": short, "dynamic_fields": {"LongFieldName": "a"}})  # type: ignore[arg-type]


def test_content_far_past_what_mailup_sends_is_refused(env: Env) -> None:
    with pytest.raises(InvalidJob) as raised:
        send_sms(**{**GOOD, "content": "x" * 1001})  # type: ignore[arg-type]
    assert raised.value.field == "content" and "1000" in str(raised.value)
    assert job_count() == 0


def test_characters_outside_gsm_without_unicode_are_warned_about(env: Env) -> None:
    with pytest.warns(NotGsmWarning, match="'☺Łł'"):
        send_sms(**{**GOOD, "content": "Ciao ☺, grazie Łukasz ł"})  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        send_sms(**{**GOOD, "content": "Ciao ☺", "is_unicode": True})  # type: ignore[arg-type]
        send_sms(**{**GOOD, "content": "Prezzo: 5€ [offerta] {oggi} è così"})  # type: ignore[arg-type]


def test_a_job_is_queued_even_when_the_broker_is_down(env: Env) -> None:
    env.set(MAILUP_JOBS_BROKER_URL="redis://127.0.0.1:9/0")
    job_id = send_sms(**GOOD)  # type: ignore[arg-type]

    from sqlalchemy import select

    from worker.ledger.db import transaction
    from worker.ledger.models import Job
    from worker.settings import get_settings

    with transaction(get_settings().ledger_url) as session:
        published_at = session.scalar(select(Job.published_at).where(Job.id == job_id))
    assert job(job_id)["status"] == "queued"
    assert published_at is None  # the sweeper will publish it
