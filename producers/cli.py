"""The ``mailup-jobs`` command: run the system, enqueue jobs, audit the ledger."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from producers.errors import InvalidJob
from worker.errors import ConfigurationError

# How the CLI spells the API's field names, so an error names the option that was typed.
OPTION_FOR_FIELD = {
    "recipient": "--to",
    "to": "--to",
    "cc": "--cc",
    "bcc": "--bcc",
    "subject": "--subject",
    "reply_to": "--reply-to",
    "attachments": "--attach",
    "embedded_images": "--embed",
    "html": "--html-file",
    "content": "--content",
    "template_id": "--template-id",
    "campaign_code": "--campaign-code",
    "dynamic_fields": "--field",
    "sender": "--sender",
    "list_id": "--list-id",
    "list_guid": "--list-guid",
    "idempotency_key": "--idempotency-key",
    "priority": "--priority",
    "account": "--account",
    "email": "EMAIL",
    "trusted_senders": "--trusted-sender",
    "trusted_domains": "--trusted-domain",
    "priority_code": "--priority-code",
    "username": "--username",
}


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


@click.group()
def cli() -> None:
    """mailup-jobs: a durable job queue for the MailUp APIs."""


@cli.command()
def migrate() -> None:
    """Create or upgrade the ledger's tables."""
    from worker.ledger.migrate import upgrade
    from worker.settings import get_settings

    upgrade(get_settings().ledger_url)
    click.echo("ledger is up to date", err=True)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, help="Worker processes (MAILUP_JOBS_CONCURRENCY).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    from worker.app import QUEUE, app
    from worker.settings import get_settings

    settings = get_settings()
    argv = ["worker", "-Q", QUEUE, "-l", settings.log_level]
    argv += ["-c", str(concurrency or settings.worker_concurrency), *celery_args]
    app.worker_main(argv)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: the sweeper and the MailUp pollers."""
    from worker.app import app
    from worker.settings import get_settings

    app.start(["beat", "-l", get_settings().log_level, *celery_args])


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for random faults.")
@click.option("--verbose", is_flag=True, help="Log every request.")
def sandbox(host: str, port: int, seed: int, verbose: bool) -> None:
    """Serve the local MailUp emulator."""
    from sandbox.server import serve

    serve(host, port, seed=seed, verbose=verbose)


@cli.command("generate-key")
def generate_key() -> None:
    """Print a new key for MAILUP_JOBS_SECRET_KEY."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@cli.command()
@click.option("--count", default=5, show_default=True, help="How many SMS to send.")
@click.option("--port", default=8025, show_default=True, help="The sandbox's port.")
def demo(count: int, port: int) -> None:
    """Run sandbox, worker and beat on embedded defaults and send a few SMS through them."""
    from producers.demo import run_demo

    sys.exit(run_demo(count=count, port=port))


@cli.group()
def enqueue() -> None:
    """Queue a job; prints the job id alone on stdout."""


def _fields(values: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--field")
        fields[name] = text
    return fields


# Email calls its From "sender", like SMS's --sender: the email commands say which is meant.
EMAIL_OPTIONS = {**OPTION_FOR_FIELD, "sender": "--from"}


def _submit(call: Any, options: dict[str, str] = OPTION_FOR_FIELD, **kwargs: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            job_id = call(**kwargs)
        except InvalidJob as exc:
            for field, reason in exc.errors.items():
                option = options.get(field.split(".")[0], field)
                click.echo(f"invalid {option}: {reason}", err=True)
            sys.exit(2)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(job_id)


common_options = [
    click.option("--account", default="default", show_default=True),
    click.option("--priority", default=5, show_default=True, type=int, help="0 most urgent."),
    click.option("--idempotency-key", help="The same key twice returns the first job's id."),
]


def _common(func: Any) -> Any:
    for option in reversed(common_options):
        func = option(func)
    return func


@enqueue.command("sms")
@click.option("--list-id", required=True, type=int)
@click.option("--to", "recipient", required=True, help="International number: +39… or 0039….")
@click.option("--content", help="The text (MailUp truncates it past 670 characters).")
@click.option("--template-id", type=int, help="A MailUp SMS template instead of --content.")
@click.option("--campaign-code")
@click.option("--field", "fields", multiple=True, help="A merge tag: NAME=VALUE (repeatable).")
@click.option("--sender", help="At most 11 letters and digits.")
@click.option("--unicode", "is_unicode", is_flag=True, help="The text has non-Latin letters.")
@_common
def enqueue_sms(fields: tuple[str, ...], **kwargs: Any) -> None:
    """Queue one transactional SMS."""
    from producers.enqueue import send_sms

    _submit(send_sms, dynamic_fields=_fields(fields), **kwargs)


@enqueue.command("list-secret")
@click.argument("operation", type=click.Choice(["read", "create", "delete", "rotate"]))
@click.option("--list-id", required=True, type=int)
@click.option("--list-guid", help="The list's GUID (remembered once given).")
@_common
def enqueue_list_secret(operation: str, **kwargs: Any) -> None:
    """Queue a ListSecret operation; the secret is stored encrypted, never printed."""
    from producers.enqueue import manage_list_secret

    _submit(manage_list_secret, operation=operation, **kwargs)


def _addressing(func: Any) -> Any:
    """Options shared by `enqueue email` and `enqueue template`."""
    options = [
        click.option("--from", "sender", required=True, help='"Name <address>" or an address.'),
        click.option("--to", "to", multiple=True, help="A recipient (repeatable)."),
        click.option("--cc", "cc", multiple=True),
        click.option("--bcc", "bcc", multiple=True),
        click.option("--reply-to"),
        click.option(
            "--attach",
            "attach",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False),
            help="A file to attach (repeatable).",
        ),
        click.option(
            "--embed",
            "embed",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False),
            help="An image to embed, as cid:FILENAME (repeatable).",
        ),
        click.option("--campaign-code"),
        click.option("--campaign-name"),
        click.option("--field", "fields", multiple=True, help="A merge tag: NAME=VALUE."),
    ]
    for option in reversed(options):
        func = option(func)
    return _common(func)


