"""The Flask extension as an application uses it: settings from ``app.config``, the producer
API on the extension, jobs in the request's transaction (Flask-SQLAlchemy on the ledger's
database) or committed at once (another database); a real worker and the sandbox deliver."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy
from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from producers import send_sms
from producers.audit import get_job
from producers.flask import MailUpJobs
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from worker.app import QUEUE
from worker.errors import ConfigurationError
from worker.metrics import LedgerCollector
from worker.settings import get_settings, use_settings


@pytest.fixture(autouse=True)
def _settings_back_to_the_environment() -> Iterator[None]:
    yield
    use_settings(None)


@pytest.fixture
def broker(env: Env, redis_broker: str) -> str:
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker)
    return redis_broker


def queued(broker_url: str) -> int:
    """Messages waiting in the broker's job queue (every priority)."""
    client = redis.Redis.from_url(broker_url)
    keys = [k for k in client.scan_iter(f"{QUEUE}*") if client.type(k) == b"list"]
    return sum(int(client.llen(k)) for k in keys)


def committed(ledger_url: str, job_id: str) -> bool:
    """Whether another connection sees the job (a plain read: it never waits for a lock)."""
    engine = sqlalchemy.create_engine(ledger_url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as db:
        found = db.execute(sqlalchemy.text("SELECT 1 FROM jobs WHERE id = :id"), {"id": job_id})
        return found.first() is not None


@dataclass
class Shop:
    app: Flask
    db: SQLAlchemy
    jobs: MailUpJobs
    order: Any
    attempted: list[str] = field(default_factory=list)

    def orders(self) -> list[tuple[str, str]]:
        with self.app.app_context():
            rows = self.db.session.execute(sqlalchemy.select(self.order.ref, self.order.job_id))
            return [(row.ref, row.job_id) for row in rows]


def make_shop(env: Env, monkeypatch: pytest.MonkeyPatch, database_uri: str) -> Shop:
    """A minimal shop: its settings in app.config only, Flask-SQLAlchemy on database_uri."""
    app = Flask("shop")
    app.config.update(env.values)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri
    for name in list(os.environ):
        if name.startswith("MAILUP_"):
            monkeypatch.delenv(name)  # the worker still gets them: spawn hands env.values
    db = SQLAlchemy(app)

    class Order(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "shop_orders"
        id: Mapped[int] = mapped_column(primary_key=True)
        ref: Mapped[str]
        job_id: Mapped[str]

    jobs = MailUpJobs(app)
    shop = Shop(app, db, jobs, Order)
    with app.app_context():
        db.create_all()

    @app.post("/orders/<ref>")
    def place_order(ref: str) -> tuple[dict[str, str], int]:
        job_id = jobs.send_sms(
            list_id=1, recipient=request.args["to"], content=f"Order {ref} confirmed"
        )
        shop.attempted.append(job_id)
        db.session.add(Order(ref=ref, job_id=job_id))
        if request.args.get("outcome") == "rollback":
            db.session.rollback()
            return {"job_id": job_id}, 409
        if request.args.get("outcome") == "error":
            raise RuntimeError("the payment failed")
        db.session.commit()
        return {"job_id": job_id}, 201

    return shop


def test_a_job_is_written_in_the_request_and_published_after_its_commit(
    env: Env,
    ledger_url: str,
    broker: str,
    list_secret: str,
    sandbox: Sandbox,
    spawn: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shop whose Flask-SQLAlchemy database is the ledger's, and no worker yet
    shop = make_shop(env, monkeypatch, ledger_url)
    client = shop.app.test_client()

    # When a request rolls back, or fails before it commits
    rolled_back = client.post("/orders/r1?to=%2B393350000001&outcome=rollback")
    assert rolled_back.status_code == 409
    assert client.post("/orders/r2?to=%2B393350000001&outcome=error").status_code == 500
    # Then neither job exists nor was published, nor does either order
    assert shop.attempted[0] == rolled_back.json["job_id"]  # type: ignore[index]
    assert [get_job(job_id) for job_id in shop.attempted] == [None, None]
    assert queued(broker) == 0
    assert shop.orders() == []

    # When a job is asked for in a transaction still open
    with shop.app.app_context():
        waiting = shop.jobs.send_sms(list_id=1, recipient="+393350000002", content="First")
        shop.db.session.add(shop.order(ref="a1", job_id=waiting))
        shop.db.session.flush()
        # Then it is neither published nor visible outside
        assert queued(broker) == 0
        assert not committed(ledger_url, waiting)
        shop.db.session.commit()
    # …until the commit
    assert queued(broker) == 1
    assert get_job(waiting)["status"] == "queued"  # type: ignore[index]

    placed = client.post("/orders/a2?to=%2B393350000003")
    assert placed.status_code == 201
    assert queued(broker) == 2

    # Then a worker delivers both, and both orders are kept
    spawn("worker", "-c", "1")
    job_ids = [waiting, placed.json["job_id"]]  # type: ignore[index]
    wait_for(
        lambda: all(get_job(j)["status"] == "succeeded" for j in job_ids),  # type: ignore[index]
        60,
        "both SMS sent",
    )
    sent = {d["recipient"]: d["content"] for d in sandbox.deliveries()}
    assert sent == {"+393350000002": "First", "+393350000003": "Order a2 confirmed"}
    assert sorted(shop.orders()) == [("a1", waiting), ("a2", job_ids[1])]


def test_idempotency_keys_and_savepoints_inside_the_request(
    env: Env, ledger_url: str, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = make_shop(env, monkeypatch, ledger_url)
    sms = {"list_id": 1, "recipient": "+393350000001", "content": "Hi"}
    with shop.app.app_context():
        session = shop.db.session
        # The same key twice in one transaction: one job
        first = shop.jobs.send_sms(**sms, idempotency_key="order-1")
        assert shop.jobs.send_sms(**sms, idempotency_key="order-1") == first
        # A job asked for in a savepoint that rolls back is dropped with it
        with pytest.raises(RuntimeError), session.begin_nested():
            dropped = shop.jobs.send_sms(**sms, idempotency_key="order-2")
            raise RuntimeError("undo this part")
        # …and its key is free again
        kept = shop.jobs.send_sms(**sms, idempotency_key="order-2")
        assert kept != dropped
        session.commit()
        assert queued(broker) == 2
        assert get_job(dropped) is None
        assert {get_job(first)["idempotency_key"], get_job(kept)["idempotency_key"]} == {  # type: ignore[index]
            "order-1",
            "order-2",
        }

        # A key already committed answers with its job, published once only
        assert shop.jobs.send_sms(**sms, idempotency_key="order-1") == first
        session.commit()
        assert queued(broker) == 2
        # A key used with other parameters is refused, naming it
        with pytest.raises(Exception, match="idempotency_key"):
            shop.jobs.send_sms(**{**sms, "content": "Other"}, idempotency_key="order-1")


def test_on_another_database_the_job_waits_for_the_requests_commit(
    env: Env,
    ledger_url: str,
    app_database: str,
    broker: str,
    list_secret: str,
    sandbox: Sandbox,
    spawn: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shop whose own database (PostgreSQL) is not the ledger's
    shop = make_shop(env, monkeypatch, app_database)
    client = shop.app.test_client()

    # When requests roll back, fail, or never commit
    assert client.post("/orders/r1?to=%2B393350000001&outcome=rollback").status_code == 409
    assert client.post("/orders/r2?to=%2B393350000001&outcome=error").status_code == 500
    with shop.app.app_context():
        shop.jobs.send_sms(list_id=1, recipient="+393350000001", content="Never committed")
    # Then no job was written nor published, though each got its id at once
    assert len(shop.attempted) == 2
    assert [get_job(job_id) for job_id in shop.attempted] == [None, None]
    assert queued(broker) == 0

    with shop.app.app_context():
        # When a job is asked for (the plain producer function joins the request as the
        # extension does), and the same idempotency key twice
        waiting = send_sms(list_id=1, recipient="+393350000002", content="First")
        sms = {"list_id": 1, "recipient": "+393350000003", "content": "Keyed"}
        keyed = shop.jobs.send_sms(**sms, idempotency_key="order-b1")
        assert shop.jobs.send_sms(**sms, idempotency_key="order-b1") == keyed
        # …a key used with other parameters is refused at once, naming it
        with pytest.raises(Exception, match="idempotency_key"):
            send_sms(**{**sms, "content": "Other"}, idempotency_key="order-b1")
        shop.db.session.add(shop.order(ref="b1", job_id=waiting))
        shop.db.session.flush()
        # Then nothing is written nor published before the commit
        assert not committed(ledger_url, waiting) and not committed(ledger_url, keyed)
        assert queued(broker) == 0
        shop.db.session.commit()
    # …and both jobs exist after it, each published once
    assert committed(ledger_url, waiting) and committed(ledger_url, keyed)
    assert queued(broker) == 2

    # A savepoint rolled back takes its job with it; its key is free again
    with shop.app.app_context():
        with pytest.raises(RuntimeError), shop.db.session.begin_nested():
            dropped = send_sms(**sms, idempotency_key="order-b2")
            raise RuntimeError("undo this part")
        kept = send_sms(**sms, idempotency_key="order-b2")
        assert kept != dropped
        shop.db.session.commit()
    assert get_job(dropped) is None and committed(ledger_url, kept)

    # A worker delivers each job once
    spawn("worker", "-c", "1")
    job_ids = [waiting, keyed, kept]
    wait_for(
        lambda: all(get_job(j)["status"] == "succeeded" for j in job_ids),  # type: ignore[index]
        60,
        "the SMS sent",
    )
    assert sorted(d["content"] for d in sandbox.deliveries()) == ["First", "Keyed", "Keyed"]
    assert shop.orders() == [("b1", waiting)]


@pytest.mark.parametrize("shop_database", ["the ledger's", "its own"])
def test_a_publish_refused_after_the_commit_is_named_counted_and_swept(
    env: Env,
    ledger_url: str,
    shop_database: str,
    broker: str,
    list_secret: str,
    sandbox: Sandbox,
    spawn: Callable[..., Process],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    # Given a shop whose broker is down (nothing listens on its port)
    env.values["MAILUP_JOBS_BROKER_URL"] = "redis://127.0.0.1:9/0"
    own = shop_database == "its own"
    shop = make_shop(
        env, monkeypatch, request.getfixturevalue("app_database") if own else ledger_url
    )
    env.values["MAILUP_JOBS_BROKER_URL"] = broker  # the worker's and beat's
    failures = LedgerCollector(ledger_url, [])

    # When a request commits its job
    placed = shop.app.test_client().post("/orders/c1?to=%2B393350000005")
    # Then the order is kept and the job committed; the warning names it, the metric counts it
    assert placed.status_code == 201
    job_id = placed.json["job_id"]  # type: ignore[index]
    assert shop.orders() == [("c1", job_id)]
    assert committed(ledger_url, job_id)
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert job_id in warning.getMessage() and "sweeper" in warning.getMessage()
    assert metric(failures, "mailup_jobs_publish_failures_total") == 1

    # …and beat's sweeper publishes it to the worker
    spawn("worker", "-c", "1")
    spawn("beat")
    wait_for(lambda: get_job(job_id)["status"] == "succeeded", 90, "the job swept and sent")  # type: ignore[index]
    assert [d["recipient"] for d in sandbox.deliveries()] == ["+393350000005"]


def metric(collector: LedgerCollector, name: str) -> float:
    return next(
        sample.value
        for family in collector.collect()
        for sample in family.samples
        if sample.name == name
    )


def test_settings_come_from_app_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_ledger: str
) -> None:
    monkeypatch.setenv("MAILUP_JOBS_DATABASE_URL", "sqlite:///elsewhere.db")
    app = Flask("shop")
    app.config.update(MAILUP_JOBS_DATABASE_URL=sqlite_ledger, MAILUP_JOBS_MAX_ATTEMPTS="3")
    MailUpJobs().init_app(app)
    assert get_settings().ledger_url == sqlite_ledger
    assert get_settings().max_attempts == 3

    app.config["MAILUP_JOBS_MAX_ATTEMPTS"] = 0
    with pytest.raises(ConfigurationError, match="MAILUP_JOBS_MAX_ATTEMPTS: Input should be"):
        MailUpJobs(app)
    app.config["MAILUP_JOBS_BROKER_ULR"] = "redis://x"
    with pytest.raises(ConfigurationError, match="unknown setting MAILUP_JOBS_BROKER_ULR"):
        MailUpJobs(app)


def test_the_extension_takes_the_producer_functions_as_they_are() -> None:
    jobs = MailUpJobs()
    assert inspect.signature(jobs.send_sms) == inspect.signature(send_sms)
    assert jobs.send_sms.__doc__ == send_sms.__doc__
