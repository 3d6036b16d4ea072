"""`mailup-jobs lists|groups|recipients|import|imports …`: the Console's lists, groups and
recipients. Changes are jobs (their id alone on stdout); reads run at once."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from producers.cli.output import say
from producers.cli.submit import OPTION_FOR_FIELD, common, submit

account_option = click.option("--account", default="default", show_default=True)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _table(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        say("  ".join(str(row.get(c) if row.get(c) is not None else "-") for c in columns))


# --- lists --------------------------------------------------------------------------------

_LIST_FIELDS = [
    ("--name", "List name (at most 50 characters)."),
    ("--owner-email", "The From address (trust it: trusted-senders add)."),
    ("--sender-name", "The sender's name shown to recipients."),
    ("--company-name", None),
    ("--contact-name", None),
    ("--address", None),
    ("--city", None),
    ("--country-code", "Two letters, e.g. IT (see: lists countries)."),
    ("--permission-reminder", "Why recipients get these messages."),
    ("--website-url", None),
    ("--reply-to", None),
    ("--description", None),
    ("--time-zone-code", "e.g. UTC+01:00.0 (see: lists timezones)."),
    ("--sms-sender-name", None),
    ("--default-prefix", "e.g. 0039."),
]


def _list_fields(func: Any) -> Any:
    for name, help_text in reversed(_LIST_FIELDS):
        func = click.option(name, help=help_text)(func)
    func = click.option("--business/--no-business", default=None, help="Mail to businesses.")(func)
    return click.option("--customer/--no-customer", default=None, help="Mail to consumers.")(func)


@click.group("lists")
def lists_group() -> None:
    """The account's lists (Console API)."""


@lists_group.command("countries")
@account_option
@json_option
def lists_countries(account: str, as_json: bool) -> None:
    """Country codes a list may have."""
    from producers.lists import countries

    _table(countries(account=account), ["code", "name"], as_json)


@lists_group.command("timezones")
@account_option
@json_option
def lists_timezones(account: str, as_json: bool) -> None:
    """Time zone codes a list may have."""
    from producers.lists import time_zones

    _table(time_zones(account=account), ["code", "offset", "description"], as_json)


@lists_group.command("list")
@click.option("--filter", "filterby", help="MailUp's filterby, e.g. \"Name.Contains('News')\".")
@click.option("--order", "orderby", help="MailUp's orderby, e.g. 'idList desc'.")
@account_option
@json_option
def lists_list(filterby: str | None, orderby: str | None, account: str, as_json: bool) -> None:
    """The lists, from MailUp (the ledger's mirror is refreshed)."""
    from producers.lists import read_lists

    rows = read_lists(filterby=filterby, orderby=orderby, account=account)
    _table(rows, ["list_id", "guid", "name"], as_json)


@lists_group.command("show")
@click.argument("list_id", type=int)
@account_option
def lists_show(list_id: int, account: str) -> None:
    """Everything MailUp says of a list."""
    from producers.lists import list_details

    click.echo(json.dumps(list_details(list_id, account=account), indent=2))


@lists_group.command("create")
@_list_fields
@click.option("--settings-from", type=int, help="A list to inherit the other settings from.")
@common
def lists_create(**kwargs: Any) -> None:
    """Queue a list's creation (the sender details MailUp requires); prints the job id."""
    from producers.lists import create_list

    submit(create_list, **{k: v for k, v in kwargs.items() if v is not None})


@lists_group.command("update")
@click.argument("list_id", type=int)
@_list_fields
@common
def lists_update(list_id: int, **kwargs: Any) -> None:
    """Queue changes to a list; prints the job id."""
    from producers.lists import update_list

    submit(update_list, list_id=list_id, **{k: v for k, v in kwargs.items() if v is not None})


@lists_group.command("delete")
@click.argument("list_id", type=int)
@click.option("--list-guid", help="Delete only if this is the list's GUID (a safety catch).")
@common
def lists_delete(**kwargs: Any) -> None:
    """Queue a list's deletion; prints the job id."""
    from producers.lists import delete_list

    submit(delete_list, **kwargs)


# --- groups -------------------------------------------------------------------------------

list_id_option = click.option("--list-id", required=True, type=int)
group_id_option = click.option("--group-id", required=True, type=int)


@click.group("groups")
def groups_group() -> None:
    """The groups of a list."""


@groups_group.command("list")
@list_id_option
@account_option
@json_option
def groups_list(list_id: int, account: str, as_json: bool) -> None:
    """A list's groups, from MailUp (the ledger's mirror is refreshed)."""
    from producers.lists import read_groups

    _table(read_groups(list_id, account=account), ["group_id", "name", "notes"], as_json)


