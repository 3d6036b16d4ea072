"""A 100,000-row import as an operator runs it: the CLI, a real worker and beat on Redis +
PostgreSQL, MailUp (the sandbox) completing imports asynchronously, an operator reading all
along — every good row imported once, every bad one reported, MailUp's 5/s never exceeded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from producers.imports import show
from sandbox.server import client_settings
from tests.conftest import Env, Process, wait_for
from tests.test_fresh_host import free_port
from tests.test_imports import write_csv

pytestmark = pytest.mark.slow


@pytest.fixture
def ledger_url(postgres_ledger: str) -> str:
    return postgres_ledger


@pytest.fixture
def mailup(env: Env, spawn: Callable[..., Process]) -> Iterator[Callable[..., Any]]:
    """The sandbox in a process of its own, as MailUp is on a host of its own: its timing
    is not this test process's. Yields a caller of its control routes."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env.set(**client_settings(url))
    spawn("sandbox", "--port", str(port))
    wait_for(lambda: _answers(url + "/_sandbox/stats"), 30, "the sandbox answers")

    def control(method: str, route: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{url}/_sandbox/{route}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    yield control


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def test_a_100000_row_import_with_worker_and_beat_sends_every_good_row_once(
    mailup: Callable[..., Any],
    env: Env,
    redis_broker: str,
    tmp_path: Path,
    spawn: Callable[..., Process],
) -> None:
    from producers.lists import read_lists

    # Given a 100,000-row file with a bad row every 1,000, into a group of list 1, a worker
    # and beat on Redis + PostgreSQL, and an operator reading lists all along
    env.set(
        MAILUP_JOBS_BROKER_URL=redis_broker,
        MAILUP_JOBS_IMPORT_POLL=2,
        MAILUP_JOBS_LOG_LEVEL="WARNING",
    )
    mailup("POST", "imports", json={"delay": 0.5})
    [group] = [g for g in mailup("GET", "state/lists/1/groups")["groups"] if g["name"] == "TEST"]
    rows = [
        {"Email": f"user{n}@example.com" if n % 1000 else f"user{n}", "Name": f"U{n}"}
        for n in range(100_000)
    ]
    source = write_csv(tmp_path / "big.csv", rows)
    spawn("worker", "-c", "4")
    spawn("beat")
    stop = threading.Event()
    reads: list[Exception] = []

    def operator() -> None:
        while not stop.is_set():
            try:
                read_lists()
            except Exception as exc:  # a 429 would surface here
                reads.append(exc)

    reader = threading.Thread(target=operator)
    reader.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "producers.cli", "import", str(source), "--list-id", "1",
             "--group-id", str(group["id"])],
            env={**os.environ, **env.values},
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        import_id = result.stdout.strip()

        # When MailUp has completed every chunk, as beat's polls record
        def completed() -> bool:
            shown = show(import_id)
            return shown is not None and shown["chunks_completed"] == 100

        wait_for(completed, 240, "every chunk completed on MailUp")
    finally:
        stop.set()
        reader.join()

    # Then each good row reached MailUp once, into list 1 and the group; each bad row was
    # reported with its line; the chunks' counters add up; MailUp never said 429
    shown = show(import_id)
    assert shown is not None
    assert shown["rows_read"] == 100_000 and shown["rows_rejected"] == 100
    assert result.stderr.count(": email: ") == 100 and "line 2: email:" in result.stderr
    assert shown["totals"]["imported"] == shown["totals"]["valid"] == 99_900
    journal = mailup("GET", "journal")["entries"]
    limited = [(e["time"], e["operation"]) for e in journal if e["fault"] == "limit"]
    assert limited == [] and reads == []
    imported = [e for e in journal if e["operation"] == "group_recipients_import"]
    assert sum(e["items"] for e in imported) == 99_900 and len(imported) == 100
    members = mailup("GET", f"state/groups/{group['id']}/members")["members"]
    assert len({m["email"] for m in members}) == 99_900
    assert "user1@example.com" in {m["email"] for m in members}
    subscribed = mailup("GET", "state/lists/1/recipients", params={"status": "subscribed"})
    assert len(subscribed["recipients"]) == 99_900
