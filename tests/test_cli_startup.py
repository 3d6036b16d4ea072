"""`mailup-jobs --help` and `mailup-jobs jobs show ID` import only what they need, so that
they start fast. (Their time is measured by hand: this host is too noisy to assert on it.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.jobs.registry import KINDS

# What reading a job never needs: the broker, the sandbox, the audits, retention, pauses.
NOT_FOR_SHOW = (
    "alembic",
    "celery",
    "flower",
    "kombu",
    "sandbox",
    "worker.app",
    "worker.audits",
    "worker.engine.pauses",
    "worker.publish",
    "worker.retention",
)
KIND_MODULES = {kind.execute.__module__ for kind in KINDS.values()}


def mailup_jobs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producers.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


# `mailup-jobs ARGS` as the entry point runs it, then the names of the modules it imported
# written to a file. (Not ``-X importtime``: it misses what importlib.import_module loads.)
RUN_AND_LIST = """
import sys

listing = sys.argv.pop(1)
try:
    from producers.cli import main

    main()
finally:
    with open(listing, "w") as out:
        out.write("\\n".join(sys.modules))
"""


def imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`mailup-jobs ARGS` run, and the modules it imported."""
    listing = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, str(listing), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, set(listing.read_text().split())


def within(modules: set[str], *packages: str) -> set[str]:
    """The modules that are one of ``packages`` or inside one."""
    return {m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)}


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated SQLite ledger and a filesystem broker in a data dir of their own."""
    for name in list(os.environ):
        if name.startswith("MAILUP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILUP_JOBS_DATA_DIR", str(tmp_path))
    migrated = mailup_jobs("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return tmp_path


def test_help_imports_nothing_of_the_system(tmp_path: Path) -> None:
    result, modules = imported(tmp_path, "--help")

    assert result.returncode == 0, result.stderr
    assert "jobs" in result.stdout
    system = ("worker", "sandbox", "sqlalchemy", "pydantic", "celery", "redis", "requests")
    assert within(modules, *system) == set()


def test_showing_a_job_imports_its_kind_alone(ledger: Path) -> None:
    queued = mailup_jobs(
        "enqueue", "sms", "--list-id", "1", "--to", "+393331234567", "--content", "hi"
    )
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip()

    result, modules = imported(ledger, "jobs", "show", job_id)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{job_id}  send_sms  queued  account=default\n"
    assert within(modules, *NOT_FOR_SHOW) == set()
    # worker.jobs.sms imports worker.jobs.list_secret, itself a kind's module.
    assert modules & KIND_MODULES == {"worker.jobs.sms", "worker.jobs.list_secret"}


def test_showing_no_job_imports_no_kind_and_no_mailup_client(ledger: Path) -> None:
    result, modules = imported(ledger, "jobs", "show", "nope")

    assert (result.returncode, result.stdout, result.stderr) == (1, "", "no job nope\n")
    assert within(modules, *NOT_FOR_SHOW, "requests", "redis") == set()
    assert modules & KIND_MODULES == set()


def test_the_registry_finds_every_kind_under_its_name() -> None:
    assert [kind.name for kind in KINDS.values()] == list(KINDS)


def test_the_worker_still_loads_every_kind_as_it_starts() -> None:
    listed = subprocess.run(
        [sys.executable, "-c", "import sys, worker.tasks; print(*sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert set(listed.stdout.split()) >= KIND_MODULES