@groups_group.command("create")
@list_id_option
@click.option("--name", required=True)
@click.option("--notes", default="")
@common
def groups_create(**kwargs: Any) -> None:
    """Queue a group's creation; prints the job id."""
    from producers.lists import create_group

    submit(create_group, **kwargs)


@groups_group.command("update")
@list_id_option
@group_id_option
@click.option("--name")
@click.option("--notes")
@common
def groups_update(**kwargs: Any) -> None:
    """Queue renaming a group or changing its notes; prints the job id."""
    from producers.lists import update_group

    submit(update_group, **kwargs)


@groups_group.command("delete")
@list_id_option
@group_id_option
@common
def groups_delete(**kwargs: Any) -> None:
    """Queue a group's deletion; prints the job id."""
    from producers.lists import delete_group

    submit(delete_group, **kwargs)


@groups_group.command("clear")
@list_id_option
@group_id_option
@common
def groups_clear(**kwargs: Any) -> None:
    """Queue removing every recipient from a group (they stay on the list)."""
    from producers.lists import clear_group

    submit(clear_group, **kwargs)


# --- recipients ---------------------------------------------------------------------------

_RECIPIENT_OPTIONS = {**OPTION_FOR_FIELD, "email": "--email"}


def _fields_by_id(values: tuple[str, ...]) -> dict[int, str]:
    fields = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip().isdigit():
            raise click.BadParameter(f"{value!r} is not FIELD_ID=VALUE", param_hint="--field")
        fields[int(key)] = text
    return fields


@click.group("recipients")
def recipients_group() -> None:
    """Recipients of a list or group, one at a time (many: mailup-jobs import)."""


@recipients_group.command("add")
@list_id_option
@click.option("--group-id", type=int, help="Also into this group of the list.")
@click.option("--email", required=True)
@click.option("--name")
@click.option("--mobile-number")
@click.option("--mobile-prefix")
@click.option("--field", "fields", multiple=True, help="A recipient field: FIELD_ID=VALUE.")
@click.option("--confirm-email", is_flag=True, help="Pending until they confirm by email.")
@common
def recipients_add(fields: tuple[str, ...], **kwargs: Any) -> None:
    """Queue adding a recipient; prints the job id."""
    from producers.lists import add_recipient

    submit(add_recipient, _RECIPIENT_OPTIONS, fields=_fields_by_id(fields), **kwargs)


def _subscription(name: str, help_text: str) -> Any:
    @recipients_group.command(name, help=help_text)
    @list_id_option
    @click.option("--group-id", type=int, help="The group instead (of that list).")
    @click.option("--recipient-id", required=True, type=int)
    @common
    def command(**kwargs: Any) -> None:
        import producers.lists

        submit(getattr(producers.lists, name), **kwargs)

    return command


recipients_subscribe = _subscription(
    "subscribe", "Queue subscribing a recipient; prints the job id."
)
recipients_unsubscribe = _subscription(
    "unsubscribe", "Queue unsubscribing a recipient; prints the job id."
)


@recipients_group.command("list")
@list_id_option
@click.option("--group-id", type=int, help="The group's members instead.")
@click.option(
    "--status",
    default="subscribed",
    show_default=True,
    type=click.Choice(["subscribed", "unsubscribed", "pending"]),
)
@account_option
@json_option
def recipients_list(
    list_id: int, group_id: int | None, status: Any, account: str, as_json: bool
) -> None:
    """A list's recipients of one status, or a group's members, from MailUp."""
    from producers.lists import read_recipients

    rows = read_recipients(list_id=list_id, group_id=group_id, status=status, account=account)
    _table(rows, ["recipient_id", "email", "name", "mobile_number"], as_json)


