"""Job kinds ``group_create``, ``group_update``, ``group_delete`` and ``group_clear`` (remove
every recipient from a group), and the ledger's mirror of the lists' groups (``groups``).

Group names are unique per list here, so that a creation whose answer was lost is found
again by name (``worker.engine.creation``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import Field, model_validator
from sqlalchemy import Connection, select, update

from worker.engine.clients import console_client
from worker.engine.creation import Making, Seen, create, refuse_taken
from worker.engine.kind import FieldError, JobContext, JobKind, Payload, Refused, Result
from worker.jobs.fields import ListId, MailUpId
from worker.jobs.lists import Name
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import ListGroup, utcnow
from worker.mailup.lists import Group, Groups
from worker.settings import Settings


class CreateGroup(Payload):
    list_id: ListId
    name: Name
    notes: str = Field(default="", max_length=1000)


class UpdateGroup(Payload):
    list_id: ListId
    group_id: MailUpId
    name: Name | None = None
    notes: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.name is None and self.notes is None:
            raise FieldError("name", "give a new name, new notes or both")
        return self


class GroupRef(Payload):
    """A group of a list, to delete or to empty."""

    list_id: ListId
    group_id: MailUpId


def execute_create(context: JobContext, payload: CreateGroup) -> Result:
    groups = Groups(console_client(context.settings, context.claim.account))
    list_id, name = payload.list_id, payload.name

    def look(left_at: datetime | None) -> list[Seen[Group]]:
        return [Seen(f"group:{g.id}", g) for g in groups.read(list_id) if g.name == name]

    def make() -> Seen[Group]:
        group = groups.create(list_id, name, payload.notes)
        return Seen(f"group:{group.id}", group)

    what = f"a group named {name!r} in list {list_id}"
    made = create(context, Making(look, make, what), check=refuse_taken("group_exists", what))
    return _result(context.claim.account, made.item, reconciled=made.reconciled)


def execute_update(context: JobContext, payload: UpdateGroup) -> Result:
    account = context.claim.account
    groups = Groups(console_client(context.settings, account))
    name, notes = payload.name, payload.notes
    if name is None or notes is None:  # MailUp takes both: keep the one not asked to change
        current = next((g for g in groups.read(payload.list_id) if g.id == payload.group_id), None)
        if current is None:
            raise Refused("group_unknown", _unknown(payload))
        name, notes = name or current.name, current.notes if notes is None else notes
    group = groups.update(payload.list_id, payload.group_id, name, notes)
    return _result(account, group, reconciled=False)


def execute_delete(context: JobContext, payload: GroupRef) -> Result:
    account = context.claim.account
    groups = Groups(console_client(context.settings, account))
    context.deleting(lambda: groups.delete(payload.list_id, payload.group_id))
    return Result(
        outcome={"list_id": payload.list_id, "group_id": payload.group_id, "deleted": True},
        record=lambda db: forget(db, account, payload.group_id),
    )


def execute_clear(context: JobContext, payload: GroupRef) -> Result:
    groups = Groups(console_client(context.settings, context.claim.account))
    removed = groups.clear(payload.list_id, payload.group_id)
    outcome = {"list_id": payload.list_id, "group_id": payload.group_id, "removed": removed}
    return Result(outcome=outcome)


def _result(account: str, group: Group, *, reconciled: bool) -> Result:
    outcome = {
        "list_id": group.list_id,
        "group_id": group.id,
        "name": group.name,
        "notes": group.notes,
        "reconciled": reconciled,
    }
    return Result(outcome=outcome, record=lambda db: mirror(db, account, [group]))


def _unknown(payload: GroupRef | UpdateGroup) -> str:
    return f"list {payload.list_id} has no group {payload.group_id}"


# --- the mirror ---------------------------------------------------------------------------


def mirror(db: Connection, account: str, found: list[Group]) -> None:
    now = utcnow()
    for group in found:
        values: dict[str, Any] = {
            "list_id": group.list_id,
            "name": group.name,
            "notes": group.notes,
            "deletable": group.deletable,
            "last_seen_at": now,
            "deleted_at": None,
        }
        where = (ListGroup.account == account, ListGroup.group_id == group.id)
        if db.scalar(select(ListGroup.created_at).where(*where)) is None:
            store.upsert(
                db, ListGroup, account=account, group_id=group.id, created_at=now, **values
            )
        else:
            db.execute(update(ListGroup).where(*where).values(**values))


def forget(db: Connection, account: str, group_id: int) -> None:
    db.execute(
        update(ListGroup)
        .where(ListGroup.account == account, ListGroup.group_id == group_id)
        .values(deleted_at=utcnow())
    )


def list_of(settings: Settings, account: str, group_id: int) -> int | None:
    """The list a group belongs to, as far as the ledger knows."""
    with connection(settings.ledger_url) as db:
        return db.scalar(
            select(ListGroup.list_id).where(
                ListGroup.account == account,
                ListGroup.group_id == group_id,
                ListGroup.deleted_at.is_(None),
            )
        )


def read(settings: Settings, account: str, list_id: int) -> list[Group]:
    """A list's groups from MailUp; mirrored."""
    found = Groups(console_client(settings, account)).read(list_id)
    with connection(settings.ledger_url) as db:
        mirror(db, account, found)
    return found


CREATE = JobKind("group_create", CreateGroup, execute_create)
UPDATE = JobKind("group_update", UpdateGroup, execute_update)
DELETE = JobKind("group_delete", GroupRef, execute_delete)
CLEAR = JobKind("group_clear", GroupRef, execute_clear)
