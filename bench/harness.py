"""What every bench shares: the sandbox as a process, waiting, CPU and memory meters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil
import requests
from cryptography.fernet import Fernet

PORT = 8731
SANDBOX = f"http://127.0.0.1:{PORT}"
LIST_GUID = "00000000-0000-4000-8000-000000000001"  # the sandbox's list 1 of account 1234


def use_sandbox(redis_url: str, **settings: str) -> subprocess.Popen[bytes]:
    """Settings for a system on ``redis_url`` whose MailUp is the sandbox (for this process
    and the workers it starts), and the sandbox started; stop it with ``terminate()``."""
    os.environ.update(
        MAILUP_JOBS_BROKER_URL=redis_url,
        MAILUP_JOBS_SECRET_KEY=Fernet.generate_key().decode(),
        MAILUP_JOBS_LOG_LEVEL="WARNING",
        MAILUP_SMS_URL=f"{SANDBOX}/sms/api/v2.0",
        MAILUP_ACCOUNT_ID="1234",
        MAILUP_USERNAME="m1234",
        MAILUP_PASSWORD="sandbox-password",
        **settings,
    )
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "sandbox", "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
    )
    wait(lambda: get("/_sandbox/journal") is not None, "sandbox")
    return sandbox


def list_secret() -> str:
    """A new ListSecret for the default account's list 1."""
    reply = requests.post(
        f"{SANDBOX}/sms/api/v2.0/lists/1/listsecret",
        auth=("m1234", "sandbox-password"),
        json={"ListGUID": LIST_GUID},
        timeout=5,
    )
    return str(reply.json()["Data"]["ListSecret"])


PARTS = ("worker", "pool", "postgres", "redis", "sandbox")


class CpuMeter:
    """CPU time spent by each part of the system from now on, per job delivered."""

    def __init__(self, worker_pid: int, sandbox_pid: int) -> None:
        self._worker_pid = worker_pid
        self._sandbox_pid = sandbox_pid
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        parts = dict.fromkeys(PARTS, 0.0)
        worker = psutil.Process(self._worker_pid)
        owners = {p.pid: "pool" for p in worker.children(recursive=True)}
        owners[worker.pid] = "worker"
        owners[self._sandbox_pid] = "sandbox"
        for process in psutil.process_iter(["name"]):
            part = owners.get(process.pid) or service(process.info["name"] or "")
            if part is None:
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            parts[part] += times.user + times.system
        return parts

    def per_job(self, jobs: int) -> dict[str, float]:
        end = self._read()
        return {part: (end[part] - self._start[part]) * 1000 / jobs for part in end}


def service(name: str) -> str | None:
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis-server"):
        return "redis"
    return None


class RssWatcher:
    """Samples the worker's process tree every 100 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.per_process = 0
        self._pid = pid
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            try:
                root = psutil.Process(self._pid)
                rss = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:
                rss = []
            if rss:
                self.per_process = max(self.per_process, *rss)
            time.sleep(0.1)

    def stop(self) -> None:
        self._running = False
        self._thread.join()


def get(path: str) -> Any:
    try:
        return requests.get(SANDBOX + path, timeout=5).json()
    except requests.ConnectionError:
        return None


def wait(
    predicate: Callable[[], bool], what: str, timeout: float = 30, every: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def accounts(count: int, ledger_url: str) -> list[dict[str, Any]]:
    """The default account and ``count - 1`` more sandbox accounts, each with a list whose
    keys the ledger at ``ledger_url`` (migrated here) knows: one send_sms item template per
    account. Sets the environment the workers started next inherit."""
    added = [
        requests.post(
            f"{SANDBOX}/_sandbox/accounts", json={"account_id": 5000 + n}, timeout=5
        ).json()
        for n in range(1, count)
    ]
    os.environ.update(
        MAILUP_JOBS_DATABASE_URL=ledger_url,
        MAILUP_JOBS_DATA_DIR=f"/tmp/mailup-jobs-bench-{uuid.uuid4().hex[:8]}",
        MAILUP_JOBS_ACCOUNTS=json.dumps(
            {
                f"a{a['id']}": {
                    "username": a["username"],
                    "password": a["password"],
                    "account_id": a["id"],
                }
                for a in added
            }
        ),
    )
    from worker.jobs import list_credentials
    from worker.ledger.db import connection
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings.ledger_url)
    keys = [("default", 1, LIST_GUID, list_secret())]
    keys += [(f"a{a['id']}", a["list_id"], a["list_guid"], a["list_secret"]) for a in added]
    with connection(settings.ledger_url) as db:
        for account, list_id, guid, secret in keys:
            found = list_credentials.ListKeys(guid, secret)
            list_credentials.save(db, settings, account, list_id, found)
    return [{"account": account, "list_id": list_id} for account, list_id, _, _ in keys]
