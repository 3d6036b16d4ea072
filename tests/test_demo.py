"""README command 1: the demo runs the whole system on embedded defaults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_demo_sends_sms_and_email_on_embedded_defaults(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILUP_")}
    environment["HOME"] = str(tmp_path)  # nothing from an earlier run: a new user's machine

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.cli",
            "demo",
            "--count",
            "3",
            "--port",
            str(_free_port()),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "succeeded" in line]
    assert len(rows) == 5  # ListSecret, 3 SMS, 1 email
    assert sum("send_sms" in row for row in rows) == 3
    assert (tmp_path / ".mailup-jobs" / "ledger.db").exists()
    assert "sqlite" in result.stdout and "filesystem://" in result.stdout
