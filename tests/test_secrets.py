"""No ListSecret, password or Basic header reaches the broker, the logs or the ledger in clear."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import redis
import requests
import sqlalchemy

from producers import manage_list_secret, send_sms
from sandbox.server import Sandbox
from sandbox.state import DEFAULT_PASSWORD, DEFAULT_USERNAME, list_guid
from tests.conftest import Env, Process, wait_for
from tests.helpers import statuses


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


def _redis_text(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts = []
    for key in client.scan_iter():
        kind = client.type(key).decode()
        value = {
            "string": lambda k: client.get(k),
            "list": lambda k: client.lrange(k, 0, -1),
            "hash": lambda k: client.hgetall(k),
            "set": lambda k: client.smembers(k),
            "zset": lambda k: client.zrange(k, 0, -1),
        }[kind](key)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


def _ledger_text(url: str) -> str:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        tables = sqlalchemy.inspect(connection).get_table_names()
        dump = [
            f"{t}: {list(connection.execute(sqlalchemy.text(f'SELECT * FROM {t}')))}"
            for t in tables
        ]
    engine.dispose()
    return "\n".join(dump)


def test_secrets_stay_out_of_redis_logs_and_ledger(
    env: Env, redis_broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    # Given a worker at DEBUG on Redis + PostgreSQL, doing ListSecret and SMS work,
    # including failures that produce error texts and retries
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker, MAILUP_JOBS_LOG_LEVEL="DEBUG")
    spawn("worker", "-c", "2")
    jobs = [manage_list_secret("create", list_id=1, list_guid=list_guid(1))]
    wait_for(lambda: statuses(jobs)[jobs[0]] == "succeeded", 60, "ListSecret created")
    sandbox.force(400, "103", operation="send_sms")
    sandbox.force(500, "300", operation="send_sms")
    jobs += [send_sms(list_id=1, recipient=f"+3933500000{n:02d}", content="hi") for n in range(6)]
    jobs.append(manage_list_secret("rotate", list_id=1))
    settled = {"succeeded", "failed", "in_doubt"}
    wait_for(lambda: set(statuses(jobs).values()) <= settled, 60, "jobs settle")

    # Then none of the secrets appear anywhere we keep or show things
    lists = requests.get(f"{sandbox.control_url}/state/lists", timeout=5).json()["lists"]
    secret = next(item["list_secret"] for item in lists if item["id"] == 1)
    basic = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    places = {
        "redis": _redis_text(redis_broker),
        "worker log": (env.data_dir / "worker.log").read_text(),
        "ledger": _ledger_text(env.values["MAILUP_JOBS_DATABASE_URL"]),
    }
    # (each place holds what we expect, so the scan looked at the right thing)
    assert "_kombu.binding.mailup-jobs" in places["redis"]
    assert "mailup_jobs.run_job" in places["worker log"] and "code 103" in places["worker log"]
    assert "code 300" in places["worker log"]
    assert "'gAAAAA" in places["ledger"]  # the ListSecret, Fernet-encrypted
    for where, text in places.items():
        for name, value in [
            ("ListSecret", secret),
            ("password", DEFAULT_PASSWORD),
            ("Basic header", basic),
        ]:
            assert value and value not in text, f"{name} found in {where}"


def test_email_and_console_secrets_stay_out_of_redis_logs_and_ledger(
    env: Env, redis_broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    from producers import send_email
    from producers.console import create_smtp_user, reset_smtp_password, trust_sender
    from sandbox.state import DEFAULT_CLIENT_SECRET, DEFAULT_SMTP_SECRET
    from worker.engine.tokens import RedisTokenStore
    from worker.ledger.crypto import secret_box
    from worker.settings import get_settings

    # Given a worker at DEBUG on Redis + PostgreSQL sending email and managing SMTP+ users,
    # with an expired token, a blocked user and server errors along the way
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker, MAILUP_JOBS_LOG_LEVEL="DEBUG")
    spawn("worker", "-c", "2")
    sandbox.force(503, operation="send_message", retry_after=1)
    jobs = [send_email(sender="sender@example.com", to=["a@example.com"], subject="s", text="t")]
    jobs.append(trust_sender("news@example.com"))
    wait_for(lambda: set(statuses(jobs).values()) == {"succeeded"}, 60, "first jobs")
    sandbox.confirm_trusted_sender("news@example.com")
    sandbox.expire_tokens()
    jobs.append(create_smtp_user(list_id=1, trusted_senders=["news@example.com"]))
    jobs.append(reset_smtp_password(list_id=1, username="s1234_1"))
    wait_for(lambda: set(statuses(jobs).values()) == {"succeeded"}, 90, "SMTP+ jobs")

    # Then no secret appears anywhere we keep or show things
    settings = get_settings()
    token = RedisTokenStore(redis.Redis.from_url(redis_broker), secret_box(settings)).load(
        "default"
    )
    assert token is not None and token.refresh_token
    created = [u["secret"] for u in sandbox.smtp_users()]
    secrets = {
        "SMTP+ seeded secret": DEFAULT_SMTP_SECRET,
        "console password": DEFAULT_PASSWORD,
        "client secret": DEFAULT_CLIENT_SECRET,
        "access token": token.access_token,
        "refresh token": token.refresh_token,
        **{f"SMTP+ password {n}": secret for n, secret in enumerate(created)},
    }
    places = {
        "redis": _redis_text(redis_broker),
        "worker log": (env.data_dir / "worker.log").read_text(),
        "ledger": _ledger_text(env.values["MAILUP_JOBS_DATABASE_URL"]),
    }
    assert "mailup-jobs:oauth:default" in places["redis"]
    assert "HTTP 503" in places["worker log"]
    assert len(created) >= 2
    for where, text in places.items():
        for name, value in secrets.items():
            assert value not in text, f"{name} found in {where}"
