"""Enqueueing: 100,000 SMS jobs through ``send_sms_many`` (checked, written with their
recipient hashes, published fifty ids a message) on PostgreSQL + Redis, against a bare
executemany of the same job rows in the same run; then one ``send_sms`` at a time, beside
what one PostgreSQL and one Redis round trip cost on this host.

    python -m bench.enqueue [--jobs 100000] [--single 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

import redis
import sqlalchemy
from cryptography.fernet import Fernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=500, help="Single send_sms calls timed.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    os.environ.update(
        MAILUP_JOBS_BROKER_URL=args.redis,
        MAILUP_JOBS_DATABASE_URL=f"{args.postgres}?options=-csearch_path%3D{schema}",
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
        MAILUP_JOBS_DATA_DIR=f"/tmp/mailup-jobs-bench-{schema}",
        MAILUP_ACCOUNT_ID="1234",
        MAILUP_USERNAME="m1234",
        MAILUP_PASSWORD="sandbox-password",
    )
    try:
        redis.Redis.from_url(args.redis).flushdb()
        bare, bulk = _bulk(args.jobs)
        single = _single(args.single)
        postgres, broker = _round_trips(os.environ["MAILUP_JOBS_DATABASE_URL"], args.redis)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    print(f"\n{args.jobs:,} SMS jobs, PostgreSQL + Redis")
    print(f"  bare executemany of the job rows   {bare:6.2f} s")
    print(f"  send_sms_many, committed+published {bulk:6.2f} s   ratio {bare / bulk:.2f}")
    p50, p99 = statistics.median(single), statistics.quantiles(single, n=100)[98]
    print(f"  one send_sms: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms ({len(single)} calls)")
    print(
        f"  a round trip here (p50): PostgreSQL {postgres * 1000:.2f} ms, Redis "
        f"{broker * 1000:.2f} ms; a send_sms makes 4 + 1 (BEGIN, two INSERTs, COMMIT; LPUSH)"
    )


def _items(count: int, prefix: str) -> list[dict[str, object]]:
    return [
        {
            "list_id": 1,
            "recipient": f"+39{prefix}{n:07d}",
            "content": "Hi [Name]",
            "dynamic_fields": {"Name": "bench"},
        }
        for n in range(count)
    ]


def _bulk(count: int) -> tuple[float, float]:
    from producers.bulk import send_sms_many
    from worker.ledger.db import connection
    from worker.ledger.migrate import upgrade
    from worker.ledger.models import Job, utcnow
    from worker.settings import get_settings

    url = get_settings().ledger_url
    upgrade(url)
    now = utcnow()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "kind": "send_sms",
            "account": "default",
            "payload": item,
            "priority": 8,
            "status": "queued",
            "attempts": 0,
            "publish_count": 0,
            "run_after": now,
            "created_at": now,
            "updated_at": now,
        }
        for item in _items(count, "334")
    ]
    started = time.perf_counter()
    with connection(url) as db:
        db.execute(sqlalchemy.insert(Job), rows)
    bare = time.perf_counter() - started
    started = time.perf_counter()
    ids = send_sms_many(_items(count, "335"))
    bulk = time.perf_counter() - started
    assert len(set(ids)) == count
    return bare, bulk


def _single(count: int) -> list[float]:
    from producers import send_sms

    took = []
    for item in _items(count, "336"):
        started = time.perf_counter()
        send_sms(**item)  # type: ignore[arg-type]
        took.append(time.perf_counter() - started)
    return took[10:]  # the first calls open connections


def _round_trips(ledger_url: str, redis_url: str, count: int = 300) -> tuple[float, float]:
    """The p50 of a trivial PostgreSQL query and a Redis PING: what one round trip costs on
    this host, the floor of a send_sms's time."""
    engine = sqlalchemy.create_engine(ledger_url)
    client = redis.Redis.from_url(redis_url)
    postgres, broker = [], []
    with engine.connect() as connection:
        for _ in range(count):
            started = time.perf_counter()
            connection.exec_driver_sql("SELECT 1").all()
            postgres.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.ping()
            broker.append(time.perf_counter() - started)
    engine.dispose()
    return statistics.median(postgres), statistics.median(broker)


if __name__ == "__main__":
    main()
