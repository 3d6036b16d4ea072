"""What an operator can fix is refused in one line naming it, never a traceback: a malformed
URL or JSON setting (CLI, worker, beat, Flask, `manage.py check`), a shared ledger without a
shared broker or secret key. (Flower's login: test_flower.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from producers import send_sms, send_sms_many
from producers.flask import MailUpJobs
from tests.conftest import Env
from tests.helpers import job_count
from tests.test_django import check, valid
from worker.errors import ConfigurationError
from worker.settings import get_settings, settings_from, use_settings

__all__ = ["valid"]  # test_django's settings for manage.py, as a fixture here

# A shared ledger the refusals come before: nothing needs to answer there.
SHARED_LEDGER = "postgresql+psycopg://app@127.0.0.1:1/ledger"
ENTRY_POINTS = [
    ["jobs", "list"],
    ["worker"],
    ["beat"],
    ["celery", "-A", "worker.app", "worker"],
    ["celery", "-A", "worker.app", "beat"],
]


def refused(home: Path, settings: dict[str, str], *args: str) -> str:
    """`mailup-jobs ARGS` (or `celery ARGS`) with ``settings`` as its only MAILUP_* and
    FLOWER_* variables: the one line it refused with, after checking that is all it said, and
    that it failed."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MAILUP_", "FLOWER_"))}
    program = ["celery"] if args[0] == "celery" else ["producers.cli", args[0]]
    result = subprocess.run(
        [sys.executable, "-m", *program, *args[1:]],
        env={**inherited, "HOME": str(home), **settings},
        capture_output=True,
        text=True,
        timeout=60,  # a process that started instead would run on: this fails the test
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("args", ENTRY_POINTS, ids=" ".join)
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAILUP_JOBS_DATABASE_URL", "postgres://::bad"),
        ("MAILUP_JOBS_DATABASE_URL", "not a url"),
        ("MAILUP_JOBS_DATABASE_URL", "postgres://app:hunter2@db/ledger"),  # no such dialect
        ("MAILUP_JOBS_DATABASE_URL", "postgresql+psycopg://app:hunter2@db:port/ledger"),
        ("MAILUP_JOBS_BROKER_URL", "redis://:hunter2@redis:port/0"),
        ("MAILUP_JOBS_BROKER_URL", "not a url"),
        ("MAILUP_SMS_URL", "sendsms.mailup.com/api/v2.0"),
        ("MAILUP_SEND_URL", "ftp://send.mailup.com/API/v2.0"),
        ("MAILUP_CONSOLE_URL", "not a url"),
        ("MAILUP_TOKEN_URL", "https://"),
        ("MAILUP_JOBS_DELIVERY", '{"send_sms": at_least_once}'),
        ("MAILUP_JOBS_ACCOUNTS", '{"eu": {"password": "hunter2"'),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(
    tmp_path: Path, args: list[str], variable: str, value: str
) -> None:
    line = refused(tmp_path, {variable: value}, *args)

    assert f"invalid setting {variable}: " in line
    assert "hunter2" not in line


@pytest.mark.parametrize("process", ["worker", "beat"])
@pytest.mark.parametrize("broker", [None, "", "filesystem://"])
def test_a_shared_ledger_without_a_shared_broker_refuses_to_start(
    tmp_path: Path, process: str, broker: str | None
) -> None:
    settings = {"MAILUP_JOBS_DATABASE_URL": SHARED_LEDGER}
    if broker is not None:
        settings["MAILUP_JOBS_BROKER_URL"] = broker

    line = refused(tmp_path, settings, process)

    assert line.startswith(f"mailup-jobs {process}: cannot start: settings: ")
    assert "MAILUP_JOBS_BROKER_URL must name a broker every host reaches" in line


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


def test_a_shared_ledger_without_a_shared_broker_refuses_the_first_enqueue(env: Env) -> None:
    env.set(MAILUP_JOBS_BROKER_URL="filesystem://")
    sms = ["enqueue", "sms", "--list-id", "1", "--to", "+393350000001", "--content", "hi"]

    line = refused(env.data_dir, env.values, *sms)

    assert line.startswith("mailup-jobs: configuration error: MAILUP_JOBS_BROKER_URL must ")
    with pytest.raises(ConfigurationError, match=r"^MAILUP_JOBS_BROKER_URL must name a broker"):
        send_sms(list_id=1, recipient="+393350000001", content="hi")
    assert job_count() == 0  # refused before it was written: nothing for the sweeper to send


def test_a_bulk_submission_to_no_shared_broker_is_refused_before_it_is_written(
    env: Env,
) -> None:
    env.set(MAILUP_JOBS_BROKER_URL="filesystem://")
    items = [{"list_id": 1, "recipient": f"+39335000000{n}", "content": "hi"} for n in range(3)]

    with pytest.raises(ConfigurationError, match="MAILUP_JOBS_BROKER_URL"):
        send_sms_many(items)

    assert job_count() == 0


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MAILUP_* variable but the data dir: what the tests give is all there is."""
    for name in list(os.environ):
        if name.startswith("MAILUP_") and name != "MAILUP_JOBS_DATA_DIR":
            monkeypatch.delenv(name)
    yield
    use_settings(None)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"MAILUP_JOBS_DATABASE_URL": "postgres://::bad"}, "MAILUP_JOBS_DATABASE_URL"),
        ({"MAILUP_JOBS_DATABASE_URL": SHARED_LEDGER}, "MAILUP_JOBS_BROKER_URL"),
        (
            {"MAILUP_JOBS_DATABASE_URL": SHARED_LEDGER, "MAILUP_JOBS_BROKER_URL": "redis://r/0"},
            "MAILUP_JOBS_SECRET_KEY",
        ),
    ],
)
def test_flask_refuses_at_init_app_what_every_request_would_fail_on(
    no_environment: None, config: dict[str, str], named: str
) -> None:
    app = Flask("shop")
    app.config.update(config)

    with pytest.raises(ConfigurationError) as refusal:
        MailUpJobs(app)

    assert named in str(refusal.value)
    assert len(str(refusal.value).splitlines()) == 1


def test_flask_starts_with_what_a_shared_ledger_needs(no_environment: None) -> None:
    app = Flask("shop")
    app.config.update(
        MAILUP_JOBS_DATABASE_URL=SHARED_LEDGER,
        MAILUP_JOBS_BROKER_URL="redis://redis:6379/0",
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
        MAILUP_JOBS_DELIVERY='{"send_sms": "at_least_once"}',  # as the environment gives it
    )

    MailUpJobs(app)

    assert get_settings().delivery == {"send_sms": "at_least_once"}


# DELIVERY and ACCOUNTS as the environment gives them (JSON text), or as the dicts themselves.
AS_GIVEN = pytest.mark.parametrize("as_given", [json.dumps, lambda d: d], ids=["json", "dict"])


@AS_GIVEN
def test_an_applications_config_takes_json_text_or_the_dict_itself(
    no_environment: None, as_given: Callable[[dict[str, Any]], Any]
) -> None:
    settings = settings_from(
        {
            "MAILUP_JOBS_DELIVERY": as_given({"send_sms": "at_least_once"}),
            "MAILUP_JOBS_ACCOUNTS": as_given({"eu": {"username": "m2", "sms_per_hour": 60}}),
        }
    )

    assert settings.delivery == {"send_sms": "at_least_once"}
    assert settings.account("eu").sms_per_hour == 60


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MAILUP_JOBS_DATABASE_URL": "not a url"}, 'MAILUP_JOBS["DATABASE_URL"]'),
        ({"MAILUP_JOBS_DATABASE_URL": SHARED_LEDGER}, 'MAILUP_JOBS["BROKER_URL"]'),
        ({"MAILUP_JOBS_BROKER_URL": "redis://::bad"}, 'MAILUP_JOBS["BROKER_URL"]'),
        ({"MAILUP_SMS_URL": "sendsms.mailup.com"}, 'MAILUP_JOBS["SMS_URL"]'),
    ],
)
def test_manage_py_check_names_a_malformed_setting_in_one_line(
    tmp_path: Path, valid: dict[str, str], change: dict[str, str], named: str
) -> None:
    result = check(tmp_path, {**valid, **change})

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if "(mailup_jobs." in line]
    assert named in error


@AS_GIVEN
def test_django_takes_delivery_and_accounts_as_the_environment_does(
    tmp_path: Path, valid: dict[str, str], as_given: Callable[[dict[str, Any]], Any]
) -> None:
    eu = {"username": "m2", "password": "p", "account_id": 2}
    given = {
        "MAILUP_JOBS_DELIVERY": as_given({"send_sms": "at_least_once"}),
        "MAILUP_JOBS_ACCOUNTS": as_given({"eu": eu}),
    }

    result = check(tmp_path, {**valid, **given})

    assert (result.returncode, result.stderr) == (0, "")
