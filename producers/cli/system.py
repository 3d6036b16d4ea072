"""Running the system: migrate, check, worker, beat, flower, sandbox, demo, generate-key."""

from __future__ import annotations

import sys

import click


@click.command()
def migrate() -> None:
    """Create or upgrade the ledger's tables."""
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    upgrade(get_settings().ledger_url)
    click.echo("ledger is up to date", err=True)


@click.command()
def check() -> None:
    """Check settings, ledger, broker and MailUp's hosts: one line each; exit 1 if any fails."""
    from worker.preflight import all_checks

    checks = all_checks()
    for item in checks:
        click.echo(item.line())
    if not all(item.ok for item in checks):
        sys.exit(1)


def _refuse_to_start_unless_ready(process: str) -> None:
    """What the job kinds need, checked before anything runs: a job never fails mid-way
    for a setting that could have been checked here."""
    from worker.preflight import startup_checks

    failed = [item for item in startup_checks() if not item.ok]
    for item in failed:
        click.echo(f"mailup-jobs {process}: cannot start: {item.name}: {item.detail}", err=True)
    if failed:
        sys.exit(1)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, help="Worker processes (MAILUP_JOBS_CONCURRENCY).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    _refuse_to_start_unless_ready("worker")
    from worker.app import QUEUE, app
    from worker.settings import get_settings

    settings = get_settings()
    argv = ["worker", "-Q", QUEUE, "-l", settings.log_level]
    argv += ["-c", str(concurrency or settings.worker_concurrency), *celery_args]
    app.worker_main(argv)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: the sweeper, pause probes and MailUp pollers (run exactly one)."""
    _refuse_to_start_unless_ready("beat")
    from worker.app import app
    from worker.settings import get_settings

    app.start(["beat", "-l", get_settings().log_level, *celery_args])


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(flower_args: tuple[str, ...]) -> None:
    """Run Flower, the live view of the workers (extra arguments go to Flower)."""
    from worker.app import app

    app.start(["flower", *flower_args])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for random faults.")
@click.option("--verbose", is_flag=True, help="Log every request.")
def sandbox(host: str, port: int, seed: int, verbose: bool) -> None:
    """Serve the local MailUp emulator."""
    from sandbox.server import serve

    serve(host, port, seed=seed, verbose=verbose)


@click.command("generate-key")
def generate_key() -> None:
    """Print a new key for MAILUP_JOBS_SECRET_KEY."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@click.command()
@click.option("--count", default=5, show_default=True, help="How many SMS to send.")
@click.option("--port", default=8025, show_default=True, help="The sandbox's port.")
def demo(count: int, port: int) -> None:
    """Run sandbox, worker and beat on embedded defaults and send a few SMS through them."""
    from producers.demo import run_demo

    sys.exit(run_demo(count=count, port=port))
