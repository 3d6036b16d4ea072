"""Fixtures: real Redis, PostgreSQL and SQLite ledgers, the sandbox over HTTP, real workers.

A service that is not answering skips its tests on a laptop and fails them in CI (CI=true).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy
from cryptography.fernet import Fernet

from sandbox.server import Sandbox
from sandbox.state import list_guid
from worker.ledger import store
from worker.ledger.db import dispose_all
from worker.ledger.migrate import upgrade
from worker.settings import get_settings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session", autouse=True)
def fresh_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty HOME and data dir for the whole run: nothing a developer's machine holds
    (a data dir made by an earlier demo, say) can hide a missing directory."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("MAILUP_JOBS_DATA_DIR", str(home / "data"))
        get_settings.cache_clear()
        yield home
    get_settings.cache_clear()


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not answering ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
    except sqlalchemy.exc.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    return POSTGRES_URL


@contextmanager
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """An empty schema of its own on the test PostgreSQL (to its users, a database)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, pool_pre_ping=True)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def postgres_ledger(postgres_server: str) -> Iterator[str]:
    """A fresh, migrated ledger of its own on the test PostgreSQL."""
    with postgres_schema(postgres_server) as url:
        upgrade(url)
        yield url
        dispose_all()


@pytest.fixture
def app_database(postgres_server: str) -> Iterator[str]:
    """An application's own PostgreSQL database, not the ledger's."""
    with postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    yield url
    dispose_all()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on both ledgers."""
    return str(request.getfixturevalue(f"{request.param}_ledger"))


@pytest.fixture
def insert_jobs_calls(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Grows by one at each ``store.insert_jobs``: a producer that lost a race for an
    idempotency key writes once more. PostgreSQL only: SQLite writers take turns, so the
    second producer always finds the key."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("SQLite writers take turns: the second one always finds the keys")
    calls: list[int] = []
    real = store.insert_jobs
    monkeypatch.setattr(store, "insert_jobs", lambda *a: calls.append(1) or real(*a))
    return calls


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as server:
        yield server


# Redis databases the tests may take; the benchmarks use others (see bench/).
TEST_DATABASES = range(1, 15)


@pytest.fixture
def redis_broker(redis_server: str) -> Iterator[str]:
    """A Redis database of its own, empty: reserved in database 0, so that test runs side
    by side (other checkouts, other test processes) never share one."""
    claims = redis.Redis.from_url(f"{redis_server}/0")
    owner = f"{os.getpid()}-{uuid.uuid4().hex}"
    database = next(
        (
            n
            for n in TEST_DATABASES
            if claims.set(f"mailup-jobs-tests:db:{n}", owner, nx=True, ex=3600)
        ),
        None,
    )
    if database is None:
        pytest.fail("every test Redis database is taken by another test run")
    url = f"{redis_server}/{database}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    if claims.get(f"mailup-jobs-tests:db:{database}") == owner.encode():
        claims.delete(f"mailup-jobs-tests:db:{database}")


@dataclass
class Env:
    """The settings a test runs with: set in this process and handed to child processes."""

    values: dict[str, str]
    data_dir: Path
    monkeypatch: pytest.MonkeyPatch

    def set(self, **values: Any) -> None:
        for name, value in values.items():
            self.values[name] = str(value)
            self.monkeypatch.setenv(name, str(value))
        get_settings.cache_clear()


@pytest.fixture
def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: Sandbox,
    ledger_url: str,
) -> Iterator[Env]:
    """Settings for a system whose MailUp is the sandbox, on the ledger under test: a shared
    one (PostgreSQL) with a Redis broker, as the filesystem broker is refused there."""
    for name in list(os.environ):
        if name.startswith("MAILUP_"):
            monkeypatch.delenv(name)
    environment = Env({}, tmp_path, monkeypatch)
    environment.set(
        **sandbox.client_settings,
        MAILUP_JOBS_DATA_DIR=tmp_path,
        MAILUP_JOBS_DATABASE_URL=ledger_url,
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
        MAILUP_JOBS_READ_TIMEOUT=5,
        MAILUP_JOBS_BACKOFF_BASE=0.2,
        MAILUP_JOBS_BACKOFF_CAP=1,
    )
    if not ledger_url.startswith("sqlite"):
        environment.set(MAILUP_JOBS_BROKER_URL=request.getfixturevalue("redis_broker"))
    yield environment
    get_settings.cache_clear()


@pytest.fixture
def list_secret(env: Env, sandbox: Sandbox) -> str:
    """List 1 with a ListSecret on the sandbox and its keys in the ledger."""
    from worker.jobs import list_credentials
    from worker.ledger.db import connection

    secret = sandbox.create_list_secret(1)
    settings = get_settings()
    keys = list_credentials.ListKeys(list_guid(1), secret)
    with connection(settings.ledger_url) as db:
        list_credentials.save(db, settings, "default", 1, keys)
    return secret


@dataclass
class Process:
    """A mailup-jobs process (worker, beat) started like an operator would."""

    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self) -> Process:
        self.starts += 1
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "producers.cli", *self.args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so a kill reaches the whole pool
            )
        return self

    def logged(self, text: str) -> bool:
        """Whether its log holds ``text`` (a worker logs "ready." once it takes jobs)."""
        return self.log.exists() and text in self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crashing host would."""
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def spawn(env: Env) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def _spawn(*args: str) -> Process:
        process = Process(list(args), dict(env.values), env.data_dir / f"{args[0]}.log")
        started.append(process.start())
        return process

    yield _spawn
    for process in started:
        process.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    """Poll until ``predicate`` is truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s: {message}")
        time.sleep(0.2)


CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's, not one Playwright downloads) as a Playwright
    ``Browser``: ``browser.new_context(…).new_page()``, then ``page.screenshot(path=…)``."""
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).is_file():
        _unavailable("Chromium", FileNotFoundError(f"{CHROMIUM}: apt-get install chromium"))
    flags = ["--disable-gpu", "--no-first-run", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        except Error as exc:
            _unavailable("Chromium", exc)
        yield launched
        launched.close()