def _files(paths: tuple[str, ...]) -> list[Any]:
    from producers.email import Attachment

    return [Attachment(Path(p).name, Path(p).read_bytes()) for p in paths]


@enqueue.command("email")
@click.option("--subject", required=True)
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False))
@_addressing
def enqueue_email(
    html_file: str | None,
    text_file: str | None,
    attach: tuple[str, ...],
    embed: tuple[str, ...],
    fields: tuple[str, ...],
    **kwargs: Any,
) -> None:
    """Queue one transactional email (SendMessage)."""
    from producers.email import send_email

    _submit(
        send_email,
        EMAIL_OPTIONS,
        html=Path(html_file).read_text() if html_file else None,
        text=Path(text_file).read_text() if text_file else None,
        attachments=_files(attach),
        embedded_images=_files(embed),
        dynamic_fields=_fields(fields),
        **kwargs,
    )


@enqueue.command("template")
@click.option("--template-id", required=True, type=int)
@click.option("--subject", default="")
@_addressing
def enqueue_template(
    attach: tuple[str, ...], embed: tuple[str, ...], fields: tuple[str, ...], **kwargs: Any
) -> None:
    """Queue one transactional email from a MailUp template (SendTemplate)."""
    from producers.email import send_email_template

    _submit(
        send_email_template,
        EMAIL_OPTIONS,
        attachments=_files(attach),
        embedded_images=_files(embed),
        dynamic_fields=_fields(fields),
        **kwargs,
    )


@cli.group()
def accounts() -> None:
    """An account's paused channels."""


@accounts.command("resume")
@click.option("--account", default="default", show_default=True)
@click.option("--channel", default="email", show_default=True, type=click.Choice(["email", "sms"]))
def accounts_resume(account: str, channel: str) -> None:
    """Clear a pause (e.g. after fixing a blocked SMTP+ user); waiting jobs run again."""
    from worker.jobs import pauses
    from worker.jobs.registry import KINDS
    from worker.settings import get_settings

    kinds = [name for name, kind in KINDS.items() if kind.channel == channel]
    if not pauses.clear(get_settings(), account, channel, kinds):
        click.echo(f"{channel} of account {account} was not paused", err=True)


@cli.group("trusted-senders")
def trusted_senders_group() -> None:
    """Trust, list and disable sender addresses (Console API)."""


@trusted_senders_group.command("add")
@click.argument("email")
@_common
def trusted_senders_add(email: str, **kwargs: Any) -> None:
    """Queue trusting EMAIL (MailUp mails it a verification link); prints the job id."""
    from producers.console import trust_sender

    _submit(trust_sender, email=email, **kwargs)


@trusted_senders_group.command("disable")
@click.argument("email")
@click.option("--sender-id", help="IdTrustedSender (found in the ledger when omitted).")
@_common
def trusted_senders_disable(email: str, **kwargs: Any) -> None:
    """Queue disabling EMAIL: it can never be trusted again. Prints the job id."""
    from producers.console import disable_trusted_sender

    _submit(disable_trusted_sender, email=email, **kwargs)


@trusted_senders_group.command("list")
@click.option("--account", default="default", show_default=True)
@click.option("--refresh", is_flag=True, help="Read them from MailUp first.")
@click.option("--json", "as_json", is_flag=True)
def trusted_senders_list(account: str, refresh: bool, as_json: bool) -> None:
    """The account's trusted senders, as last seen."""
    from producers.console import list_trusted_senders

    rows = list_trusted_senders(account, refresh=refresh)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['sender_id']}  {row['email']:<40} {row['status']}")


