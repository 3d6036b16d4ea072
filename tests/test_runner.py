"""One run of a job, in this process, against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from producers import send_sms
from producers.errors import BrokerUnavailableWarning
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import Recorder, job, make_due, run_once
from worker.ledger.models import utcnow


def _sms(**overrides: object) -> str:
    fields = {"list_id": 1, "recipient": "+393350000001", "content": "Hi [Name]"}
    fields.update(overrides)
    return send_sms(**fields)  # type: ignore[arg-type]


def test_a_sent_sms_records_delivery_id_and_cost(sandbox: Sandbox, list_secret: str) -> None:
    job_id = _sms(dynamic_fields={"Name": "Ada"}, campaign_code="welcome")

    assert run_once(job_id) == "succeeded"

    [delivery] = sandbox.deliveries()
    row = job(job_id)
    assert row["outcome"]["delivery_id"] == delivery["delivery_id"] > 0
    assert row["outcome"]["cost"] == delivery["cost"] == 1.0
    assert row["outcome"]["campaign_code"] == "welcome"
    assert delivery["content"] == "Hi Ada"
    assert [(a["outcome"], a["http_status"], a["mailup_code"]) for a in row["attempts"]] == [
        ("succeeded", 200, "0")
    ]


def test_code_301_is_recorded_as_sent_and_flagged(sandbox: Sandbox, list_secret: str) -> None:
    sandbox.set_faults(rate_301=1.0)
    job_id = _sms()

    assert run_once(job_id) == "succeeded"

    outcome = job(job_id)["outcome"]
    assert (outcome["delivery_id"], outcome["statistics_unavailable"]) == (0, True)
    assert outcome["cost"] == 1.0
    assert run_once(job_id) is None  # never sent again
    assert len(sandbox.deliveries()) == 1


def test_a_permanent_code_is_attempted_once(sandbox: Sandbox, list_secret: str) -> None:
    job_id = _sms(recipient="+393330000666")  # opted out

    assert run_once(job_id) == "failed"
    make_due(job_id)
    assert run_once(job_id) is None

    row = job(job_id)
    assert (row["status"], row["last_error_code"]) == ("failed", "206")
    assert [a["outcome"] for a in row["attempts"]] == ["permanent"]
    assert len(sandbox.journal(operation="send_sms")) == 1


def test_a_server_shedding_load_is_retried_and_sent_once(
    sandbox: Sandbox, list_secret: str
) -> None:
    sandbox.force(503, retry_after=1, operation="send_sms")  # before processing
    recorder = Recorder()
    job_id = _sms()

    assert run_once(job_id, recorder) == "retrying"
    [(published_id, _, countdown)] = recorder.published
    assert published_id == job_id and countdown is not None and countdown >= 0.9
    make_due(job_id)
    assert run_once(job_id) == "succeeded"

    attempts = job(job_id)["attempts"]
    assert [(a["outcome"], a["http_status"]) for a in attempts] == [
        ("transient", 503),
        ("succeeded", 200),
    ]
    assert len(sandbox.deliveries()) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_after_mailup_acted_leaves_the_send_in_doubt_not_sent_twice(
    sandbox: Sandbox, list_secret: str, status: int
) -> None:
    # Given MailUp sends the SMS, then answers a 5xx (the docs never say a 5xx means
    # nothing happened)
    sandbox.force(status, operation="send_sms", after_processing=True)
    job_id = _sms()

    # Then the job is in doubt, never tried again by itself: one SMS went out
    assert run_once(job_id) == "in_doubt"
    make_due(job_id)
    assert run_once(job_id) is None
    row = job(job_id)
    assert [(a["outcome"], a["http_status"]) for a in row["attempts"]] == [("in_doubt", status)]
    assert len(sandbox.deliveries()) == 1


def test_at_least_once_delivery_retries_an_unknown_outcome_and_may_send_twice(
    sandbox: Sandbox, list_secret: str, env: Env
) -> None:
    # Given a user who chose retries over doubt for SMS (MAILUP_JOBS_DELIVERY)
    env.set(MAILUP_JOBS_DELIVERY='{"send_sms": "at_least_once"}')
    sandbox.force(500, "300", operation="send_sms", after_processing=True)
    job_id = _sms()

    # Then the unknown outcome is retried — and the recipient gets the SMS twice, the
    # documented price of that choice
    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert len(sandbox.deliveries()) == 2


def test_429_waits_at_least_retry_after(sandbox: Sandbox, list_secret: str) -> None:
    sandbox.set_faults(rate_429=1.0, retry_after=3)
    recorder = Recorder()
    job_id = _sms()

    assert run_once(job_id, recorder) == "retrying"

    [(_, _, countdown)] = recorder.published
    assert countdown is not None and countdown >= 2.9  # (measured from the publication)
    assert run_once(job_id) is None  # not due yet: a duplicate message does nothing


def test_a_connection_dropped_after_sending_leaves_the_job_in_doubt(
    sandbox: Sandbox, list_secret: str
) -> None:
    sandbox.set_faults(drop_after_rate=1.0)
    job_id = _sms()

    assert run_once(job_id) == "in_doubt"
    make_due(job_id)
    assert run_once(job_id) is None  # never retried automatically

    row = job(job_id)
    assert [a["outcome"] for a in row["attempts"]] == ["in_doubt"]
    assert len(sandbox.deliveries()) == 1  # MailUp did send it


def test_a_read_timeout_is_in_doubt(sandbox: Sandbox, list_secret: str, env: Env) -> None:
    env.set(MAILUP_JOBS_READ_TIMEOUT=0.3)
    sandbox.set_faults(latency_ms=1000)
    job_id = _sms()

    assert run_once(job_id) == "in_doubt"


def test_connection_refused_is_retried(list_secret: str, env: Env) -> None:
    env.set(MAILUP_SMS_URL="http://127.0.0.1:9/sms/api/v2.0")
    job_id = _sms()

    assert run_once(job_id) == "retrying"
    assert job(job_id)["attempts"][0]["outcome"] == "transient"


def test_gives_up_after_max_attempts(sandbox: Sandbox, list_secret: str, env: Env) -> None:
    env.set(MAILUP_JOBS_MAX_ATTEMPTS=2)
    sandbox.set_faults(rate_429=1.0, retry_after=0)
    job_id = _sms()

    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "failed"

    row = job(job_id)
    assert row["last_error"].startswith("gave up after 2 attempts")
    assert len(row["attempts"]) == 2


def test_concurrent_deliveries_of_one_message_send_once(sandbox: Sandbox, list_secret: str) -> None:
    job_id = _sms()
    results: list[str | None] = []
    threads = [threading.Thread(target=lambda: results.append(run_once(job_id))) for _ in range(6)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == [None] * 5 + ["succeeded"]
    assert len(sandbox.deliveries()) == 1


def test_the_worker_reads_the_list_secret_on_a_miss(sandbox: Sandbox, env: Env) -> None:
    from producers import manage_list_secret
    from sandbox.state import list_guid

    secret = sandbox.create_list_secret(1)
    run_once(manage_list_secret("read", list_id=1, list_guid=list_guid(1)))
    job_id = _sms()

    assert run_once(job_id) == "succeeded"
    assert sandbox.deliveries()[0]["list_secret_valid"] is True
    assert secret


def test_with_nothing_stored_the_worker_reads_guid_and_secret_from_mailup(
    sandbox: Sandbox, env: Env
) -> None:
    from sandbox.state import list_guid
    from worker.jobs import list_credentials
    from worker.ledger.db import connection
    from worker.settings import get_settings

    secret = sandbox.create_list_secret(2)
    job_id = _sms(list_id=2)

    assert run_once(job_id) == "succeeded"
    assert sandbox.deliveries()[0]["list_secret_valid"] is True
    assert [e["operation"] for e in sandbox.journal()][-3:] == [
        "list_details",
        "listsecret_get",
        "send_sms",
    ]
    settings = get_settings()
    with connection(settings.ledger_url) as db:
        assert list_credentials.load(db, settings, "default", 2) == list_credentials.ListKeys(
            list_guid(2), secret
        )


def test_without_an_oauth_client_an_unknown_guid_fails_naming_the_setting(
    sandbox: Sandbox, env: Env
) -> None:
    env.monkeypatch.delenv("MAILUP_CLIENT_ID")
    env.set()
    sandbox.create_list_secret(2)
    job_id = _sms(list_id=2)

    assert run_once(job_id) == "failed"
    row = job(job_id)
    assert row["last_error_code"] == "configuration"
    assert "no ListGuid is known for list 2" in row["last_error"]
    assert "MAILUP_CLIENT_ID" in row["last_error"]
    assert sandbox.deliveries() == []


def test_a_secret_rotated_elsewhere_is_picked_up(sandbox: Sandbox, list_secret: str) -> None:
    from sandbox.state import list_guid

    sandbox.delete_list_secret(1, list_guid(1))
    sandbox.create_list_secret(1)
    job_id = _sms()

    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert [a["mailup_code"] for a in job(job_id)["attempts"]] == ["103", "0"]


def test_a_job_waits_for_the_account_rate(sandbox: Sandbox, list_secret: str, env: Env) -> None:
    env.set(MAILUP_JOBS_SMS_PER_HOUR=360)  # one every 10 seconds
    recorder = Recorder()
    first, second = _sms(), _sms(recipient="+393350000002")

    assert run_once(first) == "succeeded"
    before = utcnow()
    assert run_once(second, recorder) == "queued"  # released, not failed, no attempt used

    row = job(second)
    assert row["attempts"] == [] and row["attempt_count"] == 0
    [(_, _, countdown)] = recorder.published
    assert countdown is not None and 9 <= countdown <= 20.5
    assert utcnow() - before < timedelta(seconds=3)
    assert len(sandbox.deliveries()) == 1


def test_a_database_error_before_the_call_retries_without_sending(
    sandbox: Sandbox, list_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from worker.ledger import store

    real_opening = store.open_calls

    def database_gone(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(store, "open_calls", database_gone)
    job_id = _sms()

    assert run_once(job_id) == "retrying"  # not failed: MailUp was never called
    assert sandbox.journal(operation="send_sms") == []
    monkeypatch.setattr(store, "open_calls", real_opening)
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert [a["mailup_code"] for a in job(job_id)["attempts"]] == [None, "0"]


def test_list_secret_jobs_create_read_rotate_and_delete(sandbox: Sandbox, env: Env) -> None:
    from producers import manage_list_secret
    from sandbox.state import list_guid
    from worker.jobs import list_credentials
    from worker.ledger.db import connection
    from worker.settings import get_settings

    settings = get_settings()

    def stored() -> list_credentials.ListKeys:
        with connection(settings.ledger_url) as db:
            return list_credentials.load(db, settings, "default", 3)

    def on_mailup() -> str | None:
        return sandbox.state.lists[3].list_secret

    # No GUID given or stored: the worker reads it from the Console API.
    create = manage_list_secret("create", list_id=3)
    assert run_once(create) == "succeeded"
    first = on_mailup()
    assert first and stored() == list_credentials.ListKeys(list_guid(3), first)
    assert job(create)["outcome"] == {"operation": "create", "secret_exists": True, "created": True}

    assert run_once(manage_list_secret("read", list_id=3)) == "succeeded"
    assert stored().secret == first

    before = len(sandbox.journal())
    assert run_once(manage_list_secret("rotate", list_id=3)) == "succeeded"
    second = on_mailup()
    assert second and second != first and stored().secret == second
    operations = [e["operation"] for e in sandbox.journal()[before:]]
    assert operations == ["listsecret_get", "listsecret_delete", "listsecret_create"]

    delete = manage_list_secret("delete", list_id=3)
    assert run_once(delete) == "succeeded"
    assert on_mailup() is None and stored() == list_credentials.ListKeys(list_guid(3), None)

    # An SMS to the list now fails with what to do, and nothing is sent.
    sms = _sms(list_id=3)
    assert run_once(sms) == "failed"
    assert "list-secret create --list-id 3" in job(sms)["last_error"]
    assert sandbox.deliveries() == []


def test_an_sms_meeting_a_rotation_under_way_waits_then_sends(sandbox: Sandbox, env: Env) -> None:
    from producers import manage_list_secret
    from sandbox.state import list_guid

    # Given a rotation queued, and caught between its DELETE and its POST on MailUp
    sandbox.create_list_secret(1)
    rotate = manage_list_secret("rotate", list_id=1)
    sandbox.delete_list_secret(1, list_guid(1))
    job_id = _sms()

    # Then the SMS waits (no attempt spent, nothing sent) instead of failing...
    assert run_once(job_id) == "queued"
    row = job(job_id)
    assert row["attempts"] == [] and "being changed" in row["last_error"]

    # ...and once the rotation is done it goes out with the new secret
    assert run_once(rotate) == "succeeded"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert sandbox.deliveries()[0]["list_secret_valid"] is True


def test_an_sms_refused_103_mid_rotation_is_retried_not_failed(
    sandbox: Sandbox, list_secret: str
) -> None:
    from producers import manage_list_secret
    from sandbox.state import list_guid

    # Given the worker holds the old secret, and a rotation has just deleted it on MailUp
    warm = _sms(recipient="+393350000009")
    assert run_once(warm) == "succeeded"  # the keys are now cached in the worker
    rotate = manage_list_secret("rotate", list_id=1)
    sandbox.delete_list_secret(1, list_guid(1))
    job_id = _sms()

    # Then MailUp's 103 (nothing sent) is retried shortly, and the SMS goes out after all
    assert run_once(job_id) == "retrying"
    assert job(job_id)["attempts"][0]["mailup_code"] == "103"
    assert run_once(rotate) == "succeeded"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert len(sandbox.deliveries()) == 2


def test_an_outcome_that_cannot_be_recorded_ends_in_doubt_not_running(
    sandbox: Sandbox, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from producers import manage_list_secret
    from worker.errors import ConfigurationError
    from worker.jobs import list_credentials

    # Given a worker that cannot write what MailUp answered (here: no key to encrypt with)
    def no_key(*args: object, **kwargs: object) -> None:
        raise ConfigurationError("MAILUP_JOBS_SECRET_KEY must be set")

    monkeypatch.setattr(list_credentials, "save", no_key)
    job_id = manage_list_secret("create", list_id=1)

    # Then the job is in doubt, with the reason, not left running for the sweeper to guess
    assert run_once(job_id) == "in_doubt"
    row = job(job_id)
    assert row["last_error_code"] == "record_failed"
    assert "MAILUP_JOBS_SECRET_KEY" in row["last_error"]
    assert sandbox.state.lists[1].list_secret is not None  # MailUp did create it


def test_a_send_whose_rate_limiter_is_down_retries_and_sends_nothing(
    env: Env, sandbox: Sandbox, list_secret: str
) -> None:
    # Given the broker's Redis (which keeps MailUp's per-second caps) not answering
    env.set(MAILUP_JOBS_BROKER_URL="redis://127.0.0.1:1/0")
    with pytest.warns(BrokerUnavailableWarning):  # the sweeper will publish it
        job_id = send_sms(list_id=1, recipient="+393351234567", content="hello")

    # When the job runs: its call is recorded, then its slot cannot be asked for
    status = run_once(job_id)

    # Then it is tried again later, not in doubt nor failed: the request never left
    assert status == "retrying"
    assert job(job_id)["last_error_code"] == "rate_limiter"
    assert sandbox.deliveries() == []
