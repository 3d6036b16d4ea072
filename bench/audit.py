"""The ledger's audits on a big ledger: PostgreSQL filled with a million realistic jobs
(mixed kinds and statuses, their attempts, SMS deliveries with costs and campaign codes,
email recipients, campaign recipients MailUp left out), then each audit timed against a
baseline measured in the same run — ``SELECT count(*) FROM jobs`` on the same ledger.

    python -m bench.audit [--jobs 1000000] [--runs 7] [--keep]

The ledger is a fresh schema of the ``test`` database, migrated to head (so the audits use
the indexes the migrations make), filled on the server (INSERT … SELECT over
generate_series), vacuumed and analysed as autovacuum would leave it. Each audit runs once
to warm the cache, then ``--runs`` times through ``producers.audit``; the median is shown
with its ratio to the baseline. The jobs span 90 days, the audits the whole ledger.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy
from cryptography.fernet import Fernet

TARGET_MS = 200.0
SPAN_SECONDS = 90 * 86400
# Known recipients, each with a few jobs of its own among the million.
PHONE, ADDRESS = "+393350000042", "user60@example.com"

# One statement per table, every value a function of the job's number n; hashtext() stands
# in for chance so that kinds, statuses and codes do not follow one another.
FILL = [
    """
    INSERT INTO jobs (id, kind, account, status, priority, payload, outcome, attempts,
        run_after, published_at, publish_count, last_error_code, last_error, created_at,
        updated_at, finished_at)
    SELECT id, kind, 'default', status, 5, payload,
        CASE WHEN status <> 'succeeded' THEN NULL
             WHEN kind IN ('send_message', 'send_template')
                THEN json_build_object('status', 'done', 'code', '0', 'message', 'Ok')
             WHEN kind = 'campaign_send' THEN json_build_object('sending_id', n, 'sent', 40)
             ELSE json_build_object('list_id', 1) END,
        CASE WHEN status IN ('queued', 'cancelled') THEN 0 WHEN retried THEN 2 ELSE 1 END,
        created, created, 1,
        CASE WHEN status = 'failed' THEN (CASE family
                WHEN 'sms' THEN (ARRAY['206', '106', '105', '207'])[1 + pick % 4]
                WHEN 'email' THEN (ARRAY['111', '109', '110', '1'])[1 + pick % 4]
                WHEN 'campaign' THEN (ARRAY['500', 'sender_unknown'])[1 + pick % 2]
                ELSE (ARRAY['400', '404', 'group_unknown', 'list_exists'])[1 + pick % 4] END)
             WHEN status = 'in_doubt' THEN (CASE family
                WHEN 'sms' THEN (ARRAY['300', 'network', 'http_502'])[1 + pick % 3]
                WHEN 'campaign' THEN 'sending_unclear'
                ELSE (ARRAY['network', 'http_504'])[1 + pick % 2] END)
             WHEN status = 'retrying' THEN 'http_503' END,
        CASE WHEN status IN ('failed', 'in_doubt', 'retrying') THEN 'MailUp said no' END,
        created, created + interval '2 seconds',
        CASE WHEN status IN ('succeeded', 'failed', 'cancelled')
             THEN created + interval '2 seconds' END
    FROM (
        SELECT n, kind, created, pick, retried,
            lpad(to_hex(n), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(n), 12, '0') AS id,
            CASE WHEN kind = 'send_sms' THEN 'sms'
                 WHEN kind IN ('send_message', 'send_template') THEN 'email'
                 WHEN kind = 'campaign_send' THEN 'campaign' ELSE 'console' END AS family,
            CASE WHEN draw < 940 THEN 'succeeded' WHEN draw < 975 THEN 'failed'
                 WHEN draw < 977 THEN 'in_doubt' WHEN draw < 987 THEN 'cancelled'
                 WHEN draw < 995 THEN 'queued' WHEN draw < 998 THEN 'retrying'
                 ELSE 'running' END AS status,
            CASE WHEN kind = 'send_sms' THEN json_build_object(
                    'list_id', 1 + n % 5,
                    'recipient', '+39335' || lpad((n % 200000)::text, 7, '0'),
                    'content', 'Your code is ' || n, 'template_id', NULL,
                    'campaign_code',
                        CASE WHEN n % 10 = 0 THEN NULL ELSE 'campaign-' || (n / 7) % 20 END,
                    'dynamic_fields', json_build_object(), 'is_unicode', false,
                    'sender', NULL)
                 WHEN kind IN ('send_message', 'send_template') THEN json_build_object(
                    'sender', json_build_object('email', 'shop@example.com', 'name', 'Shop'),
                    'to', json_build_array(json_build_object(
                        'email', 'user' || n % 300000 || '@example.com', 'name', 'User')),
                    'subject', 'Your order ' || n, 'text', 'Thanks for order ' || n)
                 WHEN kind = 'campaign_send' THEN json_build_object(
                    'message_id', 1 + n % 50, 'list_id', 1,
                    'to', CASE WHEN n % 3 = 0 THEN 'user' || n % 300000 || '@example.com' END,
                    'when', 'now')
                 ELSE json_build_object('list_id', 1 + n % 5) END AS payload
        FROM (
            SELECT n,
                now() - (:span * n::bigint / :jobs) * interval '1 second' AS created,
                (hashtext('status' || n) & 2147483647) % 1000 AS draw,
                (hashtext('code' || n) & 2147483647) AS pick,
                (hashtext('retry' || n) & 2147483647) % 20 = 0 AS retried,
                CASE WHEN n % 100 < 60 THEN 'send_sms'
                     WHEN n % 100 < 85 THEN 'send_message'
                     WHEN n % 100 < 90 THEN 'send_template'
                     WHEN n % 100 < 95 THEN 'campaign_send'
                     ELSE (ARRAY['list_create', 'group_create', 'recipient_add',
                                 'import_chunk', 'list_secret'])[1 + n % 5] END AS kind
            FROM generate_series(1, :jobs) AS n
        ) drawn
    ) made
    """,
    """
    INSERT INTO attempts (job_id, number, worker, outcome, http_status, mailup_code,
        started_at, finished_at, duration_ms)
    SELECT id, number, 'bench/1',
        CASE WHEN number < attempts OR status = 'retrying' THEN 'transient'
             WHEN status = 'succeeded' THEN 'succeeded' WHEN status = 'failed' THEN 'permanent'
             WHEN status = 'in_doubt' THEN 'in_doubt' ELSE 'calling' END,
        CASE WHEN number < attempts OR status = 'retrying' THEN 503
             WHEN status = 'succeeded' THEN 200 WHEN status = 'failed' THEN 403 END,
        CASE WHEN status = 'failed' THEN last_error_code END,
        created_at, created_at + interval '1 second', 180
    FROM jobs CROSS JOIN LATERAL generate_series(1, attempts) AS number
    """,
    """
    INSERT INTO sms_deliveries (job_id, account, list_id, recipient, campaign_code,
        delivery_id, cost, truncated, statistics_unavailable, sent_at)
    SELECT id, account, (payload->>'list_id')::int, payload->>'recipient',
        payload->>'campaign_code',
        CASE WHEN (hashtext('d' || id) & 2147483647) % 100 = 0 THEN 0 ELSE row_number() OVER () END,
        CASE WHEN (hashtext('c' || id) & 2147483647) % 7 = 0 THEN 2 ELSE 1 END, false,
        (hashtext('d' || id) & 2147483647) % 100 = 0, created_at + interval '1 second'
    FROM jobs WHERE kind = 'send_sms' AND status = 'succeeded'
    """,
    """
    INSERT INTO job_recipients (job_id, recipient_hash)
    SELECT id, md5(coalesce(payload->>'recipient', payload->>'to'))
    FROM jobs WHERE kind = 'send_sms'
        OR (kind = 'campaign_send' AND payload->>'to' IS NOT NULL AND attempts > 0)
    """,
    """
    INSERT INTO email_recipients (job_id, role, email, name, email_hash)
    SELECT id, role, email, 'User', md5(email)
    FROM (
        SELECT id, 'to' AS role, payload->'to'->0->>'email' AS email
        FROM jobs WHERE kind IN ('send_message', 'send_template')
        UNION ALL
        SELECT id, 'cc', 'copy' || (hashtext(id) & 2147483647) % 1000 || '@example.com'
        FROM jobs
        WHERE kind IN ('send_message', 'send_template') AND (hashtext(id) & 2147483647) % 4 = 0
    ) addressed
    """,
    """
    INSERT INTO sending_recipients (account, sending_id, job_id, problem, email, reason,
        email_hash)
    SELECT account, (outcome->>'sending_id')::bigint, id, problem, email, 'bench', md5(email)
    FROM (
        SELECT account, outcome, id,
            CASE WHEN m % 2 = 0 THEN 'invalid' ELSE 'unprocessed' END AS problem,
            'user' || (m / 5) % 300000 || '@example.com' AS email
        FROM jobs CROSS JOIN LATERAL (SELECT (hashtext('s' || id) & 2147483647) AS m) drawn
        WHERE kind = 'campaign_send' AND status = 'succeeded' AND m % 5 = 0
    ) skipped
    """,
]
TABLES = [
    "jobs",
    "attempts",
    "sms_deliveries",
    "job_recipients",
    "email_recipients",
    "sending_recipients",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the filled schema.")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(args.postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    os.environ.update(
        MAILUP_JOBS_DATABASE_URL=f"{args.postgres}?options=-csearch_path%3D{schema}",
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
    )
    try:
        _fill(args.jobs)
        _measure(args.runs)
    finally:
        if args.keep:
            print(f"kept schema {schema}")
        else:
            from worker.ledger.db import dispose_all

            dispose_all()
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _fill(jobs: int) -> None:
    from worker.ledger.crypto import recipient_hasher
    from worker.ledger.db import engine_for
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    settings = get_settings()
    upgrade(settings.ledger_url)
    engine = engine_for(settings.ledger_url)
    started = time.perf_counter()
    with engine.begin() as db:
        for statement in FILL:
            db.execute(sqlalchemy.text(statement), {"jobs": jobs, "span": SPAN_SECONDS})
        # The two known recipients get their real keyed hash (the others a stand-in).
        hashed = recipient_hasher(settings)
        for table, column, plain in (
            ("job_recipients", "recipient_hash", PHONE),
            ("email_recipients", "email_hash", ADDRESS),
            ("sending_recipients", "email_hash", ADDRESS),
        ):
            db.execute(
                sqlalchemy.text(
                    f"UPDATE {table} SET {column} = :real WHERE {column} = md5(:plain)"
                ),
                {"real": hashed(plain), "plain": plain},
            )
    filled = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        for table in TABLES:
            db.exec_driver_sql(f"VACUUM ANALYZE {table}")
        counts = {t: db.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in TABLES}
    print(f"filled in {filled:.1f} s (then vacuumed and analysed):")
    print("  " + ", ".join(f"{table} {count:,}" for table, count in counts.items()))


def _measure(runs: int) -> None:
    from producers import audit
    from worker.ledger.db import transaction
    from worker.settings import get_settings

    def baseline() -> Any:
        with transaction(get_settings().ledger_url) as session:
            return session.execute(sqlalchemy.text("SELECT count(*) FROM jobs")).scalar_one()

    month = {"since": _utc_days_ago(30)}
    queries: list[tuple[str, Callable[[], Any]]] = [
        ("SELECT count(*) FROM jobs (baseline)", baseline),
        ("ledger costs --by campaign", lambda: audit.sms_costs("campaign")),
        ("ledger costs --by day", lambda: audit.sms_costs("day")),
        ("ledger costs --by list", lambda: audit.sms_costs("list")),
        (
            "ledger costs --by campaign --since 30 days",
            lambda: audit.sms_costs("campaign", **month),
        ),
        ("ledger sends --by day", lambda: audit.sends_by_day()),
        ("ledger sends --by day --kind send_sms", lambda: audit.sends_by_day(kind="send_sms")),
        ("ledger sends --by day --status failed", lambda: audit.sends_by_day(status="failed")),
        ("ledger sends --by day --since 30 days", lambda: audit.sends_by_day(**month)),
        ("ledger failures --by code", lambda: audit.failures_by_code()),
        (f"ledger recipient {PHONE}", lambda: audit.sent_to(PHONE)),
        (f"ledger recipient {ADDRESS}", lambda: audit.sent_to(ADDRESS)),
        ("jobs in-doubt", lambda: audit.in_doubt_jobs()),
    ]
    timings = {name: _median(run, runs) for name, run in queries}
    base = timings[queries[0][0]]
    width = max(len(name) for name, _ in queries)
    header = f"{'query':<{width}}  {'median ms':>9}  {'x baseline':>10}  {'rows':>7}"
    print(f"\n{header}  <= {TARGET_MS:.0f} ms")
    for name, run in queries:
        found = run()
        rows = found if isinstance(found, int) else len(found)
        ok = "yes" if timings[name] <= TARGET_MS else "NO"
        print(
            f"{name:<{width}}  {timings[name]:9.1f}  {timings[name] / base:10.2f}  {rows:>7}  {ok}"
        )


def _median(run: Callable[[], Any], runs: int) -> float:
    run()  # warm the cache and the statement caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _utc_days_ago(days: int) -> Any:
    from worker.ledger.models import utcnow

    return utcnow() - timedelta(days=days)


if __name__ == "__main__":
    main()
