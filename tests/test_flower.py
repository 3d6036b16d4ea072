"""`mailup-jobs flower` as an operator runs it: behind a login, on a fresh host, beside a real
worker on Redis — looked at in headless Chromium."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.test_fresh_host import free_port
from tests.test_system import cli, show

RUN_JOB = "mailup_jobs.run_job"
SECRET_SETTINGS = ("MAILUP_PASSWORD", "MAILUP_CLIENT_SECRET", "MAILUP_SMTP_SECRET")


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    """Flower goes with the many-hosts stack: Redis and PostgreSQL."""
    return postgres_ledger


def _answering(url: str) -> bool:
    try:
        requests.get(url, timeout=2, allow_redirects=False)
    except requests.ConnectionError:
        return False
    return True


def start_flower(spawn: Callable[..., Process], env: Env) -> str:
    """Flower on a free port of 127.0.0.1; its URL once it answers."""
    port = free_port()
    flower = spawn("flower", f"--port={port}", "--address=127.0.0.1").popen
    assert flower is not None
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answering(url) or flower.poll() is not None, 30, "Flower answers")
    assert flower.poll() is None, (env.data_dir / "flower.log").read_text()
    return url


def status_in_chromium(context: Any, url: str) -> int:
    """The HTTP status Chromium got for ``url``. Refused a login it cannot ask a person for,
    headless Chromium ends the navigation with an error: the response is what counts."""
    from playwright.sync_api import Error

    page = context.new_page()
    with page.expect_response(url) as answer, contextlib.suppress(Error):
        page.goto(url)
    page.close()
    return int(answer.value.status)


def test_flower_lists_the_worker_and_shows_only_job_ids(
    env: Env,
    redis_broker: str,
    sandbox: Sandbox,
    list_secret: str,
    spawn: Callable[..., Process],
    browser: Any,
    tmp_path: Path,
) -> None:
    # Given a fresh host (empty HOME, no data dir) with a worker and Flower on Redis
    home, data_dir = tmp_path / "home", tmp_path / "no-data-dir"
    home.mkdir()
    password = secrets.token_urlsafe(12)
    env.set(
        HOME=home,
        MAILUP_JOBS_DATA_DIR=data_dir,
        MAILUP_JOBS_BROKER_URL=redis_broker,
        MAILUP_JOBS_FLOWER_AUTH=f"ops:{password}",
    )
    worker_name = f"flower-{uuid.uuid4().hex[:8]}@test-host"
    spawn("worker", "-c", "1", "-n", worker_name)
    url = start_flower(spawn, env)
    login = ("ops", password)

    # When a job runs through the worker against the sandbox
    number, content = "+393350000042", f"Your code is {secrets.randbelow(10**6):06}"
    job_id = cli(
        env, "enqueue", "sms", "--list-id", "1", "--to", number, "--content", content
    ).strip()
    wait_for(lambda: show(env, job_id)["status"] == "succeeded", 60, "SMS sent")

    def job_task() -> dict[str, Any] | None:
        answer = requests.get(
            f"{url}/api/tasks", params={"taskname": RUN_JOB}, auth=login, timeout=5
        )
        for task_id, seen in answer.json().items():
            if job_id in seen["args"] and seen["state"] == "SUCCESS":
                return {"uuid": task_id, **seen}
        return None

    task = wait_for(job_task, 30, "Flower saw the job's task succeed")

    # Then the task's only argument is the job id: no number, no content, no secret
    assert ast.literal_eval(task["args"]) in ([job_id], (job_id,))
    assert ast.literal_eval(task["kwargs"]) == {}
    assert task["worker"] == worker_name
    workers = requests.get(f"{url}/api/workers", params={"refresh": 1}, auth=login, timeout=10).text
    seen_by_flower = json.dumps(task) + workers
    secret_values = [list_secret, env.values["MAILUP_JOBS_SECRET_KEY"], password]
    secret_values += [env.values[name] for name in SECRET_SETTINGS]
    for value in [number, content, *secret_values]:
        assert value not in seen_by_flower

    # And with credentials the pages load in Chromium and list the worker
    context = browser.new_context(http_credentials={"username": "ops", "password": password})
    page = context.new_page()
    response = page.goto(f"{url}/workers")
    assert response is not None and response.status == 200
    page.locator("#workers-table").get_by_text(worker_name, exact=True).wait_for(timeout=15_000)
    shot = tmp_path / "flower-workers.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    response = page.goto(f"{url}/task/{task['uuid']}")
    assert response is not None and response.status == 200
    shown_args = page.locator("dt:text-is('Arguments') + dd").inner_text().strip()
    assert ast.literal_eval(shown_args) in ([job_id], (job_id,))
    page_text = page.inner_text("body")
    assert number not in page_text and content not in page_text
    shot = tmp_path / "flower-task.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    context.close()

    # Without credentials, or with a wrong password: 401, for the pages and the API
    anonymous = browser.new_context()
    for path in ("/", "/workers", f"/task/{task['uuid']}", "/api/tasks"):
        assert status_in_chromium(anonymous, url + path) == 401, path
    anonymous.close()
    wrong = browser.new_context(http_credentials={"username": "ops", "password": "wrong"})
    assert status_in_chromium(wrong, f"{url}/workers") == 401
    wrong.close()

    # Nothing was kept on the host
    assert not data_dir.exists()
    assert list(home.iterdir()) == []


def test_flower_starts_with_flowers_oauth_settings_and_sends_visitors_to_log_in(
    env: Env, redis_broker: str, spawn: Callable[..., Process]
) -> None:
    env.set(
        MAILUP_JOBS_BROKER_URL=redis_broker,
        FLOWER_AUTH_PROVIDER="flower.views.auth.GoogleAuth2LoginHandler",
        FLOWER_AUTH=".*@example.com",
        FLOWER_OAUTH2_KEY="flower-client",
        FLOWER_OAUTH2_SECRET=secrets.token_urlsafe(12),
        FLOWER_OAUTH2_REDIRECT_URI="http://127.0.0.1/login",
    )
    url = start_flower(spawn, env)

    answer = requests.get(f"{url}/workers", allow_redirects=False, timeout=5)

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")


OAUTH = {
    "FLOWER_AUTH_PROVIDER": "flower.views.auth.GoogleAuth2LoginHandler",
    "FLOWER_AUTH": ".*@example.com",
    "FLOWER_OAUTH2_KEY": "flower-client",
    "FLOWER_OAUTH2_SECRET": "oauth-secret-1",
    "FLOWER_OAUTH2_REDIRECT_URI": "http://127.0.0.1/login",
}


def _flower_refusal(tmp_path: Path, args: list[str], settings: dict[str, str]) -> str:
    """Run `mailup-jobs flower ARGS` with only ``settings``; assert it refuses in one line."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("MAILUP_", "FLOWER_", "TEST_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "producers.cli", "flower", *args],
        env={**inherited, "HOME": str(tmp_path), **settings},
        capture_output=True,
        text=True,
        timeout=30,  # a Flower that started instead would run on: this fails the test
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("args", "settings", "named"),
    [
        ([], {}, "MAILUP_JOBS_FLOWER_AUTH"),
        ([], {"MAILUP_JOBS_FLOWER_AUTH": ""}, "MAILUP_JOBS_FLOWER_AUTH"),
        # Flower's OAuth half given
        ([], {"FLOWER_AUTH_PROVIDER": "x", "FLOWER_AUTH": ".*@example.com"}, "FLOWER_OAUTH2_KEY"),
        (["--auth=.*@example.com"], {"FLOWER_AUTH_PROVIDER": "x"}, "FLOWER_OAUTH2_KEY"),
        # Flower's OAuth given, one of its settings empty
        (["--auth="], {**OAUTH, "FLOWER_AUTH": ""}, "--auth: empty"),
        (["--oauth2-key= "], OAUTH, "--oauth2-key: empty"),
        ([], {**OAUTH, "FLOWER_OAUTH2_KEY": "  "}, "FLOWER_OAUTH2_KEY: not set"),
    ],
)
def test_flower_refuses_to_start_without_a_login(
    tmp_path: Path, args: list[str], settings: dict[str, str], named: str
) -> None:
    error = _flower_refusal(tmp_path, args, settings)

    assert error.startswith("mailup-jobs flower: cannot start: ")
    assert named in error
    assert OAUTH["FLOWER_OAUTH2_SECRET"] not in error


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--basic-auth=ops:{secret}"], "MAILUP_JOBS_FLOWER_AUTH"),
        (["--port=5555", "--basic_auth=ops:{secret}"], "MAILUP_JOBS_FLOWER_AUTH"),
        (["--oauth2_secret={secret}"], "FLOWER_OAUTH2_SECRET"),
        (["--cookie-secret={secret}"], "FLOWER_COOKIE_SECRET"),
    ],
)
def test_flower_refuses_a_secret_on_its_command_line(
    tmp_path: Path, args: list[str], named: str
) -> None:
    secret = secrets.token_urlsafe(12)
    given = [arg.format(secret=secret) for arg in args]

    error = _flower_refusal(tmp_path, given, {"MAILUP_JOBS_FLOWER_AUTH": "ops:right"})

    option = given[-1].partition("=")[0]
    assert error.startswith(f"mailup-jobs flower: cannot start: {option}: ")
    assert named in error
    assert secret not in error


