"""Throughput of SMS jobs through Redis + PostgreSQL + the sandbox, against a baseline
measured in the same run: a bare Celery task making the same HTTP call, with no ledger.

    python -m bench.throughput [--jobs 2000] [--concurrency 64] [--latency-ms 0 50]

Each measure pre-loads the queue with the worker stopped, then starts it; throughput is
counted from the first SMS MailUp received to the last job finished, so start-up and
enqueueing are left out. Prints jobs/s for both, their ratio, the worker processes' peak RSS,
and the CPU time each part of the system spends per job.

The pair is measured once per sandbox answer time (--latency-ms, default 0 and 50 ms). At 0 ms
MailUp costs nothing and the machine's CPU is the bottleneck: the ratio is then the ledger's
CPU cost against the cheapest possible task. A real MailUp call takes tens of milliseconds
or more, so the worker mostly waits on MailUp and the ratio is the time the ledger adds.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
import requests
import sqlalchemy

from bench.harness import PARTS, SANDBOX, CpuMeter, RssWatcher, get, use_sandbox, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="Threads per worker.")
    parser.add_argument(
        "--latency-ms", type=int, nargs="+", default=[0, 50], help="The sandbox's answer times."
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    # The cap must not bind: this measures what the system costs, not MailUp's limit.
    # Each SMS still reserves its slot in the shared limiter, as in production.
    sandbox = use_sandbox(args.redis, MAILUP_JOBS_SMS_PER_SECOND="1000000")
    try:
        results = {ms: _measure(args, ms, sandbox.pid) for ms in args.latency_ms}
    finally:
        sandbox.terminate()

    print(f"\n{args.jobs} SMS jobs per run, concurrency {args.concurrency}, Redis + PostgreSQL")
    print("  MailUp answers in   baseline jobs/s   mailup-jobs jobs/s   ratio")
    for ms, (baseline, system) in results.items():
        ratio = system["rate"] / baseline["rate"]
        print(f"  {ms:>11} ms {baseline['rate']:17.1f} {system['rate']:20.1f} {ratio:7.2f}")
    rss = {name: max(pair[i]["peak_rss_mb"] for pair in results.values()) for i, name in _NAMES}
    print(
        f"  peak RSS per worker process: baseline {rss['baseline']:.0f} MB, "
        f"mailup-jobs {rss['mailup-jobs']:.0f} MB"
    )
    for ms, pair in results.items():
        print(f"\nCPU ms per job at {ms} ms " + "".join(f"{p:>9}" for p in [*PARTS, "total"]))
        for i, name in _NAMES:
            cpu = pair[i]["cpu_ms"]
            cells = [cpu[p] for p in PARTS] + [sum(cpu.values())]
            print(f"  {name:<20}" + "".join(f"{value:9.2f}" for value in cells))


_NAMES = ((0, "baseline"), (1, "mailup-jobs"))


def _measure(args: argparse.Namespace, latency_ms: int, sandbox_pid: int) -> tuple[dict, dict]:
    """The baseline, then the system, with MailUp answering in ``latency_ms``; a fresh ledger."""
    from worker.settings import get_settings

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    os.environ.update(
        MAILUP_JOBS_DATABASE_URL=f"{args.postgres}?options=-csearch_path%3D{schema}",
        MAILUP_JOBS_DATA_DIR=f"/tmp/mailup-jobs-bench-{schema}",
    )
    get_settings.cache_clear()
    try:
        print(f"\n== MailUp answering in {latency_ms} ms", flush=True)
        baseline = _run("baseline", args, latency_ms, _load_baseline, sandbox_pid)
        system = _run("mailup-jobs", args, latency_ms, _load_system, sandbox_pid)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    return baseline, system


def _load_baseline(count: int) -> Callable[[], datetime | None]:
    from bench.baseline import bare_send

    secret = _secret()
    body = {
        "ListGuid": "00000000-0000-4000-8000-000000000001",
        "ListSecret": secret,
        "Content": "Hi [Name]",
        "DynamicFields": [{"N": "Name", "V": "bench"}],
    }
    url = f"{SANDBOX}/sms/api/v2.0/sms/1234/1"
    for n in range(count):
        bare_send.delay(url, {**body, "Recipient": f"+39335{n:07d}", "isUnicode": 0})
    return lambda: None  # the last delivery is the end of a bare task's work


def _load_system(count: int) -> Callable[[], datetime | None]:
    from producers import manage_list_secret
    from producers.bulk import send_sms_many
    from worker.ledger.db import transaction
    from worker.ledger.migrate import upgrade
    from worker.ledger.models import Job
    from worker.settings import get_settings

    url = get_settings().ledger_url
    upgrade(url)
    # The system learns the list's keys through a job, as in production; run it in-process.
    from worker.engine import clients, runner
    from worker.jobs.registry import KINDS

    setup = manage_list_secret(
        "create", list_id=1, list_guid="00000000-0000-4000-8000-000000000001"
    )
    settings = get_settings()
    runner.run(
        setup,
        settings=settings,
        kinds=KINDS,
        limiter=clients.limiter(settings),
        publish=lambda *a: True,
    )
    send_sms_many(
        {
            "list_id": 1,
            "recipient": f"+39335{n:07d}",
            "content": "Hi [Name]",
            "dynamic_fields": {"Name": "bench"},
        }
        for n in range(count)
    )

    def last_finished() -> datetime | None:
        with transaction(url) as session:
            pending = session.scalar(
                sqlalchemy.select(sqlalchemy.func.count()).where(Job.status != "succeeded")
            )
            assert pending == 0, f"{pending} jobs not succeeded"
            return session.scalar(sqlalchemy.select(sqlalchemy.func.max(Job.finished_at)))

    return last_finished


def _run(
    name: str,
    args: argparse.Namespace,
    latency_ms: int,
    load: Callable[[int], Callable[[], Any]],
    sandbox_pid: int,
) -> dict:
    redis.Redis.from_url(args.redis).flushdb()
    requests.post(f"{SANDBOX}/_sandbox/reset", timeout=5)
    requests.post(f"{SANDBOX}/_sandbox/faults", json={"latency_ms": latency_ms}, timeout=5)
    # Nor MailUp's per-second caps, for the baseline as for the system.
    requests.post(f"{SANDBOX}/_sandbox/limits", json={"sms_per_second": 0}, timeout=5)
    print(f"{name}: queueing {args.jobs} jobs…", flush=True)
    last_finished = load(args.jobs)
    app = "bench.baseline" if name == "baseline" else "worker.app"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-Q",
            "mailup-jobs",
            "-c",
            str(args.concurrency),
            "-l",
            "WARNING",
        ],
        start_new_session=True,
    )
    peak = RssWatcher(worker.pid)
    try:
        # CPU is counted over the steady middle of the run, leaving out start-up and the tail.
        wait(lambda: _deliveries() >= args.jobs // 20, f"{name} to start delivering", 120)
        cpu = CpuMeter(worker.pid, sandbox_pid)
        first = _deliveries()
        wait(lambda: _deliveries() >= args.jobs * 19 // 20, f"{name} to deliver", 900)
        cpu_per_job = cpu.per_job(_deliveries() - first)
        wait(lambda: _deliveries() >= args.jobs, f"{name} to deliver {args.jobs} SMS", 900)
        time.sleep(1)  # the last jobs record their outcome
        times = [e["time"] for e in get("/_sandbox/deliveries")["deliveries"]]
        start = min(times)
        end = last_finished()
        end_ts = end.timestamp() if end else max(times)
    finally:
        peak.stop()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    rate = (args.jobs - 1) / (end_ts - start)
    print(f"{name}: {rate:.1f} jobs/s", flush=True)
    return {
        "rate": rate,
        "cpu_ms": cpu_per_job,
        "peak_rss_mb": peak.per_process / 2**20,
    }


def _secret() -> str:
    answer = requests.post(
        f"{SANDBOX}/sms/api/v2.0/lists/1/listsecret",
        auth=("m1234", "sandbox-password"),
        json={"ListGUID": "00000000-0000-4000-8000-000000000001"},
        timeout=5,
    )
    return str(answer.json()["Data"]["ListSecret"])


def _deliveries() -> int:
    return int(get("/_sandbox/stats")["deliveries"])


if __name__ == "__main__":
    main()
