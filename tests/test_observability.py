"""Observability as an operator gets it: worker and beat log lines (text or one JSON object
a line) naming each job run with no secret in them, and `mailup-jobs metrics` scraped over
HTTP while a worker runs, its numbers checked against the ledger — on the embedded stack and
on Redis + PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, insert, select, update

from producers import manage_list_secret, send_email, send_sms
from producers.lists import create_group
from sandbox.server import Sandbox
from sandbox.state import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SMTP_SECRET,
    DEFAULT_USERNAME,
    list_guid,
)
from tests.conftest import Env, Process, wait_for
from tests.helpers import statuses
from tests.test_flower import listening_address
from tests.test_fresh_host import free_port
from tests.test_system import FINISHED, broker, ledger_url, stack
from worker.jobs.registry import KINDS
from worker.ledger.db import transaction
from worker.ledger.models import Attempt, ChannelPause, Job, JobStatus, utcnow
from worker.logs import JsonFormatter, SecretMask, secret_values
from worker.metrics import BUCKETS, LedgerCollector
from worker.settings import Settings

__all__ = ["broker", "ledger_url", "stack"]  # the stacks of test_system, as fixtures here

JOB_FIELDS = {"job_id", "kind", "account", "attempt", "outcome", "duration_ms"}


# --- the mask and the JSON line, in this process ---------------------------------------------


def _logged(
    mask: SecretMask, formatter: logging.Formatter, emit: Callable[[logging.Logger], None]
) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(mask)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    emit(logger)
    return stream.getvalue()


def test_the_mask_hides_every_configured_secret_and_credentials_by_their_shape() -> None:
    settings = Settings(
        MAILUP_PASSWORD="console pass/word",
        MAILUP_CLIENT_SECRET="client-secret-1",
        MAILUP_SMTP_SECRET="smtp-secret-1",
        MAILUP_JOBS_SECRET_KEY="fernet-key-value",
        MAILUP_JOBS_DATABASE_URL="postgresql+psycopg://app:db%40pass@db/ledger",
        MAILUP_JOBS_BROKER_URL="redis://:broker-pass@redis:6379/0",
        MAILUP_JOBS_ACCOUNTS={"eu": {"password": "eu-pass", "smtp_secret": "eu-smtp"}},
    )
    secrets = [
        "console pass/word",
        "console%20pass%2Fword",  # as it travels in a form or a query string
        "client-secret-1",
        "smtp-secret-1",
        "fernet-key-value",
        "db@pass",
        "db%40pass",
        "broker-pass",
        "eu-pass",
        "eu-smtp",
    ]
    basic = base64.b64encode(b"m1234:console pass/word").decode()
    mask = SecretMask(secret_values(settings))

    def emit(logger: logging.Logger) -> None:
        logger.info("sent %s and %s", "console pass/word", "password=console%20pass%2Fword")
        logger.info(
            "headers {'Authorization': 'Basic %s'} then Bearer abcdefghijklmnopqrstu", basic
        )
        logger.info('token answer {"access_token": "at-123", "refresh_token": "rt-456"}')
        logger.info("grant_type=refresh_token&refresh_token=rt-789")
        logger.info("job ran", extra={"error": "MailUp said: bad secret eu-smtp"})
        try:
            raise RuntimeError("could not reach redis://:broker-pass@redis:6379/0")
        except RuntimeError:
            logger.exception("the broker: %s", "db%40pass")
        logger.info("HTTP Basic authentication uses the console user")

    text = _logged(mask, logging.Formatter("%(message)s %(error)s", defaults={"error": ""}), emit)
    for secret in [*secrets, basic, "abcdefghijklmnopqrstu", "at-123", "rt-456", "rt-789"]:
        assert secret not in text, secret
    assert "'Authorization': 'Basic ***'" in text and "Bearer ***" in text
    assert '"access_token": "***", "refresh_token": "***"' in text
    assert "MailUp said: bad secret ***" in text
    assert "RuntimeError: could not reach redis://:***@redis:6379/0" in text  # the traceback
    # A word after "Basic" in prose is not a credential.
    assert "HTTP Basic authentication uses the console user" in text


def test_a_json_line_has_the_run_fields_and_the_traceback_and_leaves_out_what_is_missing() -> None:
    def emit(logger: logging.Logger) -> None:
        run = {"job_id": "j1", "kind": "send_sms", "account": "default", "attempt": 2}
        run |= {"outcome": "succeeded", "duration_ms": 12, "error": None}
        logger.info("one run", extra=run)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it broke")

    first, second = _logged(SecretMask([]), JsonFormatter(), emit).splitlines()
    run = json.loads(first)
    assert {key: run[key] for key in JOB_FIELDS} == {
        "job_id": "j1",
        "kind": "send_sms",
        "account": "default",
        "attempt": 2,
        "outcome": "succeeded",
        "duration_ms": 12,
    }
    assert "error" not in run and (run["level"], run["message"]) == ("INFO", "one run")
    assert run["time"].endswith("+00:00") and run["logger"].startswith("test.")
    broke = json.loads(second)
    assert broke["level"] == "ERROR" and 'raise ValueError("boom")' in broke["exception"]
    assert not JOB_FIELDS & set(broke)


def test_a_bad_log_format_is_refused_naming_the_variable(env: Env) -> None:
    env.set(MAILUP_JOBS_LOG_FORMAT="yaml")
    process = Process(["worker"], dict(env.values), env.data_dir / "refused.log").start()
    assert process.popen is not None
    assert process.popen.wait(timeout=60) == 1
    [line] = (env.data_dir / "refused.log").read_text().splitlines()
    assert "MAILUP_JOBS_LOG_FORMAT" in line and "'text' or 'json'" in line


# --- worker and beat processes ---------------------------------------------------------------


@pytest.fixture(params=["json", "text"])
def log_format(request: pytest.FixtureRequest, env: Env) -> str:
    env.set(MAILUP_JOBS_LOG_FORMAT=request.param)
    return str(request.param)


def _complete_lines(path: Path) -> list[str]:
    """The lines written so far, less one still being written."""
    text = path.read_text()
    return text[: text.rfind("\n")].splitlines() if "\n" in text else []


def test_every_job_run_is_one_line_with_its_fields_and_no_secret_is_logged(
    env: Env,
    broker: str,
    sandbox: Sandbox,
    spawn: Callable[..., Process],
    log_format: str,
) -> None:
    # Given a worker and beat at DEBUG, and jobs that call the SMS API with Basic auth, the
    # Console with OAuth and the transactional API with the SMTP+ secret
    env.set(MAILUP_JOBS_LOG_LEVEL="DEBUG", MAILUP_JOBS_SWEEP_INTERVAL=1)
    spawn("beat")
    spawn("worker", "-c", "2")
    jobs = [manage_list_secret("create", list_id=1, list_guid=list_guid(1))]
    wait_for(lambda: statuses(jobs)[jobs[0]] == "succeeded", 60, "ListSecret created")
    # (a MailUp error text that quotes the password, which the log must not repeat)
    sandbox.force(400, "103", operation="send_sms", description=f"bad user {DEFAULT_PASSWORD}")
    jobs += [send_sms(list_id=1, recipient=f"+3933500000{n}", content="hi") for n in range(2)]
    jobs.append(create_group(list_id=1, name="Observed"))
    jobs.append(
        send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")
    )
    wait_for(lambda: set(statuses(jobs).values()) <= FINISHED, 60, "jobs settle")
    ended = statuses(jobs)
    assert list(ended.values()).count("failed") == 1, ended

    # Then the worker's log has one line per run, with the run's fields
    worker_lines = _complete_lines(env.data_dir / "worker.log")
    beat_lines = _complete_lines(env.data_dir / "beat.log")
    assert any("beat: sweep: {" in line for line in beat_lines) and len(worker_lines) > 20
    kinds = {jobs[0]: "list_secret", jobs[3]: "group_create", jobs[4]: "send_message"}
    lines = _run_lines(worker_lines, log_format)
    assert sorted(run["job_id"] for run in lines) == sorted(jobs)  # one line each
    runs = {run["job_id"]: run for run in lines}
    for job_id, status in ended.items():
        run = runs[job_id]
        assert run["kind"] == kinds.get(job_id, "send_sms")
        assert (run["account"], run["attempt"], run["outcome"]) == ("default", 1, status)
        assert int(run["duration_ms"]) >= 0
    [failed] = [runs[j] for j, status in ended.items() if status == "failed"]
    assert "code 103" in failed["error"] and "bad user ***" in failed["error"]
    if log_format == "json":
        for line in worker_lines + beat_lines:
            entry = json.loads(line)
            assert {"time", "level", "logger", "process", "message"} <= set(entry), line
    else:
        assert not any(line.startswith("{") for line in worker_lines + beat_lines)

    # And no secret appears anywhere in either log
    lists = requests.get(f"{sandbox.control_url}/state/lists", timeout=5).json()["lists"]
    list_secret = next(item["list_secret"] for item in lists if item["id"] == 1)
    basic = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    logs = "\n".join(worker_lines + beat_lines)
    for name, value in {
        "console password": DEFAULT_PASSWORD,
        "client secret": DEFAULT_CLIENT_SECRET,
        "SMTP+ secret": DEFAULT_SMTP_SECRET,
        "secret key": env.values["MAILUP_JOBS_SECRET_KEY"],
        "Basic header": basic,
        "ListSecret": list_secret,
    }.items():
        assert value and value not in logs, f"{name} found in the log"


def _run_lines(lines: list[str], log_format: str) -> list[dict[str, Any]]:
    """The runner's lines, one per job run, as fields: the JSON object, or the text's pairs."""
    runs = []
    for line in lines:
        if log_format == "json":
            entry = json.loads(line)
            if entry["logger"] == "worker.engine.runner" and "job_id" in entry:
                runs.append(entry)
        elif (message := line.partition("] ")[2]).startswith("job_id="):
            pairs, _, error = message.partition(" error=")
            run: dict[str, Any] = dict(pair.split("=", 1) for pair in pairs.split())
            run["attempt"], run["error"] = int(run["attempt"]), error
            runs.append(run)
    return runs


# --- metrics ----------------------------------------------------------------------------------


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(port: int) -> Samples:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: list[Sample] = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _ledger_counts(url: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], Any]:
    """Jobs by (kind, status), finished attempts by (kind, outcome), and (kind, started,
    finished) of the attempts their worker closed: read with SQL."""
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as db:
        jobs = Counter(
            {
                (k, s): n
                for k, s, n in db.execute(
                    select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
                )
            }
        )
        attempts = Counter(
            {
                (k, o): n
                for k, o, n in db.execute(
                    select(Job.kind, Attempt.outcome, func.count())
                    .join(Job, Job.id == Attempt.job_id)
                    .where(Attempt.finished_at.is_not(None))
                    .group_by(Job.kind, Attempt.outcome)
                )
            }
        )
        latency = db.execute(
            select(Job.kind, Attempt.started_at, Attempt.finished_at)
            .join(Job, Job.id == Attempt.job_id)
            .where(Attempt.duration_ms.is_not(None))
        ).all()
    engine.dispose()  # fmt: skip
    return jobs, attempts, latency


def test_metrics_scraped_while_a_worker_runs_match_the_ledger(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    # Given the metrics process, started before anything was queued
    port = free_port()
    spawn("metrics", "--port", str(port))
    first = wait_for(lambda: _try_scrape(port), 30, "metrics answer")
    assert _value(first, "mailup_jobs_ledger_up") == 1
    assert _value(first, "mailup_jobs_queue_lag_seconds") == 0

    # When a job waits with no worker running, the queue lag is its age
    secret_job = manage_list_secret("create", list_id=1, list_guid=list_guid(1))

    def lagging() -> Samples | None:
        samples = _scrape(port)
        return samples if _value(samples, "mailup_jobs_queue_lag_seconds") >= 1 else None

    waiting = wait_for(lagging, 10, "the lag grows")
    assert _value(waiting, "mailup_jobs_jobs", kind="list_secret", status="queued") == 1
    assert _value(waiting, "mailup_jobs_queue_lag_seconds") < 10

    # When a worker runs SMS that succeed, fail, end in doubt and pause on no credits
    spawn("worker", "-c", "2")
    wait_for(lambda: statuses([secret_job])[secret_job] == "succeeded", 60, "ListSecret")
    sandbox.force(400, "103", operation="send_sms")
    sandbox.force(500, "300", operation="send_sms")
    jobs = [send_sms(list_id=1, recipient=f"+3933500000{n}", content="hi") for n in range(4)]
    wait_for(lambda: set(statuses(jobs).values()) <= FINISHED, 60, "SMS settle")
    sandbox.set_account(1234, credits=0)
    paused = send_sms(list_id=1, recipient="+393350000099", content="hi")
    wait_for(lambda: statuses([paused])[paused] == "retrying", 60, "the channel pauses")

    # Then a scrape says what the ledger says
    samples = _scrape(port)
    jobs_by, attempts_by, latency = _ledger_counts(env.values["MAILUP_JOBS_DATABASE_URL"])
    assert (jobs_by[("send_sms", "in_doubt")], jobs_by[("send_sms", "failed")]) == (1, 1)
    for kind in KINDS:
        for status in JobStatus:
            expected = jobs_by[(kind, status)]
            assert _value(samples, "mailup_jobs_jobs", kind=kind, status=status) == expected
        for outcome in ("succeeded", "transient", "permanent", "in_doubt", "paused"):
            counted = _value(samples, "mailup_jobs_attempts_total", kind=kind, outcome=outcome)
            assert counted == attempts_by[(kind, outcome)], (kind, outcome)
    assert _value(samples, "mailup_jobs_in_doubt_jobs") == 1
    assert attempts_by[("send_sms", "paused")] == 1
    pause = {"account": "default", "channel": "sms", "condition": "no_credits"}
    assert _value(samples, "mailup_jobs_paused_channels", **pause) == 1
    assert _value(samples, "mailup_jobs_queue_lag_seconds") == 0  # the paused job waits later
    for kind in ("list_secret", "send_sms"):
        seconds = [(f - s).total_seconds() for k, s, f in latency if k == kind]
        name = "mailup_jobs_mailup_call_duration_seconds"
        assert _value(samples, f"{name}_count", kind=kind) == len(seconds) > 0
        assert _value(samples, f"{name}_sum", kind=kind) == pytest.approx(sum(seconds))
        quick = sum(1 for s in seconds if s <= BUCKETS[-1])
        assert _value(samples, f"{name}_bucket", kind=kind, le=str(BUCKETS[-1])) == quick
    assert _value(samples, "mailup_jobs_ledger_up") == 1


def _try_scrape(port: int) -> Samples | None:
    try:
        return _scrape(port)
    except requests.ConnectionError:
        return None


@pytest.mark.parametrize(
    "unreachable",
    ["postgresql+psycopg://postgres@127.0.0.1:{port}/test", "sqlite:////{tmp}/missing/ledger.db"],
)
def test_metrics_with_the_ledger_down_answer_ledger_up_0_and_no_traceback(
    tmp_path: Path, unreachable: str
) -> None:
    port = free_port()
    url = unreachable.format(port=free_port(), tmp=str(tmp_path).lstrip("/"))
    environment = {"HOME": str(tmp_path), "MAILUP_JOBS_DATA_DIR": str(tmp_path / "data")}
    process = Process(["metrics", "--port", str(port)], environment, tmp_path / "metrics.log")
    process.env["MAILUP_JOBS_DATABASE_URL"] = url
    try:
        process.start()
        samples = wait_for(lambda: _try_scrape(port), 30, "metrics answer")
        again = _scrape(port)
    finally:
        process.stop()
    for scraped in (samples, again):
        assert _value(scraped, "mailup_jobs_ledger_up") == 0
        assert _attempts(scraped) == 0
        assert not [name for name, _ in scraped if name == "mailup_jobs_jobs"]
    log = (tmp_path / "metrics.log").read_text()
    assert "Traceback" not in log
    assert log.count("the ledger cannot be read") == 1  # once, not once per scrape


# --- the attempt tally, against the ledger directly ------------------------------------------


def _job(db: sqlalchemy.Connection, kind: str = "send_sms") -> str:
    job_id = str(uuid.uuid4())
    db.execute(insert(Job).values(id=job_id, kind=kind, account="default", payload={}))
    return job_id


def _attempt(db: sqlalchemy.Connection, job_id: str, seconds: float | None) -> int:
    """An attempt row: open (seconds None) or closed ``seconds`` after it started."""
    started = utcnow() - timedelta(seconds=10)
    values: dict[str, Any] = {"job_id": job_id, "number": 1, "started_at": started}
    if seconds is not None:
        values |= {"outcome": "succeeded", "finished_at": started + timedelta(seconds=seconds)}
        values["duration_ms"] = int(seconds * 1000)
    return int(db.execute(insert(Attempt).values(**values).returning(Attempt.id)).scalar_one())


def _collected(collector: LedgerCollector) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in collector.collect()
        for s in family.samples
    }


def _attempts(samples: Samples, outcome: str = "succeeded") -> float:
    return _value(samples, "mailup_jobs_attempts_total", kind="send_sms", outcome=outcome)


def test_each_attempt_is_counted_once_when_it_finishes_and_counts_survive_an_outage(
    ledger_url: str,
) -> None:
    ledger = ledger_url
    # Given attempts made before the collector started, which it leaves out
    with transaction(ledger) as session:
        job_id = _job(session.connection())
        _attempt(session.connection(), job_id, 0.2)
    collector = LedgerCollector(ledger, KINDS)

    # When one attempt finishes and another is still calling
    with transaction(ledger) as session:
        _attempt(session.connection(), job_id, 0.3)
        calling = _attempt(session.connection(), job_id, None)
    samples = _collected(collector)
    assert _attempts(samples) == 1
    latency = "mailup_jobs_mailup_call_duration_seconds"
    assert _value(samples, f"{latency}_sum", kind="send_sms") == pytest.approx(0.3)
    assert _value(samples, f"{latency}_bucket", kind="send_sms", le="0.25") == 0
    assert _value(samples, f"{latency}_bucket", kind="send_sms", le="0.5") == 1

    # Then the calling one counts once it has finished, and nothing counts twice
    with transaction(ledger) as session:
        session.execute(
            update(Attempt)
            .where(Attempt.id == calling)
            .values(outcome="in_doubt", finished_at=utcnow(), duration_ms=1)
        )
    samples = _collected(collector)
    assert _attempts(samples, outcome="in_doubt") == 1 and _attempts(samples) == 1
    assert _attempts(_collected(collector), outcome="in_doubt") == 1

    # And while the ledger cannot be read the counts stay; afterwards counting goes on
    with transaction(ledger) as session:
        session.execute(sqlalchemy.text("ALTER TABLE attempts RENAME TO attempts_away"))
    down = _collected(collector)
    assert _value(down, "mailup_jobs_ledger_up") == 0 and _attempts(down) == 1
    with transaction(ledger) as session:
        session.execute(sqlalchemy.text("ALTER TABLE attempts_away RENAME TO attempts"))
        _attempt(session.connection(), job_id, 0.1)
    back = _collected(collector)
    assert _value(back, "mailup_jobs_ledger_up") == 1 and _attempts(back) == 2


def test_an_attempt_committed_after_a_later_one_is_still_counted(postgres_ledger: str) -> None:
    # Given two transactions on PostgreSQL: the first takes the lower id, the second commits first
    collector = LedgerCollector(postgres_ledger, KINDS)
    engine = sqlalchemy.create_engine(postgres_ledger)
    with engine.begin() as db:
        job_id = _job(db)
    with engine.connect() as slow:
        slow.begin()
        lower = _attempt(slow, job_id, 0.1)
        with engine.begin() as quick:
            higher = _attempt(quick, job_id, 0.1)
        assert lower < higher

        # When a scrape comes between the two commits, it counts the one it can see
        assert _attempts(_collected(collector)) == 1
        slow.commit()

    # Then the lower id counts on the next scrape, and only once
    assert _attempts(_collected(collector)) == 2
    assert _attempts(_collected(collector)) == 2
    engine.dispose()


def test_queue_lag_is_the_age_of_the_oldest_due_job_and_pauses_past_their_date_are_over(
    ledger_url: str,
) -> None:
    ledger = ledger_url
    now = utcnow()
    with transaction(ledger) as session:
        db = session.connection()
        for status, age in [("queued", 40), ("retrying", 70), ("retrying", -600), ("running", 900)]:
            run_after = now - timedelta(seconds=age)
            job_id = _job(db)
            db.execute(
                update(Job).where(Job.id == job_id).values(status=status, run_after=run_after)
            )
        for channel, until in [
            ("sms", None),
            ("email", now - timedelta(seconds=5)),
            ("sms:list:3", now + timedelta(hours=1)),
        ]:
            pause = {"account": "default", "channel": channel, "until": until, "reason": "r"}
            db.execute(insert(ChannelPause).values(condition="no_credits", **pause))
    samples = _collected(LedgerCollector(ledger, KINDS))
    assert 70 <= _value(samples, "mailup_jobs_queue_lag_seconds") < 80
    assert _value(samples, "mailup_jobs_jobs", kind="send_sms", status="retrying") == 2
    paused = [dict(labels) for name, labels in samples if name == "mailup_jobs_paused_channels"]
    assert sorted(labels["channel"] for labels in paused) == ["sms", "sms:list:3"]


@pytest.mark.parametrize(
    ("host", "address"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")]
)
def test_metrics_listen_on_this_host_only_unless_told(
    tmp_path: Path, host: list[str], address: str
) -> None:
    port = free_port()
    data_dir = str(tmp_path / "data")

    listened = listening_address(
        tmp_path, port, "metrics", *host, "--port", str(port), MAILUP_JOBS_DATA_DIR=data_dir
    )
    assert listened == address