@pytest.mark.parametrize(
    "login", ["ops-without-password", ":", "ops:", ":hunter2", " : ", "ops:hunter2,"]
)
def test_a_malformed_flower_login_is_named_and_not_repeated(tmp_path: Path, login: str) -> None:
    error = _flower_refusal(tmp_path, [], {"MAILUP_JOBS_FLOWER_AUTH": login})

    assert "MAILUP_JOBS_FLOWER_AUTH" in error and "user:password" in error
    assert "ops-without-password" not in error and "hunter2" not in error


def listening_address(home: Path, port: int, *args: str, **settings: str) -> str:
    """The address `mailup-jobs ARGS` (a server on ``port``) listens on, with ``settings`` as
    its only MAILUP_* and FLOWER_* variables; stopped once it listens."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MAILUP_", "FLOWER_"))}
    with subprocess.Popen(
        [sys.executable, "-m", "producers.cli", *args],
        env={**inherited, "HOME": str(home), **settings},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        sockets = psutil.Process(server.pid)
        try:
            [address] = wait_for(
                lambda: [
                    found.laddr.ip
                    for found in sockets.net_connections("inet")
                    if found.status == psutil.CONN_LISTEN and found.laddr.port == port
                ],
                30,
                f"{shlex.join(args)} listens",
            )
        finally:
            server.terminate()
    return str(address)


@pytest.mark.parametrize(
    ("host", "address"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")]
)
def test_flower_listens_on_this_host_only_unless_told(
    tmp_path: Path, host: list[str], address: str
) -> None:
    port = free_port()
    login = {"MAILUP_JOBS_FLOWER_AUTH": "ops:right"}

    assert listening_address(tmp_path, port, "flower", *host, f"--port={port}", **login) == address
