"""Running the system: migrate, check, worker, beat, flower, sandbox, demo, generate-key."""

from __future__ import annotations

import sys
from collections.abc import Mapping

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
@click.option("--concurrency", "-c", type=int, help="Jobs run at once (MAILUP_JOBS_CONCURRENCY).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    _refuse_to_start_unless_ready("worker")
    from worker.app import QUEUE, app
    from worker.logs import celery_options
    from worker.settings import get_settings

    settings = get_settings()
    argv = [*celery_options(settings), "worker", "-Q", QUEUE, "-l", settings.log_level]
    argv += ["-c", str(concurrency or settings.worker_concurrency), *celery_args]
    app.worker_main(argv)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: the sweeper, pause probes and MailUp pollers (run exactly one)."""
    _refuse_to_start_unless_ready("beat")
    from worker.app import app
    from worker.logs import celery_options
    from worker.settings import get_settings

    settings = get_settings()
    app.start([*celery_options(settings), "beat", "-l", settings.log_level, *celery_args])


# Flower's own OAuth login (its docs, "Authentication"): a provider, the emails allowed,
# and the OAuth application's key, secret and redirect URI.
FLOWER_OAUTH = (
    "FLOWER_AUTH_PROVIDER",
    "FLOWER_AUTH",
    "FLOWER_OAUTH2_KEY",
    "FLOWER_OAUTH2_SECRET",
    "FLOWER_OAUTH2_REDIRECT_URI",
)
# Flower's options that hold a secret, and where to give it instead of a command line, which
# every user of the host can read (ps).
FLOWER_SECRET_OPTIONS = {
    "basic_auth": "MAILUP_JOBS_FLOWER_AUTH",
    "oauth2_secret": "FLOWER_OAUTH2_SECRET",
    "cookie_secret": "FLOWER_COOKIE_SECRET",
}


def _flower_login_problem(
    basic_auth: str, environ: Mapping[str, str], flower_args: tuple[str, ...]
) -> str | None:
    """Why Flower would start without a login, or with a secret in its argv (None: fine)."""
    # Flower takes each setting from its environment (FLOWER_NAME) or as --name=value.
    given = {name for name in FLOWER_OAUTH if environ.get(name, "").strip()}
    for argument in flower_args:
        if not argument.startswith("-"):
            continue
        spelled, _, value = argument.partition("=")
        option = spelled.lstrip("-").replace("-", "_")
        if option in FLOWER_SECRET_OPTIONS:
            instead = FLOWER_SECRET_OPTIONS[option]
            return f"{spelled}: a command line is visible to all (ps): set {instead} instead"
        name = f"FLOWER_{option.upper()}"
        if name in FLOWER_OAUTH and not value.strip():
            return f"{spelled}: empty: Flower's login needs a value"
        given.add(name)
    oauth_missing = [name for name in FLOWER_OAUTH if name not in given]
    if oauth_missing and len(oauth_missing) < len(FLOWER_OAUTH):
        return f"{oauth_missing[0]}: not set (Flower's OAuth needs {', '.join(FLOWER_OAUTH)})"
    if not basic_auth and oauth_missing:
        return (
            "MAILUP_JOBS_FLOWER_AUTH: not set: give user:password, or Flower's OAuth settings "
            "(FLOWER_AUTH_PROVIDER, FLOWER_AUTH, FLOWER_OAUTH2_*)"
        )
    return None


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="FLOWER_ADDRESS",  # Flower's own: the --address handed on below would hide it
    show_default=True,
    show_envvar=True,
    help="The address to listen on.",
)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(host: str, flower_args: tuple[str, ...]) -> None:
    """Run Flower, the live view of the workers (extra arguments go to Flower).

    It asks for a login: MAILUP_JOBS_FLOWER_AUTH (user:password) or Flower's OAuth settings.
    """
    import os

    from worker.settings import get_settings

    basic_auth = get_settings().flower_auth.get_secret_value()
    problem = _flower_login_problem(basic_auth, os.environ, flower_args)
    if problem:
        click.echo(f"mailup-jobs flower: cannot start: {problem}", err=True)
        sys.exit(1)
    if basic_auth:
        # Flower reads it from its environment, which ps does not show.
        os.environ["FLOWER_BASIC_AUTH"] = basic_auth
    from worker.app import app

    # Flower's own default is every interface; an --address among flower_args comes later
    # and wins.
    app.start(["flower", f"--address={host}", *flower_args])


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for random faults.")
@click.option("--verbose", is_flag=True, help="Log every request.")
def sandbox(host: str, port: int, seed: int, verbose: bool) -> None:
    """Serve the local MailUp emulator."""
    from sandbox.server import serve

    try:
        serve(host, port, seed=seed, verbose=verbose)
    except OSError as exc:  # the port is taken, or the host is not this machine's
        click.echo(f"mailup-jobs sandbox: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        sys.exit(1)


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
