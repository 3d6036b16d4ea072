"""The whole system as an operator runs it: real worker and beat processes, the CLI, the
sandbox over HTTP — on the embedded stack (SQLite, filesystem broker) and on Redis +
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.server import Sandbox
from sandbox.state import list_guid
from tests.conftest import Env, Process, wait_for


@pytest.fixture(params=["embedded", "redis+postgresql"])
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, stack: str) -> str:
    return str(
        request.getfixturevalue("sqlite_ledger" if stack == "embedded" else "postgres_ledger")
    )


@pytest.fixture
def broker(request: pytest.FixtureRequest, stack: str, env: Env) -> str:
    if stack == "embedded":
        return "filesystem://"
    url = str(request.getfixturevalue("redis_broker"))
    env.set(MAILUP_JOBS_BROKER_URL=url)
    return url


def cli(env: Env, *args: str) -> str:
    """Run `mailup-jobs ARGS` as a user would; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        env={**os.environ, **env.values},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def show(env: Env, job_id: str) -> dict[str, Any]:
    return dict(json.loads(cli(env, "jobs", "show", job_id, "--json")))


def test_sms_end_to_end_from_the_cli(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    spawn("worker", "-c", "2")
    create = cli(
        env, "enqueue", "list-secret", "create", "--list-id", "1", "--list-guid", list_guid(1)
    ).strip()
    wait_for(lambda: show(env, create)["status"] == "succeeded", 60, "ListSecret created")

    job_id = cli(
        env,
        "enqueue",
        "sms",
        "--list-id",
        "1",
        "--to",
        "+393350000001",
        "--content",
        "Hi [Name]",
        "--field",
        "Name=Ada",
        "--campaign-code",
        "e2e",
    ).strip()

    job = wait_for(lambda: (j := show(env, job_id))["status"] == "succeeded" and j, 60, "SMS sent")
    [delivery] = sandbox.deliveries()
    assert job["kind"] == "send_sms"
    assert job["outcome"]["delivery_id"] == delivery["delivery_id"]
    assert job["outcome"]["cost"] == delivery["cost"]
    assert delivery["content"] == "Hi Ada"
    assert [a["outcome"] for a in job["attempts"]] == ["succeeded"]


def test_bad_input_on_the_cli_names_the_option_and_writes_nothing(env: Env, broker: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.cli",
            "enqueue",
            "sms",
            "--list-id",
            "1",
            "--to",
            "3350000001",
            "--content",
            "hi",
        ],
        env={**os.environ, **env.values},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--to" in result.stderr and "international prefix" in result.stderr
    assert cli(env, "jobs", "list") == ""