@trusted_senders_group.command("show")
@click.argument("email_or_id")
@click.option("--account", default="default", show_default=True)
@click.option("--refresh", is_flag=True, help="Read them from MailUp first.")
def trusted_senders_show(email_or_id: str, account: str, refresh: bool) -> None:
    """One trusted sender, by address or IdTrustedSender."""
    from producers.console import list_trusted_senders

    found = [
        row
        for row in list_trusted_senders(account, refresh=refresh)
        if email_or_id in (row["email"], row["sender_id"])
    ]
    if not found:
        click.echo(f"no trusted sender {email_or_id} (try --refresh)", err=True)
        sys.exit(1)
    click.echo(json.dumps(found[0], indent=2))


@cli.group("smtp-users")
def smtp_users_group() -> None:
    """SMTP+ users: priorities, creation, password reset, status."""


@smtp_users_group.command("priorities")
@click.option("--account", default="default", show_default=True)
def smtp_users_priorities(account: str) -> None:
    """MailUp's SMTP+ priority codes."""
    from producers.console import smtp_priorities

    for item in smtp_priorities(account):
        click.echo(f"{item['PriorityCode']}  {item['PriorityName']}")


@smtp_users_group.command("create")
@click.option("--list-id", required=True, type=int)
@click.option("--trusted-sender", "trusted_senders", multiple=True, help="Repeatable.")
@click.option("--trusted-domain", "trusted_domains", multiple=True, help="Repeatable.")
@click.option("--priority-code", type=int)
@click.option("--note", default="")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@_common
def smtp_users_create(
    trusted_senders: tuple[str, ...],
    trusted_domains: tuple[str, ...],
    disabled: bool,
    **kwargs: Any,
) -> None:
    """Queue an SMTP+ user creation; it waits for its trusted senders' confirmation."""
    from producers.console import create_smtp_user

    _submit(
        create_smtp_user,
        trusted_senders=list(trusted_senders),
        trusted_domains=list(trusted_domains),
        is_enabled=not disabled,
        **kwargs,
    )


@smtp_users_group.command("reset-password")
@click.option("--list-id", required=True, type=int)
@click.option("--username", required=True)
@_common
def smtp_users_reset(**kwargs: Any) -> None:
    """Queue a password reset; the new password is stored encrypted, not printed."""
    from producers.console import reset_smtp_password

    _submit(reset_smtp_password, **kwargs)


@smtp_users_group.command("info")
@click.argument("username", required=False)
@click.option("--account", default="default", show_default=True)
def smtp_users_info(username: str | None, account: str) -> None:
    """ListUserInfo: the SMTP+ users of the account's list and whether they can send."""
    from producers.console import smtp_user_info

    click.echo(json.dumps(smtp_user_info(username, account), indent=2))


@smtp_users_group.command("password")
@click.argument("username")
@click.option("--account", default="default", show_default=True)
@click.option("--reveal", is_flag=True, help="Really print it.")
def smtp_users_password(username: str, account: str, reveal: bool) -> None:
    """The stored password of an SMTP+ user created or reset here (only with --reveal)."""
    from producers.console import smtp_password

    password = smtp_password(username, account)
    if password is None:
        click.echo(f"no stored password for {username}", err=True)
        sys.exit(1)
    click.echo(password if reveal else "stored (encrypted); add --reveal to print it")


@cli.group()
def jobs() -> None:
    """Audit the ledger."""


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def jobs_show(job_id: str, as_json: bool) -> None:
    """One job with its attempts and outcome."""
    from producers.audit import get_job

    job = get_job(job_id)
    if job is None:
        click.echo(f"no job {job_id}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(job, indent=2))
        return
    click.echo(f"{job['id']}  {job['kind']}  {job['status']}  account={job['account']}")
    if job["last_error"]:
        click.echo(f"  last error [{job['last_error_code']}]: {job['last_error']}")
    for key, value in (job["outcome"] or {}).items():
        click.echo(f"  {key}: {value}")
    for attempt in job["attempts"]:
        click.echo(
            f"  attempt {attempt['number']}: {attempt['outcome']} http={attempt['http_status']}"
            f" code={attempt['mailup_code']} {attempt['duration_ms']}ms {attempt['error'] or ''}"
        )


@jobs.command("list")
@click.option("--status")
@click.option("--kind")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs_list(status: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """The newest jobs."""
    from producers.audit import list_jobs

    rows = list_jobs(status=status, kind=kind, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        error = f"  [{row['last_error_code']}]" if row["last_error_code"] else ""
        click.echo(f"{row['id']}  {row['created_at']}  {row['kind']:<12} {row['status']}{error}")


@jobs.command("stats")
def jobs_stats() -> None:
    """How many jobs are in each status."""
    from producers.audit import status_counts

    for status, count in sorted(status_counts().items()):
        click.echo(f"{status:<10} {count}")


@jobs.command("retry")
@click.argument("job_id")
def jobs_retry(job_id: str) -> None:
    """Queue a failed or in_doubt job again (check first that it was not sent)."""
    from producers.audit import requeue

    if not requeue(job_id):
        click.echo(f"job {job_id} is not failed or in_doubt", err=True)
        sys.exit(1)


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued job, or one waiting for a retry."""
    from producers.audit import cancel

    if not cancel(job_id):
        click.echo(f"job {job_id} is not queued or retrying", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
