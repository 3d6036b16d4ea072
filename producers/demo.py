"""``mailup-jobs demo``: the whole system on one machine with nothing installed.

Starts the sandbox (as MailUp), a worker and beat on the embedded defaults (SQLite ledger,
filesystem broker), creates list 1's ListSecret, sends a few SMS and an email with an
attachment, and prints their ledger rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import requests

from sandbox.server import client_settings

DEMO_LIST = 1


def _start(name: str, args: list[str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    command = [sys.executable, "-m", "producers.cli", *args]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise click.ClickException(f"the sandbox did not answer at {url}")


def run_demo(*, count: int, port: int) -> int:
    os.environ.update(client_settings(f"http://127.0.0.1:{port}"))
    # Imported after the environment is set: settings are read once.
    from producers.audit import get_job
    from producers.email import Attachment, send_email
    from producers.enqueue import manage_list_secret, send_sms
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    get_settings.cache_clear()  # the CLI may have read them before the sandbox's were set
    settings = get_settings()
    upgrade(settings.ledger_url)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    click.echo(f"ledger: {settings.ledger_url}\nbroker: {settings.broker_url}\nlogs:   {logs}")

    processes = [_start("sandbox", ["sandbox", "--port", str(port)], logs)]
    try:
        _wait_for(f"http://127.0.0.1:{port}/_sandbox/journal")
        processes.append(_start("worker", ["worker", "-c", "2"], logs))
        processes.append(_start("beat", ["beat"], logs))

        # No ListGuid given: the worker reads it from MailUp's Console API.
        setup = manage_list_secret("create", list_id=DEMO_LIST)
        click.echo(f"queued ListSecret creation for list {DEMO_LIST}: {setup}")
        # SMS jobs need the list's keys in the ledger: let that job finish first.
        job_ids = [setup]
        if _wait_until_settled(job_ids, get_job)[0]["status"] != "succeeded":
            raise click.ClickException(f"ListSecret creation failed; see {logs / 'worker.log'}")
        for n in range(count):
            job_ids.append(
                send_sms(
                    list_id=DEMO_LIST,
                    recipient=f"+39335000{n + 1:04d}",
                    content="Hi [Name], your code is [Code]",
                    dynamic_fields={"Name": f"user{n}", "Code": f"{1000 + n}"},
                    campaign_code="demo",
                )
            )
        job_ids.append(
            send_email(
                sender="Demo <sender@example.com>",
                to=["ada@example.com"],
                subject="Your receipt",
                html="<p>Thanks for your order!</p>",
                attachments=[Attachment("receipt.txt", b"1 x demo, 0.00 EUR\n")],
                campaign_code="demo",
            )
        )
        click.echo(f"queued {count} SMS and 1 email; waiting for the worker…")
        jobs = _wait_until_settled(job_ids, get_job)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)

    click.echo(f"\n{'job id':<36}  {'kind':<12}  {'status':<9}  {'recipient':<15}  delivery  cost")
    for job in jobs:
        outcome = job["outcome"] or {}
        if job["kind"] == "send_message":
            recipients = outcome.get("recipients") or [{}]
            outcome = {**outcome, "recipient": recipients[0].get("email", "-")}
        error = f"  [{job['last_error_code']}] {job['last_error']}" if job["last_error"] else ""
        click.echo(
            f"{job['id']:<36}  {job['kind']:<12}  {job['status']:<9}  "
            f"{outcome.get('recipient', '-'):<15}  {outcome.get('delivery_id', '-'):>8}  "
            f"{outcome.get('cost', '-')}{error}"
        )
    click.echo("\nmore: mailup-jobs jobs show JOB_ID --json")
    return 0 if all(job["status"] == "succeeded" for job in jobs) else 1


def _wait_until_settled(
    job_ids: list[str], get_job: Callable[[str], dict[str, Any] | None], timeout: float = 90.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [job for job_id in job_ids if (job := get_job(job_id)) is not None]
        pending = [job for job in jobs if job["status"] in ("queued", "running", "retrying")]
        if not pending or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)
