"""`mailup-jobs ledger …`: the ledger's audits as a table, CSV, JSON or an HTML report, and
its purge."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import click

if TYPE_CHECKING:
    from worker.audits.volume import CostsBy

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "csv", "json")


class Row(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


def emit(rows: Sequence[Row], fmt: str) -> None:
    """Rows on stdout: aligned columns (the default), CSV with a header, or a JSON array.
    Ledger text is escaped for the table and defused for spreadsheets in the CSV."""
    dicts = [row.as_dict() for row in rows]
    if fmt == "json":
        click.echo(json.dumps(dicts, indent=2))
        return
    if not dicts:
        if fmt == "table":
            click.echo("nothing found", err=True)
        return
    columns = list(dicts[0])
    if fmt == "csv":
        from worker.escape import csv_cell

        # Text quoted: a CR in it would otherwise end the row for a spreadsheet ("\n" lines).
        writer = csv.DictWriter(
            sys.stdout, fieldnames=columns, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
        )
        writer.writeheader()
        writer.writerows({k: "" if v is None else csv_cell(v) for k, v in d.items()} for d in dicts)
        return
    cells = [[_cell(d[c]) for c in columns] for d in dicts]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(d[c], int | float) or d[c] is None for d in dicts) for c in columns]

    def line(values: list[str]) -> str:
        padded = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    click.echo(line(columns))
    for row in cells:
        click.echo(line(row))


def _cell(value: Any) -> str:
    from worker.escape import printable

    return "-" if value is None else printable(str(value))


class Moment(click.ParamType["datetime | None", "str | datetime"]):
    """An ISO date or datetime (UTC unless it says otherwise); as ``--until``, a date is
    included whole."""

    name = "date"

    def convert(
        self, value: str | datetime, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime | None:
        from worker.audits.period import moment

        if isinstance(value, datetime):
            return value
        name = param.name if param and param.name else "date"
        try:
            return moment(name, value, whole_day=name == "until")
        except ValueError as exc:
            self.fail(str(exc).removeprefix(f"{name}: "), param, ctx)


def audit_options(command: F) -> F:
    """--since, --until and --format, as every audit takes them."""
    command = click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
    )(command)
    command = click.option(
        "--until", type=Moment(), help="Up to this date (included) or datetime (excluded)."
    )(command)
    return click.option("--since", type=Moment(), help="From this date or datetime (UTC).")(command)


def _checked(run: Callable[[], Sequence[Row]]) -> Sequence[Row]:
    """An audit's rows; its ValueError (a bad argument) as a usage error naming it."""
    try:
        return run()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.group("ledger")
def ledger_group() -> None:
    """Audit what was sent, what it cost and what failed; purge old personal data."""


@ledger_group.command("costs")
@click.option(
    "--by", type=click.Choice(["campaign", "day", "list"]), default="campaign", show_default=True
)
@click.option("--account", help="One account only.")
@audit_options
def ledger_costs(
    by: str, account: str | None, since: datetime | None, until: datetime | None, fmt: str
) -> None:
    """SMS sent and their credits.

    The SMS sent and the credits MailUp charged for them, per account and campaign code, day
    (UTC) or list.
    """
    from producers.audit import sms_costs

    grouping = cast("CostsBy", by)
    emit(_checked(lambda: sms_costs(grouping, since=since, until=until, account=account)), fmt)


@ledger_group.command("sends")
@click.option("--by", type=click.Choice(["day"]), default="day", show_default=True)
@click.option("--kind", help="One job kind only, e.g. send_sms.")
@click.option("--status", help="One status only, e.g. failed.")
@audit_options
def ledger_sends(
    by: str,
    kind: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    fmt: str,
) -> None:
    """Jobs per day and status.

    The jobs accepted each day (UTC), counted by the status they are in now.
    """
    from producers.audit import sends_by_day

    rows = _checked(lambda: sends_by_day(since=since, until=until, kind=kind, status=status))
    emit(rows, fmt)


@ledger_group.command("failures")
@click.option("--by", type=click.Choice(["code"]), default="code", show_default=True)
@audit_options
def ledger_failures(by: str, since: datetime | None, until: datetime | None, fmt: str) -> None:
    """Failures by code, and what each means.

    Failed and in_doubt jobs by MailUp API and code, with the meaning MailUp's docs give it
    (or ours, for the codes mailup-jobs gives itself).
    """
    from producers.audit import failures_by_code

    emit(_checked(lambda: failures_by_code(since=since, until=until)), fmt)


@ledger_group.command("recipient")
@click.argument("recipient", metavar="NUMBER_OR_EMAIL")
@audit_options
def ledger_recipient(
    recipient: str, since: datetime | None, until: datetime | None, fmt: str
) -> None:
    """Everything sent to one recipient.

    Every SMS, transactional email and campaign send addressed to a phone number (+ or 00)
    or email address (any case), with times and outcomes; also after a purge.
    """
    from producers.audit import sent_to

    emit(_checked(lambda: sent_to(recipient, since=since, until=until)), fmt)


@ledger_group.command("report")
@click.option(
    "--html", "path", required=True, type=click.Path(dir_okay=False), help="The page to write."
)
@click.option("--since", type=Moment(), help="From this date or datetime (UTC).")
@click.option("--until", type=Moment(), help="Up to this date (included) or datetime (excluded).")
def ledger_report(path: str, since: datetime | None, until: datetime | None) -> None:
    """Charts, and what waits for a person, in one HTML page.

    Jobs per day by kind, SMS credits per day and per campaign, failures per day and their
    codes, the in_doubt jobs to resolve and the paused channels. The page needs no network
    to open.
    """
    from producers.report import collect, render, write

    try:
        report = collect(since=since, until=until)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        write(path, render(report))
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from None
    totals = report.totals()
    click.echo(
        f"{path}: {totals['jobs']} jobs, {totals['sms']} SMS; now {totals['to_resolve']} in "
        f"doubt, {totals['paused']} paused channels"
    )


@ledger_group.command("purge")
@click.option(
    "--older-than", required=True, metavar="AGE", help="Days or hours, such as 90d or 12h."
)
def ledger_purge(older_than: str) -> None:
    """Remove old personal data, keep the audit.

    Payloads, bodies, attachments and recipients of jobs finished longer ago than AGE are
    removed; their audit (counts, costs, codes, ids, hashed recipients) stays.
    """
    from producers.audit import purge
    from worker.retention import age

    try:
        older = age(older_than)
    except ValueError as exc:
        message = str(exc).removeprefix("older_than: ")
        raise click.BadParameter(message, param_hint="--older-than") from None
    report = purge(older)
    click.echo(
        f"purged {report.jobs} jobs, {report.import_rows} refused import rows, "
        f"{report.schedules} campaign schedules"
    )
