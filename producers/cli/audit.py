"""`mailup-jobs jobs …`: audit the ledger, and an operator's few actions on a job."""

from __future__ import annotations

import getpass
import json
import sys

import click

from producers.cli.ledger import FORMATS, emit
from producers.cli.output import say


@click.group()
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
    say(f"{job['id']}  {job['kind']}  {job['status']}  account={job['account']}")
    if job["last_error"]:
        say(f"  last error [{job['last_error_code']}]: {job['last_error']}")
    for key, value in (job["outcome"] or {}).items():
        say(f"  {key}: {value}")
    for attempt in job["attempts"]:
        say(
            f"  attempt {attempt['number']}: {attempt['outcome']} http={attempt['http_status']}"
            f" code={attempt['mailup_code']} {attempt['duration_ms']}ms {attempt['error'] or ''}"
        )
    for resolution in job["resolutions"]:
        delivery = resolution["delivery_id"]
        say(
            f"  resolved {resolution['resolution']} by {resolution['resolved_by']} at "
            f"{resolution['resolved_at']}" + (f" delivery_id={delivery}" if delivery else "")
        )
    if job["purged_at"]:
        click.echo(f"  personal data purged at {job['purged_at']}")


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
        say(f"{row['id']}  {row['created_at']}  {row['kind']:<12} {row['status']}{error}")


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
        click.echo(f"job {job_id} is not failed or in_doubt (or its payload was purged)", err=True)
        sys.exit(1)


@jobs.command("in-doubt")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def jobs_in_doubt(fmt: str) -> None:
    """The jobs in doubt, longest first.

    Check each on MailUp's side, then resolve it (jobs resolve ID --sent | --not-sent).
    """
    from producers.audit import in_doubt_jobs

    emit(in_doubt_jobs(), fmt)


@jobs.command("resolve")
@click.argument("job_id")
@click.option("--sent/--not-sent", default=None, help="What MailUp's side shows.")
@click.option("--delivery-id", type=click.IntRange(min=0), help="MailUp's id of the sent SMS.")
@click.option("--by", "by", default=getpass.getuser, show_default="the OS user", help="Who.")
def jobs_resolve(job_id: str, sent: bool | None, delivery_id: int | None, by: str) -> None:
    """Say whether an in_doubt job was sent.

    --sent records it as delivered (with MailUp's --delivery-id if known); --not-sent queues
    it again. The resolution is kept with --by and its time.
    """
    from producers.audit import resolve
    from worker.audits.in_doubt import NotInDoubt

    if sent is None:
        raise click.UsageError("give --sent or --not-sent")
    try:
        done = resolve(job_id, sent=sent, by=by, delivery_id=delivery_id)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except NotInDoubt as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    say(f"{done.job_id} resolved {done.resolution} by {done.resolved_by}")


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued job, or one waiting for a retry."""
    from producers.audit import cancel

    if not cancel(job_id):
        click.echo(f"job {job_id} is not queued or retrying", err=True)
        sys.exit(1)
