"""Job kinds ``list_create``, ``list_update`` and ``list_delete``, the ledger's mirror of an
account's lists (``lists``), and the reads operators run through the shared token.

List names are unique per account here: a creation whose answer was lost is reconciled by
looking for the list by name — found, it is this job's list; provably absent, the job tries
again — instead of being left in doubt or creating a second list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, model_validator
from sqlalchemy import Connection, select, update

from worker.engine.clients import console_client
from worker.engine.creation import Making, Seen, create, refuse_taken
from worker.engine.kind import FieldError, JobContext, JobKind, Payload, Result
from worker.jobs.fields import EmailAddress, ListId
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import MailingList, utcnow
from worker.mailup.lists import Country, ListDetails, ListFields, Lists, ListSummary, TimeZone
from worker.settings import Settings

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
GuidText = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")]


class ListSettings(Payload):
    """The optional settings of a list, on creation and update."""

    reply_to: EmailAddress | None = None
    description: str | None = Field(default=None, max_length=1000)
    time_zone_code: str | None = Field(default=None, max_length=40)
    sms_sender_name: str | None = Field(
        default=None, pattern=r"^(\+?[0-9]{6,15}|[A-Za-z0-9]{1,11})$"
    )
    default_prefix: str | None = Field(default=None, pattern=r"^(00|\+)[0-9]{1,4}$")


class CreateList(ListSettings):
    """A list with MailUp's mandatory sender details; the rest is inherited from list
    ``settings_from``, or from the account's default settings."""

    name: Name
    owner_email: EmailAddress
    sender_name: Text
    company_name: Text
    contact_name: Text
    address: Text
    city: Text
    country_code: CountryCode
    permission_reminder: Text
    website_url: Text
    business: bool = False
    customer: bool = True
    settings_from: ListId | None = None


class UpdateList(ListSettings):
    list_id: ListId
    name: Name | None = None
    owner_email: EmailAddress | None = None
    sender_name: Text | None = None
    company_name: Text | None = None
    contact_name: Text | None = None
    address: Text | None = None
    city: Text | None = None
    country_code: CountryCode | None = None
    permission_reminder: Text | None = None
    website_url: Text | None = None
    business: bool | None = None
    customer: bool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_dump(exclude={"list_id"}, exclude_none=True):
            raise FieldError("name", "give at least one field to change")
        return self


class DeleteList(Payload):
    list_id: ListId
    # MailUp asks for it in If-Match; when omitted, the list's own (from MailUp) is sent.
    list_guid: GuidText | None = None


def _fields(payload: CreateList | UpdateList) -> ListFields:
    return ListFields(**payload.model_dump(exclude={"list_id", "settings_from"}, exclude_none=True))


def execute_create(context: JobContext, payload: CreateList) -> Result:
    settings, account = context.settings, context.claim.account
    lists = Lists(console_client(settings, account))

    def look(left_at: datetime | None) -> list[Seen[ListSummary | ListDetails]]:
        return [Seen(f"list:{item.id}", item) for item in lists.read() if item.name == payload.name]

    def make() -> Seen[ListSummary | ListDetails]:
        details = lists.create(_fields(payload), settings_from=payload.settings_from)
        return Seen(f"list:{details.id}", details)

    what = f"a list named {payload.name!r}"
    made = create(context, Making(look, make, what), check=refuse_taken("list_exists", what))
    found = made.item
    details = found if isinstance(found, ListDetails) else lists.details(found.id)
    return _created(settings, account, details, adopted=made.reconciled)


def _created(settings: Settings, account: str, details: ListDetails, *, adopted: bool) -> Result:
    outcome = {"list_id": details.id, "list_guid": details.guid, "name": details.name}
    return Result(
        outcome={**outcome, "reconciled": adopted},
        record=lambda db: mirror(db, account, [details]),
    )


def execute_update(context: JobContext, payload: UpdateList) -> Result:
    account = context.claim.account
    lists = Lists(console_client(context.settings, account))
    details = lists.update(payload.list_id, _fields(payload))
    return Result(
        outcome={"list_id": details.id, "name": details.name, "owner_email": details.owner_email},
        record=lambda db: mirror(db, account, [details]),
    )


def execute_delete(context: JobContext, payload: DeleteList) -> Result:
    account = context.claim.account
    lists = Lists(console_client(context.settings, account))

    def delete() -> None:
        lists.delete(payload.list_id, payload.list_guid or lists.details(payload.list_id).guid)

    context.deleting(delete)
    return Result(
        outcome={"list_id": payload.list_id, "deleted": True},
        record=lambda db: forget(db, account, payload.list_id),
    )


# --- the mirror ---------------------------------------------------------------------------


def mirror(db: Connection, account: str, found: list[ListDetails] | list[ListSummary]) -> None:
    """What MailUp just said of these lists: new ones added, known ones refreshed."""
    now = utcnow()
    for item in found:
        known = db.scalar(
            select(MailingList.created_at).where(
                MailingList.account == account, MailingList.list_id == item.id
            )
        )
        owner = getattr(item, "owner_email", None)
        values: dict[str, Any] = {"name": item.name, "guid": item.guid, "last_seen_at": now}
        if owner is not None:
            values["owner_email"] = owner
        if known is None:
            store.upsert(
                db, MailingList, account=account, list_id=item.id, created_at=now, **values
            )
        else:
            db.execute(
                update(MailingList)
                .where(MailingList.account == account, MailingList.list_id == item.id)
                .values(deleted_at=None, **values)
            )


def forget(db: Connection, account: str, list_id: int) -> None:
    db.execute(
        update(MailingList)
        .where(MailingList.account == account, MailingList.list_id == list_id)
        .values(deleted_at=utcnow())
    )


def mirrored(settings: Settings, account: str) -> list[dict[str, Any]]:
    """The lists as the ledger last saw them (deleted ones left out)."""
    with connection(settings.ledger_url) as db:
        rows = db.execute(
            select(MailingList)
            .where(MailingList.account == account, MailingList.deleted_at.is_(None))
            .order_by(MailingList.list_id)
        )
        return [
            {
                "list_id": r.list_id,
                "name": r.name,
                "guid": r.guid,
                "owner_email": r.owner_email,
                "created_at": r.created_at.isoformat(),
                "last_seen_at": r.last_seen_at.isoformat(),
            }
            for r in rows
        ]


# --- reads, for operators ---------------------------------------------------------------


def read(
    settings: Settings, account: str, *, filterby: str | None = None, orderby: str | None = None
) -> list[ListSummary]:
    """The account's lists from MailUp (filtered, ordered as MailUp does); mirrored."""
    found = Lists(console_client(settings, account)).read(filterby=filterby, orderby=orderby)
    with connection(settings.ledger_url) as db:
        mirror(db, account, found)
    return found


def details(settings: Settings, account: str, list_id: int) -> ListDetails:
    found = Lists(console_client(settings, account)).details(list_id)
    with connection(settings.ledger_url) as db:
        mirror(db, account, [found])
    return found


def countries(settings: Settings, account: str) -> list[Country]:
    return Lists(console_client(settings, account)).countries()


def time_zones(settings: Settings, account: str) -> list[TimeZone]:
    return Lists(console_client(settings, account)).time_zones()


CREATE = JobKind("list_create", CreateList, execute_create)
UPDATE = JobKind("list_update", UpdateList, execute_update)
DELETE = JobKind("list_delete", DeleteList, execute_delete)
