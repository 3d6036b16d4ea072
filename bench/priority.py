"""Transactional before bulk: how long a one-time-password SMS takes to go out on an idle
system, and behind a 100,000-job bulk send on the same accounts (the yardstick, measured in
the same run), and how much of MailUp's caps the bulk send uses meanwhile.

    python -m bench.priority [--bulk 100000] [--otps 10] [--latency-ms 200] [--accounts 10]

Two workers with the default settings, MailUp (the sandbox) answering in --latency-ms and
keeping its cap of 30 SMS/s per account. Each OTP is a plain ``send_sms`` (priority 5); the
bulk send is ``send_sms_many`` (priority 8), spread over the accounts. An OTP's time is from
its enqueueing to its job's success in the ledger (MailUp has answered).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import redis
import requests
import sqlalchemy

from bench.harness import SANDBOX, accounts, get, use_sandbox, wait

CAP = 30  # MailUp's SMS calls per second per account (LIMITS.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--otps", type=int, default=10, help="OTPs timed, each way.")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    redis.Redis.from_url(args.redis).flushdb()
    sandbox = use_sandbox(args.redis)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        requests.post(f"{SANDBOX}/_sandbox/faults", json={"latency_ms": args.latency_ms}, timeout=5)
        requests.post(f"{SANDBOX}/_sandbox/limits", json={"sms_per_second": CAP}, timeout=5)
        items = accounts(args.accounts, f"{args.postgres}?options=-csearch_path%3D{schema}")
        workers = [_worker(n) for n in range(args.workers)]
        idle = _otps(args, items, "idle")
        bulk = threading.Thread(target=_bulk, args=(args, items), daemon=True)
        bulk.start()
        wait(lambda: _delivered() >= args.accounts * CAP * 5, "the bulk send flowing", 120)
        sent_before, started = _delivered(), time.monotonic()
        behind = _otps(args, items, "behind the bulk send")
        bulk_rate = (_delivered() - sent_before) / (time.monotonic() - started)
        left = _queued()
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
        sandbox.terminate()
        redis.Redis.from_url(args.redis).flushdb()
        from worker.ledger.db import dispose_all

        dispose_all()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    caps = args.accounts * CAP
    p50_idle, p50_behind = statistics.median(idle), statistics.median(behind)
    print(f"\nOTP SMS, {args.accounts} accounts, MailUp answering in {args.latency_ms} ms")
    print("                                  p50 s    max s")
    print(f"  on an idle system           {p50_idle:8.2f} {max(idle):8.2f}")
    behind_label = f"behind {args.bulk:,} bulk jobs"
    print(f"  {behind_label:<28}{p50_behind:8.2f} {max(behind):8.2f}")
    print(f"  ratio (behind / idle, p50)  {p50_behind / p50_idle:8.2f}")
    print(f"bulk send meanwhile: {bulk_rate:.1f} SMS/s ({bulk_rate / caps:.2f} of the caps' sum)")
    print(f"bulk jobs still queued when the last OTP had gone: {left:,}")


def _worker(n: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "producers.cli", "worker", "--hostname", f"prio{n}@%h"]
    return subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)


def _otps(args: argparse.Namespace, items: list[dict[str, Any]], when: str) -> list[float]:
    """Seconds from enqueueing to success for ``--otps`` OTPs, one a second, round the
    accounts."""
    from producers import send_sms

    seconds = []
    for n in range(args.otps):
        item = items[n % len(items)]
        began = time.monotonic()
        job_id = send_sms(**item, recipient=f"+39347{n:07d}", content=f"Your code is {n:06d}")
        wait(functools.partial(_succeeded, job_id), f"OTP {job_id}", 120, every=0.02)
        seconds.append(time.monotonic() - began)
        time.sleep(max(0.0, 1.0 - seconds[-1]))
    print(f"OTP {when}: " + " ".join(f"{s:.2f}" for s in seconds), flush=True)
    return seconds


def _bulk(args: argparse.Namespace, items: list[dict[str, Any]]) -> None:
    from producers.bulk import send_sms_many

    send_sms_many(
        {**items[n % len(items)], "recipient": f"+39335{n:07d}", "content": "Sale!"}
        for n in range(args.bulk)
    )


def _succeeded(job_id: str) -> bool:
    from producers.audit import get_job

    job = get_job(job_id)
    return job is not None and job["status"] == "succeeded"


def _queued() -> int:
    from producers.audit import status_counts

    return status_counts().get("queued", 0)


def _delivered() -> int:
    return int(get("/_sandbox/stats")["deliveries"])


if __name__ == "__main__":
    main()
