"""Bulk submission (SQLite and PostgreSQL): checked like single jobs, all or nothing,
idempotency keys per item, and run by a real threaded worker on Redis, transactional jobs
first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from producers import InvalidJob, send_sms
from producers.audit import sent_to
from producers.bulk import enqueue_many, send_email_many, send_sms_many
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import Recorder, job, job_count, mailup_jobs, statuses
from worker.engine import clients, runner
from worker.jobs.registry import KINDS
from worker.ledger import store
from worker.settings import get_settings

SMS = {"list_id": 1, "content": "hello"}


def _sms(count: int, **extra: object) -> list[dict[str, object]]:
    return [{**SMS, "recipient": f"+39335{n:07d}", **extra} for n in range(count)]


def test_ids_come_back_in_order_and_each_job_is_written(env: Env) -> None:
    items = _sms(25)
    ids = send_sms_many(items)

    assert len(ids) == len(set(ids)) == 25
    assert [job(i)["payload"]["recipient"] for i in ids] == [i["recipient"] for i in items]
    assert {job(i)["priority"] for i in ids} == {8}  # bulk, behind transactional work
    assert job_count() == 25


def test_one_bad_item_refuses_all_naming_it_by_index(env: Env) -> None:
    items = _sms(5)
    items[3] = {**items[3], "recipient": "3350000001"}
    items[4] = {**items[4], "surprise": 1}

    with pytest.raises(InvalidJob) as refused:
        send_sms_many(items)

    assert refused.value.field == "items[3].recipient"
    assert "items[4]" in refused.value.errors
    assert job_count() == 0


def test_idempotency_keys_are_honoured_per_item(env: Env) -> None:
    first = send_sms(**_sms(1)[0], idempotency_key="order-1")
    items = _sms(3)
    items[0] = {**items[0], "idempotency_key": "order-1"}  # the job above, again
    items[1] = {**items[1], "idempotency_key": "order-2"}
    again = {**items[1]}  # the same new key twice in one call: one job

    ids = send_sms_many([*items, again])

    assert ids[0] == first
    assert ids[3] == ids[1] != ids[2]
    assert job_count() == 3
    with pytest.raises(InvalidJob) as refused:
        send_sms_many([{**_sms(2)[1], "idempotency_key": "order-1"}])  # other parameters
    assert refused.value.field == "idempotency_key"
    assert job_count() == 3


def test_thousands_of_jobs_read_back_as_one_by_one(env: Env) -> None:
    # Given a submission past COPY_FROM (PostgreSQL takes it by COPY), a key among them
    first = send_sms(**_sms(1)[0], idempotency_key="order-1")
    items = _sms(store.COPY_FROM + 5)
    items[0] = {**items[0], "idempotency_key": "order-1"}
    items[7] = {**items[7], "idempotency_key": "order-7", "dynamic_fields": {"Name": "Ada"}}

    ids = send_sms_many(items)

    # Then each job reads back as a job written alone: its fields, times and recipient
    assert ids[0] == first
    assert job_count() == len(items)
    seventh = job(ids[7])
    assert seventh["payload"]["dynamic_fields"] == {"Name": "Ada"}
    assert seventh["idempotency_key"] == "order-7"
    assert (seventh["status"], seventh["priority"], seventh["attempts"]) == ("queued", 8, [])
    assert datetime.fromisoformat(seventh["created_at"]).utcoffset() == timedelta(0)
    assert [a.job_id for a in sent_to(str(items[-1]["recipient"]))] == [ids[-1]]
    # …and a second submission with the key finds that job
    assert send_sms_many([items[7]]) == [ids[7]]


def test_bulk_producers_racing_for_keys_get_the_same_jobs(
    env: Env, insert_jobs_calls: list[int]
) -> None:
    writes = insert_jobs_calls
    for round_ in range(10):
        items = [{**item, "idempotency_key": f"{round_}-{n}"} for n, item in enumerate(_sms(1200))]
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(_submit_after, [start, start], [items, items])
        assert first == second
        assert job_count() == 1200 * (round_ + 1)
        if len(writes) > 2 * (round_ + 1):
            return  # one lost the race (COPY met the other's keys): its retry found them
    pytest.fail("the two bulk producers never raced in 10 rounds")


def _submit_after(start: threading.Barrier, items: list[dict[str, object]]) -> list[str]:
    start.wait()
    return send_sms_many(items)


def test_emails_and_any_kind_in_bulk(env: Env) -> None:
    mails = [
        {"sender": "shop@example.com", "to": [f"u{n}@example.com"], "subject": "hi", "html": "x"}
        for n in range(3)
    ]
    mail_ids = send_email_many(mails)
    other = enqueue_many([{"kind": "send_sms", "payload": _sms(1)[0], "priority": 2}])

    assert [job(i)["kind"] for i in mail_ids] == ["send_message"] * 3
    assert job(other[0])["priority"] == 2


@pytest.mark.slow
def test_a_worker_runs_bulk_batches_and_an_otp_goes_before_the_backlog(
    env: Env,
    redis_broker: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given 600 bulk SMS queued, MailUp answering in 50 ms, and a worker of 8 threads
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker, MAILUP_JOBS_LOG_LEVEL="WARNING")
    sandbox.set_faults(latency_ms=50)
    bulk = send_sms_many(_sms(600))
    spawn("worker", "-c", "8")
    wait_for(lambda: len(sandbox.deliveries()) >= 50, 60, "bulk started")

    # When an OTP is enqueued behind the backlog
    asked = time.monotonic()
    otp = send_sms(list_id=1, recipient="+393399999999", content="code 1234")
    wait_for(lambda: job(otp)["status"] == "succeeded", 30, "the OTP sent")
    waited = time.monotonic() - asked

    # Then it went out long before the backlog drained (600 at ~8 / 50 ms takes ~4 s more)
    backlog = sum(1 for s in statuses(bulk).values() if s != "succeeded")
    assert backlog > 100, f"OTP waited {waited:.1f}s, behind {backlog} bulk jobs"
    wait_for(lambda: set(statuses(bulk).values()) == {"succeeded"}, 120, "all bulk sent")
    recipients = [d["recipient"] for d in sandbox.deliveries()]
    assert len(recipients) == len(set(recipients)) == 601  # each once


def test_sms_from_a_csv_file_one_job_a_row(env: Env, tmp_path: Path) -> None:
    rows = ["to,name,campaign_code"] + [f"+39335{n:07d},Ada{n},spring" for n in range(1500)]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n")

    done = mailup_jobs(
        env,
        "enqueue",
        "sms",
        "--list-id",
        "1",
        "--content",
        "Hi [name]",
        "--from-csv",
        str(tmp_path / "people.csv"),
    )

    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == len(set(ids)) == 1500 == job_count()
    last = job(ids[-1])
    assert last["payload"]["dynamic_fields"] == {"name": "Ada1499"}
    assert last["payload"]["campaign_code"] == "spring"
    assert last["priority"] == 8


def test_a_bad_row_names_its_line_and_nothing_is_queued(env: Env, tmp_path: Path) -> None:
    rows = ["to", "+393350000001", "3350000002", "+393350000003"]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n")

    done = mailup_jobs(
        env,
        "enqueue",
        "sms",
        "--list-id",
        "1",
        "--content",
        "Hi",
        "--priority",
        "2",
        "--from-csv",
        str(tmp_path / "people.csv"),
    )

    assert done.returncode == 2
    assert done.stderr.startswith(f"{tmp_path / 'people.csv'}:3: invalid to: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert job_count() == 0


@pytest.mark.parametrize("broker_takes", [2, 1, 0])
def test_a_batch_hands_back_its_rest_in_halves_after_its_turn(
    env: Env, sandbox: Sandbox, list_secret: str, broker_takes: int
) -> None:
    # Given a batch of eight bulk SMS, MailUp answering in 200 ms, a turn of 0.3 s, and a
    # broker that takes this many messages, then is away
    sandbox.set_faults(latency_ms=200)
    ids = send_sms_many(_sms(8))
    offered: list[tuple[list[str], int]] = []

    def hand_back(rest: list[str], priority: int) -> bool:
        offered.append((rest, priority))
        return len(offered) <= broker_takes

    # When one thread runs it
    settings = get_settings()
    ended = runner.run_batch(
        ids,
        settings=settings,
        kinds=KINDS,
        limiter=clients.limiter(settings),
        publish=Recorder(),
        hand_back=hand_back,
        turn=0.3,
    )

    # Then the jobs not started once the turn was over were offered back once, as two
    # halves in order, at the batch's priority
    started = ids[: ids.index(offered[0][0][0])]
    assert 1 <= len(started) <= 3  # 0.3 s of 200 ms calls
    rest = ids[len(started) :]
    half = (len(rest) + 1) // 2
    expected = [rest[:half], rest[half:]][: broker_takes + 1]
    assert [piece for piece, _ in offered] == expected
    assert {priority for _, priority in offered} == {8}
    # the halves the broker took are still queued for other threads; this one ran the rest
    taken = [i for piece in expected[:broker_takes] for i in piece]
    run_here = [i for i in ids if i not in taken]
    assert statuses(taken) == dict.fromkeys(taken, "queued")
    assert statuses(run_here) == dict.fromkeys(run_here, "succeeded")
    assert [ended[i] for i in ids] == [None if i in taken else "succeeded" for i in ids]
    assert len(sandbox.deliveries()) == len(run_here)


def test_each_message_holds_one_account_and_the_accounts_take_turns(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 120 SMS for account "default" and 60 for "other", interleaved
    env.set(MAILUP_JOBS_ACCOUNTS='{"other": {"username": "u", "password": "p", "account_id": 7}}')
    published: list[tuple[list[str], int]] = []

    def publish_batch(ids: list[str], priority: int) -> bool:
        published.append((ids, priority))
        return True

    monkeypatch.setattr("producers.bulk.publish_batch", publish_batch)
    items = [
        {**item, "account": "other"} if n % 3 == 2 else item for n, item in enumerate(_sms(180))
    ]

    ids = send_sms_many(items)

    # Then each message is one account's, the accounts alternating while both have some
    accounts = [{job(i)["account"] for i in batch} for batch, _ in published]
    assert accounts == [{"default"}, {"other"}, {"default"}, {"other"}, {"default"}]
    assert [len(batch) for batch, _ in published] == [50, 50, 50, 10, 20]
    assert sorted(i for batch, _ in published for i in batch) == sorted(ids)
    assert {priority for _, priority in published} == {8}


@pytest.mark.slow
def test_the_default_worker_has_many_calls_in_flight_at_real_latency(
    env: Env,
    redis_broker: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given MailUp answering in 200 ms (its cap of 30 SMS/s kept) and one worker process
    # with the default pool
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker, MAILUP_JOBS_LOG_LEVEL="WARNING")
    sandbox.set_faults(latency_ms=200)
    ids = [send_sms(list_id=1, recipient=f"+39335{n:07d}", content="hi") for n in range(40)]

    # When it runs them
    spawn("worker")
    wait_for(lambda: set(statuses(ids).values()) == {"succeeded"}, 60, "all sent")

    # Then several calls were open at MailUp at once (each stays open 200 ms after arriving)
    arrivals = sorted(d["time"] for d in sandbox.deliveries())
    in_flight = max(
        sum(1 for other in arrivals if arrival - 0.2 < other <= arrival) for arrival in arrivals
    )
    assert len(arrivals) == 40
    assert in_flight >= 4, f"at most {in_flight} calls at once"
