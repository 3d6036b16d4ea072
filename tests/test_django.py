"""The Django app as a project uses it, through manage.py: ``producers.django`` in
INSTALLED_APPS, a MAILUP_JOBS dict (and no MAILUP_* variable), jobs published on
``transaction.on_commit``, ``manage.py check`` and ``manage.py mailup_jobs``; a real worker
and the sandbox deliver. The project is tests/django_site."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from cryptography.fernet import Fernet

from producers.django.conf import key
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.test_system import cli, show

SITE = Path(__file__).parent / "django_site"


def manage(
    database_url: str, settings: dict[str, Any] | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the shop's ``manage.py ARGS`` with ``settings`` (environment variable names) as
    its MAILUP_JOBS, and no MAILUP_* variable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILUP_")}
    environ["SHOP_DATABASE_URL"] = database_url
    if settings is not None:
        environ["SHOP_MAILUP_JOBS"] = json.dumps({key(k): v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, str(SITE / "manage.py"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def broker(env: Env, redis_broker: str) -> str:
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker)
    return redis_broker


@pytest.fixture
def place_order(env: Env, broker: str) -> Callable[..., Callable[..., dict[str, Any]]]:
    def on(database_url: str) -> Callable[..., dict[str, Any]]:
        done = manage(database_url, env.values, "migrate", "--run-syncdb")
        assert done.returncode == 0, done.stderr

        def order(ref: str, *options: str) -> dict[str, Any]:
            done = manage(database_url, env.values, "place_order", ref, *options)
            assert done.returncode == 0, done.stderr
            return dict(json.loads(done.stdout))

        return order

    return on


def orders(database_url: str) -> list[tuple[str, str]]:
    engine = sqlalchemy.create_engine(database_url, poolclass=sqlalchemy.NullPool)
    with engine.connect() as db:
        rows = db.execute(sqlalchemy.text("SELECT ref, job_id FROM shop_order ORDER BY ref"))
        return [(row.ref, row.job_id) for row in rows]


def test_on_the_ledgers_database_a_job_is_written_in_djangos_transaction(
    env: Env,
    ledger_url: str,
    place_order: Callable[[str], Callable[..., dict[str, Any]]],
    sandbox: Sandbox,
    spawn: Callable[..., Process],
) -> None:
    order = place_order(ledger_url)  # Django's database is the ledger's

    # A rolled back transaction: no job, nothing published, no order
    undone = order("r1", "--to", "ada@example.com", "--rollback")
    assert undone == {
        "job_id": undone["job_id"],
        "queued_before_commit": 0,
        "in_ledger_before_commit": False,
        "queued_after": 0,
        "in_ledger_after": False,
    }
    assert orders(ledger_url) == []

    # A committed one: written with the order, published on commit only
    placed = order("a1", "--to", "ada@example.com")
    assert (placed["queued_before_commit"], placed["in_ledger_before_commit"]) == (0, False)
    assert (placed["queued_after"], placed["in_ledger_after"]) == (1, True)

    # An idempotency key already committed answers with its job, published once only
    keyed = order("a2", "--to", "bob@example.com", "--key", "order-a2", "--subject", "Order a2")
    again = order("a3", "--to", "bob@example.com", "--key", "order-a2", "--subject", "Order a2")
    assert again["job_id"] == keyed["job_id"]
    assert again["queued_after"] == 2

    spawn("worker", "-c", "1")
    job_ids = [placed["job_id"], keyed["job_id"]]
    wait_for(lambda: all(show(env, j)["status"] == "succeeded" for j in job_ids), 60, "emails sent")
    assert sorted(e["subject"] for e in sandbox.emails()) == ["Order a1", "Order a2"]
    assert orders(ledger_url) == [("a1", job_ids[0]), ("a2", job_ids[1]), ("a3", job_ids[1])]

    # manage.py mailup_jobs prints what the command line prints
    for command in (["jobs", "show", job_ids[0]], ["jobs", "list"]):
        done = manage(ledger_url, env.values, "mailup_jobs", *command)
        assert done.returncode == 0, done.stderr
        assert done.stdout == cli(env, *command)
        assert job_ids[0] in done.stdout


def test_on_another_database_the_submission_waits_for_djangos_commit(
    env: Env,
    ledger_url: str,
    app_database: str,
    place_order: Callable[[str], Callable[..., dict[str, Any]]],
    sandbox: Sandbox,
    spawn: Callable[..., Process],
) -> None:
    order = place_order(app_database)  # Django's own PostgreSQL database, not the ledger's

    undone = order("r1", "--to", "ada@example.com", "--rollback")
    assert (undone["queued_after"], undone["in_ledger_after"]) == (0, False)

    # The id is known at once; the job is written and published after Django's commit
    keyed = ("--to", "ada@example.com", "--key", "order-a1", "--subject", "Order a1")
    placed = order("a1", *keyed)
    assert (placed["queued_before_commit"], placed["in_ledger_before_commit"]) == (0, False)
    assert (placed["queued_after"], placed["in_ledger_after"]) == (1, True)
    assert order("a2", *keyed)["job_id"] == placed["job_id"]

    # One key twice in one atomic block: the first job, which exists after the commit
    twice = order("a3", "--to", "bob@example.com", "--key", "order-a3", "--twice")
    assert twice["second_job_id"] == twice["job_id"]
    assert (twice["queued_after"], twice["in_ledger_after"]) == (2, True)

    spawn("worker", "-c", "1")
    job_ids = [placed["job_id"], twice["job_id"]]
    wait_for(lambda: all(show(env, j)["status"] == "succeeded" for j in job_ids), 60, "emails")
    assert sorted(e["subject"] for e in sandbox.emails()) == ["Order a1", "Order a3"]
    assert [ref for ref, _ in orders(app_database)] == ["a1", "a2", "a3"]


@pytest.fixture
def valid(sqlite_ledger: str, tmp_path: Path) -> dict[str, str]:
    return {
        "MAILUP_JOBS_DATABASE_URL": sqlite_ledger,
        "MAILUP_JOBS_DATA_DIR": str(tmp_path),
        "MAILUP_JOBS_SECRET_KEY": Fernet.generate_key().decode(),
        "MAILUP_USERNAME": "m123",
        "MAILUP_PASSWORD": "secret",
        "MAILUP_ACCOUNT_ID": "1",
    }


def check(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return manage(f"sqlite:///{tmp_path / 'shop.db'}", settings, "check")


def test_manage_py_check_names_a_missing_or_malformed_setting(
    tmp_path: Path, valid: dict[str, str]
) -> None:
    fine = check(tmp_path, valid)
    assert (fine.returncode, fine.stderr) == (0, "")
    assert "no issues" in fine.stdout

    missing = check(tmp_path, {k: v for k, v in valid.items() if k != "MAILUP_PASSWORD"})
    assert missing.returncode == 1
    assert 'MAILUP_JOBS["PASSWORD"] is not set' in missing.stderr

    malformed = check(tmp_path, {**valid, "MAILUP_JOBS_READ_TIMEOUT": "soon"})
    assert malformed.returncode == 1
    assert 'invalid setting MAILUP_JOBS["READ_TIMEOUT"]' in malformed.stderr

    nothing = check(tmp_path, {"MAILUP_JOBS_DATA_DIR": str(tmp_path)})
    assert nothing.returncode == 1
    assert 'no MailUp credentials: set MAILUP_JOBS["ACCOUNT_ID"]' in nothing.stderr

    typo = check(tmp_path, {**valid, "MAILUP_JOBS_BROKER_ULR": "redis://127.0.0.1"})
    assert typo.returncode == 1
    assert 'unknown setting MAILUP_JOBS["BROKER_ULR"]' in typo.stderr


def test_a_ledger_to_migrate_is_a_warning_and_manage_py_mailup_jobs_migrates_it(
    tmp_path: Path, valid: dict[str, str]
) -> None:
    fresh = {**valid, "MAILUP_JOBS_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    before = check(tmp_path, fresh)
    assert before.returncode == 0
    assert "has no tables yet: run `manage.py mailup_jobs migrate`" in before.stderr

    migrated = manage(f"sqlite:///{tmp_path / 'shop.db'}", fresh, "mailup_jobs", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    after = check(tmp_path, fresh)
    assert (after.returncode, after.stderr) == (0, "")
