"""SMS throughput at real MailUp answer times, across several accounts each under MailUp's
cap of 30 SMS calls a second, against two yardsticks measured in the same run: the caps'
sum (what MailUp allows), and bare Celery with the same pool making the same call with no
ledger and no caps (what the pool itself can do at that latency).

    python -m bench.latency [--latency-ms 50 200 500] [--accounts 10] [--workers 2]

Each run pre-loads the queue, starts ``--workers`` worker processes with the default
settings (as on a host with that many cores), and counts SMS/s over the steady middle of
the deliveries. The sandbox enforces the caps as MailUp does (429 past them): the system's
429 count shows whether it stayed under them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import uuid

import redis
import requests
import sqlalchemy

from bench.harness import (
    LIST_GUID,
    SANDBOX,
    RssWatcher,
    accounts,
    get,
    list_secret,
    use_sandbox,
    wait,
)

CAP = 30  # MailUp's SMS calls per second per account (LIMITS.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument(
        "--seconds", type=float, default=12, help="Work queued per run, at the caps."
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    sandbox = use_sandbox(args.redis)
    try:
        rows = [_measure(args, ms) for ms in args.latency_ms]
    finally:
        sandbox.terminate()
    caps = args.accounts * CAP
    print(f"\n{args.accounts} accounts (caps' sum {caps} SMS/s), {args.workers} worker processes")
    print("  MailUp answers in   mailup-jobs SMS/s   of caps   bare Celery SMS/s   ratio   429s")
    for ms, system, bare, limited in rows:
        print(
            f"  {ms:>11} ms {system:19.1f} {system / caps:9.2f} {bare:19.1f}"
            f" {system / bare:7.2f} {limited:6d}"
        )


def _measure(args: argparse.Namespace, latency_ms: int) -> tuple[int, float, float, int]:
    print(f"\n== MailUp answering in {latency_ms} ms", flush=True)
    bare = _bare(args, latency_ms)
    system, limited = _system(args, latency_ms)
    return latency_ms, system, bare, limited


def _bare(args: argparse.Namespace, latency_ms: int) -> float:
    """Bare Celery, MailUp's caps off (a bare task has no way to keep under them)."""
    _reset(args, latency_ms, capped=False)
    from bench.baseline import bare_send

    body = {"ListGuid": LIST_GUID, "ListSecret": list_secret()}
    count = _jobs(args)
    for n in range(count):
        bare_send.delay(
            f"{SANDBOX}/sms/api/v2.0/sms/1234/1",
            {**body, "Content": "Hi", "Recipient": f"+39335{n:07d}", "isUnicode": 0},
        )
    rate, _ = _work("bench.baseline", args, count)
    print(f"bare Celery: {rate:.1f} SMS/s", flush=True)
    return rate


def _system(args: argparse.Namespace, latency_ms: int) -> tuple[float, int]:
    _reset(args, latency_ms, capped=True)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        items = accounts(args.accounts, f"{args.postgres}?options=-csearch_path%3D{schema}")
        from producers.bulk import send_sms_many

        count = _jobs(args)
        send_sms_many(
            {**items[n % len(items)], "recipient": f"+39335{n:07d}", "content": "Hi"}
            for n in range(count)
        )
        rate, peak = _work("worker.app", args, count)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    limited = int(get("/_sandbox/stats").get("limited", 0))
    print(f"mailup-jobs: {rate:.1f} SMS/s, {limited} answered 429, peak RSS {peak:.0f} MB")
    return rate, limited


def _jobs(args: argparse.Namespace) -> int:
    return int(args.accounts * CAP * args.seconds)


def _reset(args: argparse.Namespace, latency_ms: int, *, capped: bool) -> None:
    redis.Redis.from_url(args.redis).flushdb()
    requests.post(f"{SANDBOX}/_sandbox/reset", timeout=5)
    requests.post(f"{SANDBOX}/_sandbox/faults", json={"latency_ms": latency_ms}, timeout=5)
    limits = {"sms_per_second": CAP if capped else 0}
    requests.post(f"{SANDBOX}/_sandbox/limits", json=limits, timeout=5)


def _work(app: str, args: argparse.Namespace, count: int) -> tuple[float, float]:
    """Start the workers on the loaded queue; SMS/s over the steady middle, peak RSS (MB)."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-Q",
                "mailup-jobs",
                "-l",
                "WARNING",
                "-n",
                f"bench{n}@%h",
            ],
            start_new_session=True,
        )
        for n in range(args.workers)
    ]
    watchers = [RssWatcher(worker.pid) for worker in workers]
    try:
        wait(lambda: _delivered() >= count, f"{count} SMS delivered", 900)
    finally:
        for watcher in watchers:
            watcher.stop()
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    times = sorted(d["time"] for d in get("/_sandbox/deliveries")["deliveries"])
    steady = times[len(times) // 10 : len(times) * 9 // 10]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    return rate, max(watcher.per_process for watcher in watchers) / 2**20


def _delivered() -> int:
    return int(get("/_sandbox/stats")["deliveries"])


if __name__ == "__main__":
    main()
