"""Group commit: many threads' claims and writes served together, each caller answered with
its own result only once it is true (SQLite and PostgreSQL for the writes)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import insert, select

from producers import send_sms
from tests.conftest import Env
from tests.helpers import statuses
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.group_commit import Group, GroupCommit
from worker.ledger.models import AttemptOutcome, JobStatus, LedgerMeta, utcnow
from worker.settings import get_settings


def test_every_caller_gets_its_own_answer_after_it_is_served() -> None:
    # Given a slow service in two lanes, and 40 threads asking at once
    served: set[int] = set()
    lock = threading.Lock()

    def serve(asked: list[int]) -> list[int | BaseException]:
        time.sleep(0.02)
        with lock:
            served.update(asked)
        return [n * 10 for n in asked]

    group: Group[int, int] = Group(serve, lanes=2)

    def ask(n: int) -> tuple[int, bool]:
        answer = group(n)
        with lock:
            return answer, n in served  # answered only once served

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(ask, range(400)))

    # Then each got its own answer, never before its call was served
    assert [answer for answer, _ in answers] == [n * 10 for n in range(400)]
    assert all(was_served for _, was_served in answers)


def test_a_failing_service_fails_each_caller_of_its_group() -> None:
    def serve(asked: list[int]) -> list[int | BaseException]:
        return [ValueError(n) if n % 2 else n for n in asked]

    group: Group[int, int] = Group(serve)
    assert group(2) == 2
    with pytest.raises(ValueError):
        group(3)


@pytest.mark.parametrize("ledger", ["sqlite", "postgres"])
def test_writes_are_committed_together_and_a_bad_one_fails_alone(
    ledger: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{ledger}_ledger")
    writer = GroupCommit(url)
    statement = insert(LedgerMeta)

    def write(n: int) -> str:
        key = "dup" if n % 25 == 0 else f"key{n}"  # four callers write the same key
        try:
            writer.commit([(statement, {"key": key, "value": str(n)})])
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(write, range(100)))

    with connection(url) as db:
        keys = set(db.scalars(select(LedgerMeta.key)))
    assert outcomes.count("ok") == 97  # the first "dup" and the 96 others
    assert outcomes.count("IntegrityError") == 3
    assert {f"key{n}" for n in range(100) if n % 25} | {"dup"} <= keys


@pytest.mark.parametrize(
    "status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RETRYING, JobStatus.IN_DOUBT]
)
def test_the_runs_of_many_jobs_are_written_as_one_group(env: Env, status: JobStatus) -> None:
    # Given three claimed jobs whose calls were opened together
    settings = get_settings()
    ids = [send_sms(list_id=1, recipient=f"+39335000000{n}", content="hi") for n in range(3)]
    with connection(settings.ledger_url) as db:
        claims = store.claim_many(db, ids, worker="w/1", lease_seconds=60)
        assert store.open_calls(db, claims) == set(ids)

    # When their outcomes are written in one transaction, each statement as one executemany
    with connection(settings.ledger_url) as db:
        store.execute_merged(
            db,
            [
                statement
                for claim in claims
                for statement in (
                    store.closing(
                        claim,
                        opened=True,
                        worker="w/1",
                        outcome=AttemptOutcome.SUCCEEDED,
                        started_at=utcnow(),
                    ),
                    store.settling(claim, status=status, error="e"),
                )
            ],
        )

    # Then every job moved (not one write per job after a failed group)
    assert statuses(ids) == dict.fromkeys(ids, status)
