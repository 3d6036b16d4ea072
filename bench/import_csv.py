"""Importing recipients from a CSV file: every row checked, written to the ledger in chunks
and queued, against a baseline measured in the same run — reading the same file with the
csv module alone.

    python -m bench.import_csv [--rows 100000] [--chunk-size 1000] [--bad-every 500]

On PostgreSQL + Redis (a fresh schema, a Redis database of its own); no worker runs, so
this is the producer's side only: what `mailup-jobs import FILE` costs before it prints
the import id. Prints both times, their ratio, and the import's own figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import uuid
from pathlib import Path

import redis
import sqlalchemy
from cryptography.fernet import Fernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--bad-every", type=int, default=500, help="One bad row every N.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    redis.Redis.from_url(args.redis).flushdb()
    os.environ.update(
        MAILUP_JOBS_DATABASE_URL=f"{args.postgres}?options=-csearch_path%3D{schema}",
        MAILUP_JOBS_BROKER_URL=args.redis,
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "recipients.csv"
            _write(path, args.rows, args.bad_every)
            _measure(path, args)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
        redis.Redis.from_url(args.redis).flushdb()


def _write(path: Path, rows: int, bad_every: int) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Email", "Name", "MobileNumber", "MobilePrefix", "City"])
        for n in range(rows):
            email = f"user{n}@example.com" if n % bad_every else f"user{n}-at-example.com"
            writer.writerow([email, f"User {n}", f"335{n:07d}", "+39", "Cremona"])


def _measure(path: Path, args: argparse.Namespace) -> None:
    from producers.imports import import_csv
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    upgrade(get_settings().ledger_url)

    started = time.perf_counter()
    with path.open(newline="") as stream:
        baseline_rows = sum(1 for _ in csv.DictReader(stream))
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    report = import_csv(path, list_id=1, fields={"City": 3}, chunk_size=args.chunk_size)
    system = time.perf_counter() - started

    assert baseline_rows == report.rows_read == args.rows
    broker = redis.Redis.from_url(args.redis)
    # One Redis list per priority: "mailup-jobs", "mailup-jobs\x06\x165", …
    published = sum(broker.llen(key) for key in broker.scan_iter("mailup-jobs\x06*"))
    print(f"\n{args.rows:,} rows, one bad every {args.bad_every}, chunks of {args.chunk_size}")
    print(f"  csv module alone (baseline):      {baseline:6.2f} s")
    print(
        f"  mailup-jobs import (checked, written, queued): {system:6.2f} s "
        f"({args.rows / system:,.0f} rows/s)"
    )
    print(f"  ratio (baseline / import): {baseline / system:.3f}")
    print(
        f"  queued {report.rows_queued:,} rows in {report.chunks} chunk jobs "
        f"({published} messages in Redis), refused {len(report.rejected):,}"
    )


if __name__ == "__main__":
    main()
