"""MailUp's own API limits (LIMITS.md), shared by every worker process, host and operator
read: the sandbox enforces them as MailUp does (429 past the cap), and a full load of
workers and reads never meets one, while using nearly all of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from producers import send_sms
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import statuses

pytestmark = pytest.mark.slow


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


def _rate(times: list[float]) -> float:
    """Calls per second over the steady middle of a run (the first and last tenth left out)."""
    times = sorted(times)
    cut = len(times) // 10
    steady = times[cut : len(times) - cut]
    return (len(steady) - 1) / (steady[-1] - steady[0])


def test_two_workers_send_at_mailups_sms_cap_and_never_past_it(
    env: Env,
    redis_broker: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
) -> None:
    # Given two worker processes of 4 each on one Redis, MailUp answering in 20 ms and
    # enforcing 30 SMS calls per second, and more work than the cap lets through
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker, MAILUP_JOBS_LOG_LEVEL="WARNING")
    sandbox.set_faults(latency_ms=20)
    jobs = [send_sms(list_id=1, recipient=f"+39335{n:07d}", content="hi") for n in range(450)]
    spawn("worker", "-c", "4")
    spawn("worker", "-c", "4", "-n", "second@%h")

    wait_for(lambda: set(statuses(jobs).values()) == {"succeeded"}, 120, "all sent")

    # Then MailUp never answered 429, and the rate stayed within 10 % of the cap
    assert sandbox.counts()["limited"] == 0
    rate = _rate([d["time"] for d in sandbox.deliveries()])
    print(f"\nSMS calls per second at the cap of 30: {rate:.1f}")
    assert 27 <= rate <= 30


def test_concurrent_operator_reads_share_the_console_cap(
    env: Env, redis_broker: str, sandbox: Sandbox
) -> None:
    from producers.console import list_trusted_senders

    # Given three operators (threads; processes share the same way) reading for 4 seconds
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker)
    stop = time.monotonic() + 4
    errors: list[Exception] = []

    def read() -> None:
        while time.monotonic() < stop:
            try:
                list_trusted_senders(refresh=True)
            except Exception as exc:  # a 429 would surface here
                errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then MailUp never refused one, and they got close to its 5 calls per second
    assert errors == [] and sandbox.counts()["limited"] == 0
    reads = [e["time"] for e in sandbox.journal(operation="trusted_senders_list")]
    rate = _rate(reads)
    print(f"\nConsole calls per second at the cap of 5: {rate:.2f}")
    assert 4.5 <= rate <= 5
