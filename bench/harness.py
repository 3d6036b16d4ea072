"""What every bench shares: the sandbox as a process, waiting, CPU and memory meters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import requests

PORT = 8731
SANDBOX = f"http://127.0.0.1:{PORT}"


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


def wait(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.25)
