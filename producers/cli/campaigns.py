"""`mailup-jobs enqueue campaign`, `campaigns schedule|list|cancel` and
`sendings list|show|stop|delete`: campaign email and MailUp's sending queues."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from producers.cli.output import say
from producers.cli.submit import OPTION_FOR_FIELD, common, submit

CAMPAIGN_OPTIONS = {**OPTION_FOR_FIELD, "when": "--datetime", "at": "--at"}
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _ids(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of ids") from None


def _send_options(func: Any) -> Any:
    """The audience and the send options, shared by `enqueue campaign` and `schedule`."""
    options = [
        click.option("--message-id", required=True, type=int),
        click.option("--list-id", type=int, help="Every subscriber of the list."),
        click.option("--in-groups", help="Only those in these groups: G,G,…"),
        click.option("--not-in-groups", help="Not those in these groups: G,G,…"),
        click.option("--group-id", type=int, help="Every subscriber of the group."),
        click.option("--to", help="One recipient of --list-id (the transactional API is better)."),
        click.option("--sender-name", help="With --sender-address (a trusted sender)."),
        click.option("--sender-address"),
        click.option(
            "--datetime", "when", default="now", show_default=True,
            help="now, undefined (plan it later on MailUp) or a UTC date: MailUp sends then.",
        ),
        click.option("--reply-to"),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _send_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The CLI's options as the producer's keyword arguments (unset ones left out)."""
    fields = {k: v for k, v in kwargs.items() if v is not None}
    for name in ("in_groups", "not_in_groups"):
        if name in fields:
            fields[name] = _ids(fields[name])
    return fields


@click.command("campaign")
@_send_options
@common
def enqueue_campaign(**kwargs: Any) -> None:
    """Queue a campaign send of a message to a list, a group or one recipient."""
    from producers.campaigns import send_campaign

    submit(send_campaign, CAMPAIGN_OPTIONS, **_send_fields(kwargs))


@click.group("campaigns")
def campaigns_group() -> None:
    """Campaign sends scheduled in the ledger."""


@campaigns_group.command("schedule")
@_send_options
@click.option("--at", required=True, help="When to queue the send: ISO 8601 with a zone (UTC).")
@click.option("--account", default="default", show_default=True)
@click.option("--priority", default=5, show_default=True, type=int, help="0 most urgent.")
def campaigns_schedule(at: str, **kwargs: Any) -> None:
    """Keep a send in the ledger until --at (it can be cancelled until then); prints the
    schedule's id."""
    from producers.campaigns import schedule_campaign

    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{at!r} is not an ISO 8601 date", param_hint="--at") from None
    submit(schedule_campaign, CAMPAIGN_OPTIONS, at=when, **_send_fields(kwargs))


@campaigns_group.command("list")
@click.option("--due", is_flag=True, help="Only those due and not yet dispatched.")
@click.option("--state", type=click.Choice(["scheduled", "dispatched", "cancelled", "missed"]))
@json_option
def campaigns_list(due: bool, state: str | None, as_json: bool) -> None:
    """Schedules by due date. A missed one was not dispatched within
    MAILUP_JOBS_SCHEDULE_MAX_LATE of its time: it was never sent."""
    from producers.campaigns import list_schedules

    rows = list_schedules(due=due, state=state)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        payload = row["payload"]
        audience = (
            f"to {payload['to']}"
            if payload.get("to")
            else f"group {payload['group_id']}"
            if payload.get("group_id")
            else f"list {payload['list_id']}"
        )
        say(
            f"{row['id']}  {row['state']:<10}  due {row['due_at']}  message "
            f"{payload['message_id']} {audience}  job {row['job_id'] or '-'}"
        )


@campaigns_group.command("cancel")
@click.argument("schedule_id")
def campaigns_cancel(schedule_id: str) -> None:
    """Cancel a schedule that beat has not dispatched yet."""
    from producers.campaigns import cancel_schedule
    from producers.errors import InvalidJob

    try:
        state = cancel_schedule(schedule_id)
    except InvalidJob as exc:
        click.echo(str(exc.errors["schedule_id"]), err=True)
        sys.exit(1)
    if state != "cancelled":
        click.echo(f"schedule {schedule_id} is {state}: too late to cancel", err=True)
        sys.exit(1)
    click.echo(f"cancelled {schedule_id}")


# --- sendings -----------------------------------------------------------------------------


@click.group("sendings")
def sendings_group() -> None:
    """Campaign sendings as MailUp's queues showed them; stop or delete one."""


@sendings_group.command("list")
@click.option(
    "--state",
    type=click.Choice(
        ["Immediate", "Deferred", "Undefined", "finished", "stopped", "gone", "deleted"]
    ),
)
@click.option("--account")
@click.option("--limit", default=100, show_default=True)
@json_option
def sendings_list(state: str | None, account: str | None, limit: int, as_json: bool) -> None:
    """The newest sendings first."""
    from producers.campaigns import list_sendings

    rows = list_sendings(state=state, account=account, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        say(
            f"{_dash(row['sending_id'])}  {row['state']:<10}  since {row['state_since']}  message "
            f"{row['message_id'] or '-'} list {row['list_id'] or '-'}  sent {_dash(row['sent'])}"
            f"  job {row['job_id'] or '-'}" + (f"  ({row['note']})" if row.get("note") else "")
        )


@sendings_group.command("show")
@click.argument("sending_id", type=int)
@click.option("--account", default="default", show_default=True)
@json_option
def sendings_show(sending_id: int, account: str, as_json: bool) -> None:
    """A sending: its states over time, and the recipients MailUp left out."""
    from producers.campaigns import sending_details

    found = sending_details(sending_id, account=account)
    if found is None:
        click.echo(f"the ledger knows no sending {sending_id} of account {account}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    say(
        f"sending {found['sending_id']}  {found['state']}  message {_dash(found['message_id'])} "
        f"list {_dash(found['list_id'])}  sent {_dash(found['sent'])}  job {_dash(found['job_id'])}"
    )
    for state in found["states"]:
        first = state["first_available_at"]
        say(f"  {state['at']}  {state['state']}" + (f" (first date {first})" if first else ""))
    for problem in ("invalid", "unprocessed"):
        skipped = found[f"{problem}_recipients"]
        click.echo(f"  {problem} recipients: {len(skipped)}")
        for recipient in skipped:
            say(f"    {recipient['email']}  {recipient['reason']}")


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


@sendings_group.command("stop")
@click.argument("sending_id", type=int)
@common
def sendings_stop(**kwargs: Any) -> None:
    """Queue stopping a planned or going sending (one stop per 30 s per account)."""
    from producers.campaigns import stop_sending

    submit(stop_sending, {**OPTION_FOR_FIELD, "sending_id": "SENDING_ID"}, **kwargs)


@sendings_group.command("delete")
@click.argument("sending_id", type=int)
@common
def sendings_delete(**kwargs: Any) -> None:
    """Queue deleting a sending; one still planned or going is stopped first."""
    from producers.campaigns import delete_sending

    submit(delete_sending, {**OPTION_FOR_FIELD, "sending_id": "SENDING_ID"}, **kwargs)