# --- imports ------------------------------------------------------------------------------


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@list_id_option
@click.option("--group-id", type=int, help="Into this group of the list.")
@click.option("--confirm-email", is_flag=True, help="Pending until each confirms by email.")
@click.option("--optout", is_flag=True, help="Import them as unsubscribed (bulk unsubscribe).")
@click.option(
    "--field", "fields", multiple=True, help="Another column to a recipient field: COLUMN=FIELD_ID."
)
@click.option("--chunk-size", default=1000, show_default=True, type=int)
@account_option
def import_file(file: Path, fields: tuple[str, ...], **options: Any) -> None:
    """Import recipients from FILE.csv (columns Email, Name, MobileNumber, MobilePrefix, and
    those given to --field). Refused rows go to stderr and FILE.rejected.csv; the import's
    id alone to stdout. A line that cannot be read stops the import there (exit 1): the
    rows before it are queued."""
    from producers.cli.progress import Progress
    from producers.errors import InvalidJob
    from producers.imports import ImportStopped, import_csv

    mapped = {}
    for value in fields:
        column, sep, field_id = value.rpartition("=")
        if not sep or not column or not field_id.strip().isdigit():
            raise click.BadParameter(f"{value!r} is not COLUMN=FIELD_ID", param_hint="--field")
        mapped[column] = int(field_id)
    rejected_path = file.with_name(file.stem + ".rejected.csv")
    progress = Progress(file.name)
    stopped: ImportStopped | None = None
    with _RejectedFile(rejected_path) as rejected:
        try:
            report = import_csv(
                file, fields=mapped, on_progress=progress, on_reject=rejected.add, **options
            )
        except InvalidJob as exc:
            for field, reason in exc.errors.items():
                click.echo(f"invalid {field}: {reason}", err=True)
            sys.exit(2)
        except ImportStopped as exc:
            report, stopped = exc.report, exc
        finally:
            progress.done()
    if report.rejected:
        click.echo(f"{len(report.rejected)} row(s) refused: see {rejected_path}", err=True)
    click.echo(report.import_id)
    if stopped is not None:
        click.echo(str(stopped), err=True)
        sys.exit(1)


class _RejectedFile:
    """Refused rows, each to stderr and to a CSV beside the input (line, reason, row);
    the file is written only if a row is refused, its cells defused for spreadsheets."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: Any = None
        self._stream: Any = None

    def __enter__(self) -> _RejectedFile:
        return self

    def add(self, line: int, reason: str, row: Any) -> None:
        from worker.escape import csv_cell

        say(f"line {line}: {reason}", err=True)
        if self._writer is None:
            self._stream = self._path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._stream)
            self._writer.writerow(map(csv_cell, ["line", "reason", *row.keys()]))
        self._writer.writerow(map(csv_cell, [line, reason, *row.values()]))

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()


@click.group("imports")
def imports_group() -> None:
    """Recipient imports and their progress on MailUp."""


@imports_group.command("show")
@click.argument("import_id")
@json_option
def imports_show(import_id: str, as_json: bool) -> None:
    """An import: rows read and refused, each chunk with MailUp's counters, the totals."""
    from producers.imports import show

    found = show(import_id)
    if found is None:
        click.echo(f"no import {import_id}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    say(
        f"{found['id']}  list {found['list_id']}"
        + (f" group {found['group_id']}" if found["group_id"] else "")
        + f"  {found['source']}"
    )
    say(f"  {_state(found)}")
    click.echo(
        f"  rows read {found['rows_read']}, refused {found['rows_rejected']}; chunks "
        f"{found['chunks_completed']}/{len(found['chunks'])} completed on MailUp, "
        f"{found['chunks_unknown']} unknown there"
    )
    click.echo("  totals: " + ", ".join(f"{k} {v}" for k, v in found["totals"].items()))
    for chunk in found["chunks"]:
        say(
            f"  chunk {chunk['chunk']}: {chunk['rows']} rows, job {chunk['job_status']}, "
            f"MailUp import {chunk['mailup_import_id'] or '-'}, {_progress(chunk)}"
        )
    for row in found["rejected"]:
        say(f"  refused line {row['line']}: {row['reason']}")


def _state(found: dict[str, Any]) -> str:
    if found["state"] == "failed":
        return f"failed at line {found['failed_line']}: {found['failed_reason']}"
    return str(found["state"])


def _progress(chunk: dict[str, Any]) -> str:
    if chunk["completed_at"]:
        return f"completed {chunk['completed_at']}"
    if chunk["unknown_reason"]:
        return f"unknown: {chunk['unknown_reason']}"
    return "not completed"


@imports_group.command("list")
@click.option("--limit", default=50, show_default=True)
@json_option
def imports_list(limit: int, as_json: bool) -> None:
    """The newest imports."""
    from producers.imports import listing

    rows = listing(limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        say(
            f"{row['id']}  {row['created_at']}  list {row['list_id']}  rows {row['rows_read']} "
            f"(refused {row['rows_rejected']})  chunks {row['chunks_completed']}/{row['chunks']} "
            f"completed, {row['chunks_unknown']} unknown  imported {row['totals']['imported']}  "
            f"{_state(row)}"
        )
