"""Chaos: thousands of SMS jobs through Redis + PostgreSQL + the sandbox while MailUp misbehaves,
workers are SIGKILLed and the broker and the ledger's server restart under them.

    python -m bench.chaos [--jobs 10000] [--accounts 5] [--kills 20] [--no-restarts]

What it proves: whatever happens, every accepted job ends in a final state (succeeded,
failed or in_doubt) — none is lost — and no SMS goes out twice.

The sandbox (MailUp) answers 20 % of calls with a 5xx before acting (half 500: in doubt;
half 503 with Retry-After: retried), 10 % with a 429 (retried), carries out 5 % and then
drops the connection (the SMS is delivered, the answer lost: in doubt), adds 20 ms to every
answer, and keeps MailUp's own per-second caps. The jobs are spread over --accounts new
sandbox accounts. Two workers and a beat run with a short sweep interval and short leases;
while the jobs run, a random worker's whole process group is SIGKILLed --kills times at
random points of the run (and restarted at once), then, unless --no-restarts, Redis is
restarted empty once (it keeps nothing on disk: the broker loses every message, and the
sweeper must notice and publish them again) and PostgreSQL once.

Reading the output:

- ``jobs by status``: every job should be succeeded, failed or in_doubt; ``lost`` counts
  the others (still queued, retrying or running at the deadline) and must be 0.
- ``in_doubt by code``: ``300`` (HTTP 500 with MailUp's server error code, answered before
  acting: no delivery), ``network`` (the dropped answers: MailUp delivered, one delivery
  each — correct), ``worker_lost`` (a kill hit the job after it committed "calling";
  delivered or not, as it happened: a job waiting for its account's per-second slot has
  already committed "calling", so most of these never reached MailUp). Each shows how many
  of them MailUp delivered.
- ``failed by code``: attempts exhausted, or MailUp's permanent answers.
- ``deliveries``: what the sandbox delivered, per recipient (each job has its own). A
  recipient delivered twice is an SMS sent twice: it must be 0, as must a succeeded job
  without a delivery (or with a DeliveryId MailUp never gave) and a failed job that was
  delivered ("failed" says nothing was sent).

Exit status 1 when any of those must-be-0 figures is not. Worker and beat logs are kept in
the run's folder (printed first); the schema (unless --keep), the Redis database and the
processes are removed at the end, also on failure or Ctrl-C.

``--no-restarts`` leaves Redis and PostgreSQL alone: restarting them disturbs everything
else using them (other test runs, other databases).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import requests
import sqlalchemy
from cryptography.fernet import Fernet

PORT = 8732  # bench.throughput uses 8731
FINAL = ("succeeded", "failed", "in_doubt")
FAULTS = {"error_rate": 0.20, "rate_429": 0.10, "drop_after_rate": 0.05, "latency_ms": 20}
# Short enough that a killed worker's jobs come back within the run: leases of
# connect + read timeout + margin = 10 s, a sweep every 2 s, a message the broker lost
# (one a killed worker had reserved) published again after 15 s, retries at most 30 s apart.
RECOVERY = {
    "MAILUP_JOBS_SWEEP_INTERVAL": "2",
    "MAILUP_JOBS_CONNECT_TIMEOUT": "2",
    "MAILUP_JOBS_READ_TIMEOUT": "5",
    "MAILUP_JOBS_LEASE_MARGIN": "3",
    "MAILUP_JOBS_REPUBLISH_AFTER": "15",
    "MAILUP_JOBS_BACKOFF_CAP": "30",
}
WORKERS = 2
# The kills fall at random points between these shares of the jobs delivered.
KILL_WINDOW = (0.02, 0.7)
REDIS_RESTART_AT, POSTGRES_RESTART_AT = 0.3, 0.5
MIN_GAP = 3.0  # seconds between two events: a worker starts in about 1.5 s


def main() -> None:
    args = _arguments()
    # Ctrl-C (even when started in the background, which ignores it) and SIGTERM clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cleanup = ExitStack()
    try:
        ok = _run(args, cleanup)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        ok = False
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        print("cleaning up…", flush=True)
        cleanup.close()
    sys.exit(0 if ok else 1)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--accounts", type=int, default=5, help="Sandbox accounts to spread over.")
    parser.add_argument("--kills", type=int, default=20, help="Workers SIGKILLed during the run.")
    parser.add_argument(
        "--no-restarts", action="store_true", help="Leave Redis and PostgreSQL running."
    )
    # A retried job whose message died with a worker waits REPUBLISH_AFTER doubled per
    # publication (retries included, up to 64 times): up to 16 min here.
    parser.add_argument("--timeout", type=float, default=1200, help="Seconds for jobs to end.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the ledger's schema to inspect it afterwards."
    )
    parser.add_argument("--seed", type=int, default=0, help="The kills' and the faults' seed.")
    parser.add_argument("--port", type=int, default=PORT, help="The sandbox's port.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return parser.parse_args()


# --- the run -------------------------------------------------------------------------------


@dataclass
class Child:
    """A mailup-jobs process in a session of its own: a kill reaches its whole pool."""

    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "producers.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is None:
            return
        self._signal(signal.SIGTERM)  # a warm shutdown: calls in flight finish
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal(signal.SIGKILL)  # pool processes the leader left behind

    def _signal(self, number: int) -> None:
        if self.popen is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, number)


@dataclass
class System:
    """What runs, and what the chaos did to it."""

    args: argparse.Namespace
    env: dict[str, str]
    folder: Path
    ledger_url: str
    rng: random.Random
    workers: list[Child] = field(default_factory=list)
    beat: Child | None = None
    started: float = field(default_factory=time.monotonic)
    kills: int = 0
    redis_restarts: int = 0
    postgres_restarts: int = 0
    unexpected_exits: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)

    def start(self) -> None:
        self.beat = Child(["beat"], self.env, self.folder / "beat.log").start()
        for n in range(WORKERS):
            log = self.folder / f"worker{n + 1}.log"
            self.workers.append(Child(["worker"], self.env, log).start())
        self.started = time.monotonic()

    def stop(self) -> None:
        for child in [*self.workers, *([self.beat] if self.beat else [])]:
            child.stop()

    def kill_worker(self) -> None:
        n = self.rng.randrange(len(self.workers))
        worker = self.workers[n]
        pid = worker.popen.pid if worker.popen else None
        worker.kill()
        self.kills += 1
        worker.start()
        self.say(f"kill {self.kills}: worker{n + 1} (pid {pid}) SIGKILLed and restarted")

    def watch(self) -> None:
        """A worker or beat that ended by itself is a finding: note it, start it again."""
        for child in [*self.workers, *([self.beat] if self.beat else [])]:
            code = child.exited
            if code is not None:
                note = f"{child.log.stem} exited by itself with status {code}; restarted"
                self.unexpected_exits.append(note)
                self.say(note)
                child.start()


def _run(args: argparse.Namespace, cleanup: ExitStack) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="mailup-jobs-chaos-"))
    print(f"logs in {folder}", flush=True)
    env = _environment(args, folder)
    if _port_taken(args.port):
        raise SystemExit(f"port {args.port} is taken: give the sandbox another with --port")
    sandbox_args = ["sandbox", "--port", str(args.port), "--seed", str(args.seed)]
    sandbox = Child(sandbox_args, env, folder / "sandbox.log").start()
    cleanup.callback(sandbox.stop)
    _wait(_sandbox_answers(args.port), "the sandbox", 30)

    accounts = _create_accounts(args)
    env["MAILUP_JOBS_ACCOUNTS"] = json.dumps(
        {name: {k: a[k] for k in ("username", "password", "account_id")} for name, a in accounts}
    )
    ledger_url = _fresh_schema(args.postgres, env, cleanup, keep=args.keep)
    _refuse_shared_redis(args.redis)
    cleanup.callback(_flush, args.redis)
    _flush(args.redis)
    guard = _ServiceGuard(args.redis)
    cleanup.callback(guard.ensure_up)
    _apply(env)
    _store_list_keys(ledger_url, accounts)

    _post(args.port, "/faults", FAULTS)
    limits = requests.get(f"{_base(args.port)}/limits", timeout=5).json()
    print(f"faults {FAULTS}; MailUp's caps per account {limits}", flush=True)
    print(f"recovery settings {RECOVERY}", flush=True)
    jobs = _enqueue(args, [(name, int(a["list_id"])) for name, a in accounts])

    system = System(args, env, folder, ledger_url, random.Random(args.seed))
    cleanup.callback(system.stop)
    system.start()
    system.say(f"{WORKERS} workers and beat started")
    _chaos(system, guard)
    statuses = _wait_until_final(system)
    elapsed = time.monotonic() - system.started
    time.sleep(2)  # a stray call still in flight would land now, and count
    return _report(system, jobs, statuses, elapsed)


def _environment(args: argparse.Namespace, folder: Path) -> dict[str, str]:
    """The settings of every process, this one included: the sandbox as MailUp (its SMS API;
    the accounts come later), the fresh ledger, Redis, the recovery settings."""
    from sandbox.server import client_settings

    urls = client_settings(_root(args.port))
    settings = {k: v for k, v in urls.items() if k.endswith("_URL")}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MAILUP_")}
    return {
        **inherited,
        **settings,
        **RECOVERY,
        "MAILUP_JOBS_BROKER_URL": args.redis,
        "MAILUP_JOBS_SECRET_KEY": Fernet.generate_key().decode(),
        "MAILUP_JOBS_DATA_DIR": str(folder / "data"),
    }


def _apply(env: dict[str, str]) -> None:
    """Make ``env`` this process's settings too (it enqueues and reads the ledger)."""
    from worker.settings import get_settings

    for name in [n for n in os.environ if n.startswith("MAILUP_")]:
        del os.environ[name]
    os.environ.update(env)
    get_settings.cache_clear()


