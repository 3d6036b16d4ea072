"""Fail fast, in one line: processes check at start what job kinds need, `mailup-jobs check`
says the same plus connectivity, and every CLI command answers what an operator can fix
(a setting, the ledger or broker down, a ledger not migrated) in one line, exit 1."""

from __future__ import annotations

import subprocess
import uuid

import pytest
import sqlalchemy

from tests.conftest import Env
from tests.helpers import mailup_jobs


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command, after checking it is nothing more."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_a_shared_ledger_without_a_secret_key_refuses_to_start(env: Env, process: str) -> None:
    env.set(MAILUP_JOBS_SECRET_KEY="")

    line = one_line_error(mailup_jobs(env, process))

    assert f"mailup-jobs {process}: cannot start: secret key:" in line
    assert "MAILUP_JOBS_SECRET_KEY" in line and "mailup-jobs generate-key" in line


def test_an_unmigrated_ledger_refuses_to_start_naming_the_command(
    env: Env, postgres_server: str
) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_server)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        env.set(MAILUP_JOBS_DATABASE_URL=f"{postgres_server}?options=-csearch_path%3D{schema}")
        line = one_line_error(mailup_jobs(env, "worker"))
        assert "has no tables yet: run `mailup-jobs migrate`" in line

        assert mailup_jobs(env, "migrate").returncode == 0
        assert "ledger: " in mailup_jobs(env, "check").stdout
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MAILUP_CLIENT_SECRET": ""}, "MAILUP_CLIENT_SECRET is not set"),  # half a pair
        ({"MAILUP_PASSWORD": ""}, "MAILUP_PASSWORD is not set"),
        ({"MAILUP_SMS_URL": "sendsms.mailup.com/api"}, "MAILUP_SMS_URL"),
        ({"MAILUP_JOBS_MAX_ATTEMPTS": "many"}, "MAILUP_JOBS_MAX_ATTEMPTS"),
        ({"MAILUP_JOBS_DELIVERY": '{"send_smss": "at_least_once"}'}, "send_smss"),
    ],
)
def test_a_missing_or_malformed_setting_refuses_to_start_naming_it(
    env: Env, change: dict[str, str], named: str
) -> None:
    env.set(**change)

    line = one_line_error(mailup_jobs(env, "worker"))

    assert named in line
    assert named in mailup_jobs(env, "check").stdout


def test_no_credentials_at_all_is_refused(env: Env) -> None:
    for field in ("username", "password", "account_id", "client_id", "client_secret"):
        env.values.pop(f"MAILUP_{field.upper()}")
        env.monkeypatch.delenv(f"MAILUP_{field.upper()}")
    for field in ("smtp_user", "smtp_secret"):
        env.values.pop(f"MAILUP_{field.upper()}")
        env.monkeypatch.delenv(f"MAILUP_{field.upper()}")

    line = one_line_error(mailup_jobs(env, "beat"))

    assert "no MailUp credentials" in line and "MAILUP_ACCOUNT_ID" in line


def test_check_prints_one_line_per_check_and_passes_when_all_do(
    env: Env, redis_broker: str
) -> None:
    env.set(MAILUP_JOBS_BROKER_URL=redis_broker)

    result = mailup_jobs(env, "check")

    assert result.returncode == 0, result.stdout
    lines = result.stdout.strip().splitlines()
    names = [line.split(":")[0].split(maxsplit=1)[1] for line in lines]
    assert names == [
        "settings",
        "secret key",
        "ledger",
        "account default",
        "credentials",
        "broker",
        "MAILUP_SMS_URL",
        "MAILUP_SEND_URL",
        "MAILUP_CONSOLE_URL",
        "MAILUP_TOKEN_URL",
    ]
    assert all(line.startswith("ok") for line in lines)


def test_check_fails_on_an_unreachable_broker_and_mailup(env: Env) -> None:
    env.set(
        MAILUP_JOBS_BROKER_URL="redis://:hunter2@127.0.0.1:1/0",
        MAILUP_SEND_URL="http://127.0.0.1:1/send/API/v2.0",
    )

    result = mailup_jobs(env, "check")

    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == ["FAIL  broker", "FAIL  MAILUP_SEND_URL"]
    assert "hunter2" not in result.stdout


def test_cli_commands_answer_an_unreachable_ledger_in_one_line(env: Env) -> None:
    env.set(MAILUP_JOBS_DATABASE_URL="postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test")

    for args in (["jobs", "list"], ["jobs", "show", "x"], ["accounts", "status"]):
        line = one_line_error(mailup_jobs(env, *args))
        assert line.startswith("mailup-jobs: the ledger at postgresql+psycopg://postgres:***@")
        assert "unreachable" in line and "hunter2" not in line

    sms = ["enqueue", "sms", "--list-id", "1", "--to", "+393350000001", "--content", "hi"]
    assert "unreachable" in one_line_error(mailup_jobs(env, *sms))


def test_cli_commands_answer_an_unmigrated_ledger_naming_the_command(
    env: Env, tmp_path: object
) -> None:
    env.set(MAILUP_JOBS_DATABASE_URL=f"sqlite:///{env.data_dir / 'empty.db'}")

    line = one_line_error(mailup_jobs(env, "jobs", "stats"))

    assert "run `mailup-jobs migrate`" in line


def test_cli_commands_answer_a_malformed_setting_naming_it(env: Env) -> None:
    env.set(MAILUP_JOBS_READ_TIMEOUT="soon")

    line = one_line_error(mailup_jobs(env, "jobs", "list"))

    assert "MAILUP_JOBS_READ_TIMEOUT" in line


def test_a_job_is_accepted_with_the_broker_down_and_the_cli_says_so(env: Env) -> None:
    env.set(MAILUP_JOBS_BROKER_URL="redis://127.0.0.1:1/0")
    sms = ["enqueue", "sms", "--list-id", "1", "--to", "+393350000001", "--content", "hi"]

    result = mailup_jobs(env, *sms)

    # The job is in the ledger, so the command succeeds (a script must not submit it
    # again); the broker being down is said in one line, and the sweeper publishes it.
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert len(job_id) == 36
    assert "Traceback" not in result.stderr
    [warning] = result.stderr.strip().splitlines()
    assert "redis://127.0.0.1:1/0" in warning and "the sweeper" in warning
    assert job_id in mailup_jobs(env, "jobs", "list").stdout
