"""Lists, groups and recipients: a job for every change, and the reads operators run
directly (through the account's shared OAuth2 token and its 5 calls per second).

    from producers.lists import create_group, add_recipient
    create_group(list_id=1, name="Customers")
    add_recipient(list_id=1, email="ada@example.com", confirm_email=True)
"""

from __future__ import annotations

from typing import Any

from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob
from worker.engine.kind import Payload
from worker.jobs import groups, lists, recipients
from worker.jobs.groups import CreateGroup, GroupRef, UpdateGroup
from worker.jobs.lists import CreateList, DeleteList, UpdateList
from worker.jobs.recipients import AddRecipient, RecipientRef, Target
from worker.mailup.recipients import Status
from worker.settings import DEFAULT_ACCOUNT, get_settings


def _queue(kind: str, payload: Payload, account: str, job: dict[str, Any]) -> str:
    return enqueue(kind, payload, account, **job)


def create_list(*, account: str = DEFAULT_ACCOUNT, **fields: Any) -> str:
    """Queue a list's creation: ``name``, ``owner_email``, ``sender_name``, ``company_name``,
    ``contact_name``, ``address``, ``city``, ``country_code``, ``permission_reminder``,
    ``website_url`` (MailUp's mandatory sender details), and optionally ``reply_to``,
    ``business``, ``customer``, ``description``, ``time_zone_code``, ``sms_sender_name``,
    ``default_prefix``, ``settings_from`` (a list to inherit the other settings from).
    Also ``priority`` and ``idempotency_key``."""
    job = _job_options(fields)
    return _queue("list_create", validate(CreateList, **fields), account, job)


def update_list(list_id: int, *, account: str = DEFAULT_ACCOUNT, **changes: Any) -> str:
    """Queue changes to a list (any field of ``create_list``)."""
    job = _job_options(changes)
    return _queue("list_update", validate(UpdateList, list_id=list_id, **changes), account, job)


def delete_list(
    list_id: int, *, list_guid: str | None = None, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    """Queue a list's deletion. With ``list_guid``, MailUp deletes only if it is the list's
    (a safety catch against a wrong id); without, the list's own is sent."""
    return _queue(
        "list_delete", validate(DeleteList, list_id=list_id, list_guid=list_guid), account, job
    )


def create_group(
    *, list_id: int, name: str, notes: str = "", account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    payload = validate(CreateGroup, list_id=list_id, name=name, notes=notes)
    return _queue("group_create", payload, account, job)


def update_group(
    *,
    list_id: int,
    group_id: int,
    name: str | None = None,
    notes: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    payload = validate(UpdateGroup, list_id=list_id, group_id=group_id, name=name, notes=notes)
    check_group(account, payload.list_id, payload.group_id)
    return _queue("group_update", payload, account, job)


def delete_group(*, list_id: int, group_id: int, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    payload = validate(GroupRef, list_id=list_id, group_id=group_id)
    check_group(account, list_id, group_id)
    return _queue("group_delete", payload, account, job)


def clear_group(*, list_id: int, group_id: int, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    """Queue removing every recipient from a group (they stay on the list)."""
    payload = validate(GroupRef, list_id=list_id, group_id=group_id)
    check_group(account, list_id, group_id)
    return _queue("group_clear", payload, account, job)


def add_recipient(
    *,
    list_id: int,
    email: str,
    group_id: int | None = None,
    name: str | None = None,
    mobile_number: str | None = None,
    mobile_prefix: str | None = None,
    fields: dict[int, str] | None = None,
    confirm_email: bool = False,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue adding one recipient to a list (or to one of its groups): subscribed, or with
    ``confirm_email`` pending until they confirm by the email MailUp sends."""
    payload = validate(
        AddRecipient,
        list_id=list_id,
        group_id=group_id,
        email=email,
        name=name,
        mobile_number=mobile_number,
        mobile_prefix=mobile_prefix,
        fields=fields or {},
        confirm_email=confirm_email,
    )
    if group_id is not None:
        check_group(account, list_id, group_id)
    return _queue("recipient_add", payload, account, job)


def subscribe(
    *,
    list_id: int,
    recipient_id: int,
    group_id: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue subscribing a known recipient to a list (or adding them to a group)."""
    return _subscription("subscribe", list_id, group_id, recipient_id, account, job)


def unsubscribe(
    *,
    list_id: int,
    recipient_id: int,
    group_id: int | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue unsubscribing a recipient from a list (or removing them from a group)."""
    return _subscription("unsubscribe", list_id, group_id, recipient_id, account, job)


def _subscription(
    operation: str,
    list_id: int,
    group_id: int | None,
    recipient_id: int,
    account: str,
    job: dict[str, Any],
) -> str:
    payload = validate(
        RecipientRef,
        list_id=list_id,
        group_id=group_id,
        recipient_id=recipient_id,
        operation=operation,
    )
    if group_id is not None:
        check_group(account, list_id, group_id)
    return _queue("recipient_subscription", payload, account, job)


def check_group(account: str, list_id: int, group_id: int) -> None:
    """A group the ledger knows in another list is refused at the door."""
    known = groups.list_of(get_settings(), account, group_id)
    if known is not None and known != list_id:
        raise InvalidJob({"group_id": f"group {group_id} belongs to list {known}, not {list_id}"})


def _job_options(fields: dict[str, Any]) -> dict[str, Any]:
    """Take the job's own options out of a kind's fields."""
    return {name: fields.pop(name) for name in ("priority", "idempotency_key") if name in fields}


# --- reads, run directly ---------------------------------------------------------------


def read_lists(
    *, filterby: str | None = None, orderby: str | None = None, account: str = DEFAULT_ACCOUNT
) -> list[dict[str, Any]]:
    found = lists.read(get_settings(), account, filterby=filterby, orderby=orderby)
    return [
        {
            "list_id": i.id,
            "name": i.name,
            "guid": i.guid,
            "company": i.company,
            "description": i.description,
        }
        for i in found
    ]


def list_details(list_id: int, *, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """Everything MailUp says of a list, as MailUp names it."""
    return dict(lists.details(get_settings(), account, list_id).dto)


def countries(*, account: str = DEFAULT_ACCOUNT) -> list[dict[str, str]]:
    return [{"code": c.code, "name": c.name} for c in lists.countries(get_settings(), account)]


def time_zones(*, account: str = DEFAULT_ACCOUNT) -> list[dict[str, str]]:
    return [
        {"code": z.code, "description": z.description, "offset": z.offset}
        for z in lists.time_zones(get_settings(), account)
    ]


def read_groups(list_id: int, *, account: str = DEFAULT_ACCOUNT) -> list[dict[str, Any]]:
    return [
        {
            "group_id": g.id,
            "list_id": g.list_id,
            "name": g.name,
            "notes": g.notes,
            "deletable": g.deletable,
        }
        for g in groups.read(get_settings(), account, list_id)
    ]


def read_recipients(
    *,
    list_id: int,
    group_id: int | None = None,
    status: Status = "subscribed",
    account: str = DEFAULT_ACCOUNT,
) -> list[dict[str, Any]]:
    """A list's recipients of one status, or a group's members."""
    target = validate(Target, list_id=list_id, group_id=group_id)
    return recipients.read(get_settings(), account, target, status)