def _create_accounts(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """New sandbox accounts, each with a list whose ListSecret exists: (name, its keys)."""
    accounts = []
    for n in range(1, args.accounts + 1):
        answer = _post(args.port, "/accounts", {"account_id": 5000 + n})
        answer["account_id"] = answer["id"]
        accounts.append((f"chaos{n}", answer))
    return accounts


def _fresh_schema(postgres: str, env: dict[str, str], cleanup: ExitStack, *, keep: bool) -> str:
    """A schema of its own on the PostgreSQL server, dropped at the end unless ``keep``: the
    ledger's URL."""
    schema = f"chaos_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(postgres, pool_pre_ping=True)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    if keep:
        print(f"the ledger is schema {schema}, kept: DROP SCHEMA {schema} CASCADE", flush=True)
    else:
        cleanup.callback(_drop_schema, admin, schema)
    url = f"{postgres}?options=-csearch_path%3D{schema}"
    env["MAILUP_JOBS_DATABASE_URL"] = url
    return url


def _drop_schema(admin: sqlalchemy.Engine, schema: str) -> None:
    from worker.ledger.db import dispose_all

    dispose_all()
    for _ in range(30):  # PostgreSQL may be restarting
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            break
        except sqlalchemy.exc.OperationalError:
            time.sleep(1)
    else:
        print(f"could not drop schema {schema}: drop it by hand", flush=True)
    admin.dispose()


def _refuse_shared_redis(url: str) -> None:
    """Stop if another process uses the Redis database: its workers would take this run's
    messages (dropping them: their ledger has no such job) and its flushes empty the queue."""
    client = redis.Redis.from_url(url)
    me, db = client.client_id(), client.connection_pool.connection_kwargs.get("db", 0)
    others = [c for c in client.client_list() if int(c["db"]) == db and int(c["id"]) != me]
    client.close()
    if others:
        raise SystemExit(
            f"{len(others)} other connection(s) use {url}: give --redis a database of its own"
        )


def _flush(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        print(f"could not flush {url}: {exc}", flush=True)


def _store_list_keys(url: str, accounts: list[tuple[str, dict[str, Any]]]) -> None:
    """Migrate the ledger, and give it each list's keys as a list-secret job would."""
    from worker.jobs.list_credentials import ListKeys, save
    from worker.ledger.db import connection
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    upgrade(url)
    settings = get_settings()
    with connection(url) as db:
        for name, account in accounts:
            keys = ListKeys(account["list_guid"], account["list_secret"])
            save(db, settings, name, account["list_id"], keys)


def _enqueue(args: argparse.Namespace, lists: list[tuple[str, int]]) -> dict[str, str]:
    """--jobs SMS to the (account, list) pairs in turn, each to a recipient of its own: job
    id → recipient."""
    from producers.bulk import send_sms_many

    recipients = [f"+39336{n:07d}" for n in range(args.jobs)]
    items = []
    for n, recipient in enumerate(recipients):
        account, list_id = lists[n % len(lists)]
        items.append(
            {"account": account, "list_id": list_id, "recipient": recipient, "content": f"#{n}"}
        )
    started = time.monotonic()
    job_ids = send_sms_many(items)
    print(f"{len(job_ids)} jobs queued in {time.monotonic() - started:.1f} s", flush=True)
    return dict(zip(job_ids, recipients, strict=True))


# --- chaos ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: float  # the share of the jobs delivered when it happens
    act: Callable[[], None]


def _chaos(system: System, guard: _ServiceGuard) -> None:
    """Each event once the sandbox has delivered its share of the jobs and the last event is
    MIN_GAP old (a restarted worker has taken work again); until every job is final."""
    args, rng = system.args, system.rng
    events = [Event(rng.uniform(*KILL_WINDOW), system.kill_worker) for _ in range(args.kills)]
    if not args.no_restarts:
        events.append(Event(REDIS_RESTART_AT, lambda: guard.restart_redis(system)))
        events.append(Event(POSTGRES_RESTART_AT, lambda: guard.restart_postgres(system)))
    deadline, calm_until = system.started + args.timeout, 0.0
    for n, event in enumerate(sorted(events, key=lambda e: e.at)):
        while time.monotonic() < calm_until or _delivered(args.port) < event.at * args.jobs:
            statuses = _statuses(system.ledger_url)
            if time.monotonic() > deadline or (statuses and not set(statuses) - set(FINAL)):
                system.say(f"the run ended before {len(events) - n} kill(s) or restart(s)")
                return
            system.watch()
            time.sleep(0.2)
        event.act()
        calm_until = time.monotonic() + MIN_GAP


class _ServiceGuard:
    """Restarts Redis and PostgreSQL, and puts Redis back if the run stops while it is down."""

    def __init__(self, redis_url: str) -> None:
        self._url = redis_url
        self._options: list[str] | None = None

    def restart_redis(self, system: System) -> None:
        client = redis.Redis.from_url(self._url)
        config = client.config_get("*")
        # The running server's own options (those .ci/run starts it with): nothing on disk.
        self._options = [
            *("--daemonize", "yes", "--port", str(config["port"]), "--bind"),
            *str(config["bind"]).split(),
            *("--save", str(config["save"]), "--appendonly", str(config["appendonly"])),
            *("--dir", str(config["dir"]), "--logfile", str(config["logfile"])),
        ]
        _service(["redis-cli", "-p", str(config["port"]), "shutdown", "nosave"], check=False)
        _wait(lambda: not _answers(self._url), "Redis to stop", 30)
        self._start_redis()
        system.redis_restarts += 1
        system.say("Redis restarted empty")

    def restart_postgres(self, system: System) -> None:
        from worker.ledger.db import connection

        with connection(system.ledger_url) as db:
            cluster = str(db.exec_driver_sql("SHOW cluster_name").scalar())  # "15/main"
        version, name = cluster.split("/")
        _service(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"])
        system.postgres_restarts += 1
        system.say(f"PostgreSQL {cluster} restarted")

    def ensure_up(self) -> None:
        if self._options is not None and not _answers(self._url):
            print("Redis is down: starting it again", flush=True)
            self._start_redis()

    def _start_redis(self) -> None:
        assert self._options is not None
        _service(["redis-server", *self._options])
        _wait(lambda: _answers(self._url), "Redis to start", 30)


def _service(command: list[str], *, check: bool = True) -> None:
    """Run a service command to its end: in a session of its own, so Ctrl-C cannot cut it."""
    subprocess.run(command, check=check, start_new_session=True, timeout=120)


def _answers(redis_url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# --- waiting and the figures ---------------------------------------------------------------


def _wait_until_final(system: System) -> Counter[str]:
    """The jobs per status, once all are final or at the deadline."""
    deadline, shown = system.started + system.args.timeout, 0.0
    while True:
        system.watch()
        statuses = _statuses(system.ledger_url)
        pending = {s: n for s, n in (statuses or {}).items() if s not in FINAL}
        if statuses is not None and not pending:
            system.say("every job is final")
            return statuses
        if time.monotonic() > deadline:
            system.say(f"deadline reached, not final: {pending or 'the ledger is unreadable'}")
            return statuses or Counter()
        if statuses is not None and time.monotonic() - shown > 10:
            shown = time.monotonic()
            system.say(f"waiting: {dict(sorted(statuses.items()))}")
        time.sleep(1)


def _statuses(url: str) -> Counter[str] | None:
    """Jobs per status; None while the ledger cannot be read (PostgreSQL restarting)."""
    from worker.ledger.db import connection
    from worker.ledger.store import counts_by_status

    try:
        with connection(url) as db:
            return Counter(counts_by_status(db))
    except sqlalchemy.exc.OperationalError:
        return None


@dataclass(frozen=True)
class LedgerJob:
    status: str
    code: str | None
    delivery_id: int | None  # the DeliveryId the ledger recorded
    attempts: int
    run_after: datetime
    published_at: datetime | None
    publish_count: int

    def describe(self) -> str:
        return (
            f"{self.status}, code {self.code or '-'}, {self.attempts} attempt(s), "
            f"DeliveryId {self.delivery_id or '-'}, due {_clock(self.run_after)}, published "
            f"{self.publish_count} time(s), last at {_clock(self.published_at)} (UTC)"
        )


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%H:%M:%S.%f}"[:-3]


def _ledger_jobs(url: str) -> dict[str, LedgerJob]:
    from worker.ledger.db import connection
    from worker.ledger.models import Job, SmsDelivery

    query = sqlalchemy.select(
        Job.id,
        Job.status,
        Job.last_error_code,
        SmsDelivery.delivery_id,
        Job.attempts,
        Job.run_after,
        Job.published_at,
        Job.publish_count,
    ).outerjoin(SmsDelivery, SmsDelivery.job_id == Job.id)
    with connection(url) as db:
        rows = db.execute(query).all()
    return {
        row.id: LedgerJob(
            row.status,
            row.last_error_code,
            row.delivery_id,
            row.attempts,
            row.run_after,
            row.published_at,
            row.publish_count,
        )
        for row in rows
    }


def _attempt_outcomes(url: str) -> Counter[str]:
    from worker.ledger.db import connection
    from worker.ledger.models import Attempt

    query = sqlalchemy.select(Attempt.outcome, sqlalchemy.func.count()).group_by(Attempt.outcome)
    with connection(url) as db:
        return Counter({str(outcome): int(count) for outcome, count in db.execute(query).all()})


def _report(system: System, jobs: dict[str, str], statuses: Counter[str], elapsed: float) -> bool:
    """Print the figures; whether nothing was lost, sent twice or recorded wrongly."""
    args = system.args
    ledger = _ledger_jobs(system.ledger_url)
    deliveries = _get(args.port, "/deliveries")["deliveries"]
    per_recipient = Counter(str(d["recipient"]) for d in deliveries)
    given_ids = {int(d["delivery_id"]) for d in deliveries}
    stats = _get(args.port, "/stats")

    lost = [j for j, r in ledger.items() if r.status not in FINAL]
    twice = [j for j, number in jobs.items() if per_recipient[number] > 1]
    succeeded = [j for j, r in ledger.items() if r.status == "succeeded"]
    undelivered = [j for j in succeeded if per_recipient[jobs[j]] == 0]
    unknown_id = [j for j in succeeded if ledger[j].delivery_id not in given_ids]
    failed_sent = [
        j for j, r in ledger.items() if r.status == "failed" and per_recipient[jobs[j]] > 0
    ]

    print(f"\n== {len(jobs)} SMS jobs over {args.accounts} accounts, {WORKERS} workers + beat")
    print(
        f"chaos: {system.kills} worker kills, {system.redis_restarts} Redis restart(s), "
        f"{system.postgres_restarts} PostgreSQL restart(s); {elapsed:.1f} s to the last job"
    )
    print(f"jobs by status: {_counts(statuses)}")
    _print_by_code(ledger, jobs, per_recipient)
    print(f"attempts by outcome: {_counts(_attempt_outcomes(system.ledger_url))}")
    times = Counter(per_recipient[number] for number in jobs.values())
    print(
        f"MailUp: {stats['requests']} requests, {stats['limited']} refused over its caps (429), "
        f"{len(deliveries)} SMS delivered; recipients delivered n times: "
        + ", ".join(f"{n}×: {count}" for n, count in sorted(times.items()))
    )
    problems = {
        "lost (not final at the deadline)": lost,
        "sent twice or more": twice,
        "succeeded without a delivery": undelivered,
        "succeeded with a DeliveryId MailUp never gave": unknown_id,
        "failed although MailUp delivered it": failed_sent,
    }
    for what, found in problems.items():
        print(f"{what}: {len(found)}")
    for note in system.unexpected_exits:
        print(f"note: {note}")
    for what, found in problems.items():
        _explain(system, what, found, ledger, jobs, deliveries)
    ok = not any(problems.values())
    print("\nOK: nothing lost, nothing sent twice" if ok else "\nFAILED: see above")
    return ok


def _print_by_code(
    ledger: dict[str, LedgerJob], jobs: dict[str, str], per_recipient: Counter[str]
) -> None:
    for status in ("in_doubt", "failed"):
        codes: Counter[str] = Counter()
        delivered: Counter[str] = Counter()
        for job_id, row in ledger.items():
            if row.status == status:
                codes[row.code or "-"] += 1
                delivered[row.code or "-"] += per_recipient[jobs[job_id]] > 0
        shown = ", ".join(
            f"{code} {n} (delivered {delivered[code]})" for code, n in codes.most_common()
        )
        print(f"{status} by code: {shown or 'none'}")


def _explain(
    system: System,
    what: str,
    found: list[str],
    ledger: dict[str, LedgerJob],
    jobs: dict[str, str],
    deliveries: list[dict[str, Any]],
) -> None:
    """The first few jobs of a problem: the ledger's view, MailUp's, and their log lines."""
    for job_id in found[:5]:
        number = jobs[job_id]
        print(f"\n-- {what}: job {job_id} to {number}: {ledger[job_id].describe()}")
        for d in deliveries:
            if d["recipient"] == number:
                seen = f"seq {d['seq']} at {d['time']:.3f}, DeliveryId {d['delivery_id']}"
                print(f"   MailUp delivered it: {seen}")
        for line in _log_lines(system.folder, job_id)[:20]:
            print(f"   {line}")


def _log_lines(folder: Path, needle: str) -> list[str]:
    lines = []
    for log in sorted(folder.glob("*.log")):
        with log.open(errors="replace") as text:
            lines += [f"{log.stem}: {line.rstrip()}" for line in text if needle in line]
    return lines


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "none"


# --- the sandbox's control routes ----------------------------------------------------------


def _root(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _base(port: int) -> str:
    return f"{_root(port)}/_sandbox"


def _get(port: int, path: str) -> dict[str, Any]:
    answer = requests.get(_base(port) + path, timeout=30)
    answer.raise_for_status()
    return dict(answer.json())


def _post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(_base(port) + path, json=body, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def _delivered(port: int) -> int:
    return int(_get(port, "/stats")["deliveries"])


def _sandbox_answers(port: int) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            return requests.get(_base(port) + "/stats", timeout=1).ok
        except requests.ConnectionError:
            return False

    return answers


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
