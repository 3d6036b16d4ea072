"""Job kinds for a list's email messages — ``message_create``, ``message_update``,
``message_copy``, ``message_visibility`` (publish, unpublish) and ``message_dynamic_fields`` —,
their tags (``tag_create``, ``tag_rename``, ``tag_delete``) and attachments
(``attachment_add``, ``attachment_delete``); the ledger's mirror of the messages
(``messages``) and the reads operators run.

MailUp answers 400 to a message naming a tag its list lacks: ``message_create`` and
``message_update`` look the tags up first, and refuse an unknown one before any write. A new
message or copy whose answer was lost cannot be found again (nothing but its id tells it
from another of the same subject): the job ends in doubt. Tag names are unique per list
here, so a tag creation whose answer was lost is reconciled by name (see ``groups``).
Attachment bytes are staged beside the job (``job_parts``), never in the payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, model_validator
from sqlalchemy import Connection, insert, select, update

from worker.engine.clients import console_client
from worker.engine.creation import Making, Seen, create, refuse_taken
from worker.engine.kind import FieldError, JobContext, JobKind, Payload, Refused, Result
from worker.jobs.email import Part
from worker.jobs.fields import HeaderText, ListId, MailUpId
from worker.ledger import store
from worker.ledger.db import connection
from worker.ledger.models import EmailMessage, JobPart, table, utcnow
from worker.ledger.store import Statement
from worker.mailup.errors import MailUpError
from worker.mailup.messages import (
    SLOTS,
    Attachment,
    DynamicField,
    MessageChanges,
    MessageDetails,
    Messages,
    MessageSummary,
    NewMessage,
    Tag,
    Which,
)
from worker.settings import Settings

Subject = Annotated[
    HeaderText, StringConstraints(strip_whitespace=True, min_length=1, max_length=998)
]
Html = Annotated[str, StringConstraints(min_length=1)]
Notes = Annotated[str, StringConstraints(max_length=1000)]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
# A tag by id, or by name (a name that is all digits and names no tag is taken as an id).
TagKey = MailUpId | TagName
Slot = Annotated[int, Field(ge=SLOTS.start, le=SLOTS.stop - 1)]
ATTACHMENT = "attachment"  # their role in job_parts


class CreateMessage(Payload):
    list_id: ListId
    subject: Subject
    html: Html
    notes: Notes = ""
    tags: list[TagKey] = Field(default_factory=list)
    # Default values of recipient fields, by field id: giving one enables dynamic fields.
    fields: dict[int, str] = Field(default_factory=dict)
    use_dynamic_fields: bool = False
    # Added into slots 1, 2, … once the message is made; the bytes are in ``job_parts``.
    attachments: list[Part] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if len(self.attachments) > len(SLOTS):
            raise FieldError(
                "attachments",
                f"{len(self.attachments)} files; a message has {len(SLOTS)} attachment slots",
            )
        return self


class UpdateMessage(Payload):
    list_id: ListId
    message_id: MailUpId
    subject: Subject | None = None
    html: Html | None = None
    notes: Notes | None = None
    tags: list[TagKey] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.tags == []:
            raise FieldError(
                "tags", "MailUp cannot remove every tag of a message: no tags leaves them as is"
            )
        if not self.model_dump(exclude={"list_id", "message_id"}, exclude_none=True):
            raise FieldError("subject", "give a subject, html, notes or tags to change")
        return self


class CopyMessage(Payload):
    list_id: ListId
    message_id: MailUpId
    subject: Subject | None = None
    notes: Notes | None = None


class MessageVisibility(Payload):
    list_id: ListId
    message_id: MailUpId
    published: bool


class MessageDynamicFields(Payload):
    list_id: ListId
    message_id: MailUpId
    enabled: bool


class CreateTag(Payload):
    list_id: ListId
    name: TagName


class RenameTag(Payload):
    list_id: ListId
    tag_id: MailUpId
    name: TagName


class DeleteTag(Payload):
    list_id: ListId
    tag_id: MailUpId


class AddAttachment(Payload):
    list_id: ListId
    message_id: MailUpId
    slot: Slot
    attachment: Part


class DeleteAttachment(Payload):
    list_id: ListId
    message_id: MailUpId
    slot: Slot


# --- attachment bytes beside the job ----------------------------------------------------


def _parts(payload: CreateMessage | AddAttachment) -> list[Part]:
    return payload.attachments if isinstance(payload, CreateMessage) else [payload.attachment]


_INSERT_PART = insert(table(JobPart))


def stage(job_id: str, payload: CreateMessage | AddAttachment, contents: Any) -> list[Statement]:
    """The files' bytes (``contents``: one ``bytes`` per part, in payload order)."""
    rows: list[Statement] = []
    for position, part in enumerate(_parts(payload)):
        where = {"job_id": job_id, "role": ATTACHMENT, "position": position}
        rows.append(
            (_INSERT_PART, {**where, "filename": part.filename, "body": contents[position]})
        )
    return rows


def _stored(context: JobContext) -> list[bytes]:
    with connection(context.settings.ledger_url) as db:
        rows = db.execute(
            select(JobPart.body)
            .where(JobPart.job_id == context.claim.job_id, JobPart.role == ATTACHMENT)
            .order_by(JobPart.position)
        )
        return [row.body for row in rows]


# --- messages -----------------------------------------------------------------------------


def execute_create(context: JobContext, payload: CreateMessage) -> Result:
    settings, account = context.settings, context.claim.account
    messages = Messages(console_client(settings, account))
    tags = _resolve(messages, payload.list_id, payload.tags) if payload.tags else ()
    contents = _stored(context) if payload.attachments else []
    new = NewMessage(
        subject=payload.subject,
        html=payload.html,
        notes=payload.notes,
        fields=tuple(DynamicField(i, v) for i, v in payload.fields.items()),
        use_dynamic_fields=payload.use_dynamic_fields,
        tags=tags,
    )
    made = create(context, _making_message(messages, payload.list_id, new))
    found = made.item
    message = found if isinstance(found, MessageDetails) else messages.details(*_ids(found))
    attached: list[Attachment] = []
    pairs = zip(payload.attachments, contents, strict=True)
    for slot, (part, content) in enumerate(pairs, start=SLOTS.start):
        try:
            attached = messages.add_attachment(
                payload.list_id, message.id, slot, part.filename, content
            )
        except MailUpError as exc:
            # Trying the job again would make a second message: it fails, naming this one.
            with connection(settings.ledger_url) as db:
                mirror(db, account, [message])
            raise Refused(
                "attachments_incomplete",
                f"message {message.id} was created in list {payload.list_id}, but "
                f"{part.filename!r} could not go into slot {slot} ({exc.message}): add it "
                f"with `mailup-jobs messages attachments add --list-id {payload.list_id} "
                f"--message-id {message.id} --slot {slot} FILE`",
            ) from None
    outcome = _outcome(message) | {
        "tags": [t.name for t in tags],
        "attachments": [{"slot": a.slot, "name": a.name} for a in attached],
        "reconciled": made.reconciled,
    }
    return Result(outcome=outcome, record=lambda db: mirror(db, account, [message]))


def _making_message(
    messages: Messages, list_id: int, new: NewMessage
) -> Making[MessageSummary | MessageDetails]:
    """A message of the list with that subject (subjects need not be unique: one made since
    the call, by no other job, is this one's)."""

    def look(left_at: datetime | None) -> list[Seen[MessageSummary | MessageDetails]]:
        found = messages.read(list_id)
        return [Seen(f"message:{m.id}", m) for m in found if m.subject == new.subject]

    def make() -> Seen[MessageSummary | MessageDetails]:
        message = messages.create(list_id, new)
        return Seen(f"message:{message.id}", message)

    return Making(look, make, f"a message {new.subject!r} in list {list_id}")


def _ids(message: MessageSummary) -> tuple[int, int]:
    return message.list_id, message.id


def execute_update(context: JobContext, payload: UpdateMessage) -> Result:
    account = context.claim.account
    messages = Messages(console_client(context.settings, account))
    tags = _resolve(messages, payload.list_id, payload.tags) if payload.tags else ()
    changes = MessageChanges(payload.subject, payload.html, payload.notes, tags)
    message = messages.update(payload.list_id, payload.message_id, changes)
    return _mirrored(account, message)


def execute_copy(context: JobContext, payload: CopyMessage) -> Result:
    account = context.claim.account
    messages = Messages(console_client(context.settings, account))
    context.calling()
    # As for a creation, a lost answer leaves the job in doubt: a copy may exist.
    copy = messages.copy(
        payload.list_id, payload.message_id, subject=payload.subject, notes=payload.notes
    )
    outcome = _outcome(copy) | {"copied_from": payload.message_id}
    return Result(outcome=outcome, record=lambda db: mirror(db, account, [copy]))


def execute_visibility(context: JobContext, payload: MessageVisibility) -> Result:
    account = context.claim.account
    Messages(console_client(context.settings, account)).set_visibility(
        payload.list_id, payload.message_id, payload.published
    )
    outcome = {
        "list_id": payload.list_id,
        "message_id": payload.message_id,
        "published": payload.published,
    }

    def record(db: Connection) -> None:
        db.execute(
            update(EmailMessage)
            .where(EmailMessage.account == account, EmailMessage.message_id == payload.message_id)
            .values(published=payload.published, last_seen_at=utcnow())
        )

    return Result(outcome=outcome, record=record)


def execute_dynamic_fields(context: JobContext, payload: MessageDynamicFields) -> Result:
    account = context.claim.account
    messages = Messages(console_client(context.settings, account))
    message = messages.set_dynamic_fields(payload.list_id, payload.message_id, payload.enabled)
    return _mirrored(account, message)


def _resolve(messages: Messages, list_id: int, wanted: Sequence[int | str]) -> tuple[Tag, ...]:
    """The list's tags that ``wanted`` names, by name or id; an unknown one is refused."""
    known = messages.tags(list_id)
    by_name, by_id = {t.name: t for t in known}, {t.id: t for t in known}
    found: dict[int, Tag] = {}
    unknown: list[str] = []
    for key in wanted:
        tag = by_name.get(key) if isinstance(key, str) else None
        if tag is None and str(key).isascii() and str(key).isdigit():  # not "²": int() fails
            tag = by_id.get(int(key))
        if tag is None:
            unknown.append(repr(key))
        else:
            found[tag.id] = tag
    if unknown:
        raise Refused(
            "tag_unknown",
            f"list {list_id} has no tag {', '.join(unknown)}: create it first "
            f"(mailup-jobs messages tags create --list-id {list_id} --name NAME)",
        )
    return tuple(found.values())


def _outcome(message: MessageDetails) -> dict[str, Any]:
    return {
        "list_id": message.list_id,
        "message_id": message.id,
        "subject": message.subject,
        "notes": message.notes,
        "use_dynamic_fields": message.use_dynamic_fields,
    }


def _mirrored(account: str, message: MessageDetails) -> Result:
    return Result(
        outcome=_outcome(message) | {"tags": [t.name for t in message.tags]},
        record=lambda db: mirror(db, account, [message]),
    )


# --- tags ---------------------------------------------------------------------------------


def execute_create_tag(context: JobContext, payload: CreateTag) -> Result:
    messages = Messages(console_client(context.settings, context.claim.account))
    list_id, name = payload.list_id, payload.name

    def look(left_at: datetime | None) -> list[Seen[Tag]]:
        return [Seen(f"tag:{t.id}", t) for t in messages.tags(list_id) if t.name == name]

    def make() -> Seen[Tag]:
        tag = messages.create_tag(list_id, name)
        return Seen(f"tag:{tag.id}", tag)

    what = f"a tag named {name!r} in list {list_id}"
    made = create(context, Making(look, make, what), check=refuse_taken("tag_exists", what))
    return _tag_result(list_id, made.item, reconciled=made.reconciled)


def execute_rename_tag(context: JobContext, payload: RenameTag) -> Result:
    messages = Messages(console_client(context.settings, context.claim.account))
    known = messages.tags(payload.list_id)
    current = next((t for t in known if t.id == payload.tag_id), None)
    if current is None:
        raise Refused("tag_unknown", f"list {payload.list_id} has no tag {payload.tag_id}")
    clash = next((t for t in known if t.name == payload.name and t.id != current.id), None)
    if clash is not None:
        raise Refused(
            "tag_exists", f"list {payload.list_id} has a tag named {payload.name!r} (id {clash.id})"
        )
    renamed = Tag(current.id, payload.name, current.enabled)
    tag = messages.rename_tag(payload.list_id, renamed)
    return _tag_result(payload.list_id, tag, reconciled=False)


def execute_delete_tag(context: JobContext, payload: DeleteTag) -> Result:
    messages = Messages(console_client(context.settings, context.claim.account))
    context.deleting(lambda: messages.delete_tag(payload.list_id, payload.tag_id))
    outcome = {"list_id": payload.list_id, "tag_id": payload.tag_id, "deleted": True}
    return Result(outcome=outcome)


def _tag_result(list_id: int, tag: Tag, *, reconciled: bool) -> Result:
    outcome = {
        "list_id": list_id,
        "tag_id": tag.id,
        "name": tag.name,
        "enabled": tag.enabled,
        "reconciled": reconciled,
    }
    return Result(outcome=outcome)


# --- attachments --------------------------------------------------------------------------


def execute_add_attachment(context: JobContext, payload: AddAttachment) -> Result:
    messages = Messages(console_client(context.settings, context.claim.account))
    [content] = _stored(context)
    after = messages.add_attachment(
        payload.list_id, payload.message_id, payload.slot, payload.attachment.filename, content
    )
    return _attachments_result(payload.list_id, payload.message_id, payload.slot, after)


def execute_delete_attachment(context: JobContext, payload: DeleteAttachment) -> Result:
    messages = Messages(console_client(context.settings, context.claim.account))
    after = messages.delete_attachment(payload.list_id, payload.message_id, payload.slot)
    return _attachments_result(payload.list_id, payload.message_id, payload.slot, after)


def _attachments_result(
    list_id: int, message_id: int, slot: int, after: list[Attachment]
) -> Result:
    outcome = {
        "list_id": list_id,
        "message_id": message_id,
        "slot": slot,
        "attachments": [{"slot": a.slot, "name": a.name} for a in after],
    }
    return Result(outcome=outcome)


# --- the mirror ---------------------------------------------------------------------------


def mirror(
    db: Connection,
    account: str,
    found: Sequence[MessageDetails | MessageSummary],
    *,
    published: bool | None = None,
) -> None:
    """What MailUp just said of these messages; ``published`` when the read tells it."""
    now = utcnow()
    for message in found:
        values: dict[str, Any] = {
            "list_id": message.list_id,
            "subject": message.subject,
            "notes": message.notes,
            "last_seen_at": now,
        }
        if published is not None:
            values["published"] = published
        where = (EmailMessage.account == account, EmailMessage.message_id == message.id)
        if db.scalar(select(EmailMessage.created_at).where(*where)) is None:
            store.upsert(
                db, EmailMessage, account=account, message_id=message.id, created_at=now, **values
            )
        else:
            db.execute(update(EmailMessage).where(*where).values(**values))


def list_of(settings: Settings, account: str, message_id: int) -> int | None:
    """The list a message belongs to, as far as the ledger knows."""
    with connection(settings.ledger_url) as db:
        return db.scalar(
            select(EmailMessage.list_id).where(
                EmailMessage.account == account, EmailMessage.message_id == message_id
            )
        )


# --- reads, for operators ---------------------------------------------------------------


def read(
    settings: Settings,
    account: str,
    list_id: int,
    which: Which = "all",
    *,
    filterby: str | None = None,
    orderby: str | None = None,
    tags: str | None = None,
) -> list[MessageSummary]:
    """A list's messages from MailUp (all, published or archived); mirrored."""
    found = Messages(console_client(settings, account)).read(
        list_id, which, filterby=filterby, orderby=orderby, tags=tags
    )
    with connection(settings.ledger_url) as db:
        mirror(db, account, found, published=True if which == "published" else None)
    return found


def details(settings: Settings, account: str, list_id: int, message_id: int) -> MessageDetails:
    found = Messages(console_client(settings, account)).details(list_id, message_id)
    with connection(settings.ledger_url) as db:
        mirror(db, account, [found])
    return found


def tags(settings: Settings, account: str, list_id: int) -> list[Tag]:
    return Messages(console_client(settings, account)).tags(list_id)


def attachments(
    settings: Settings, account: str, list_id: int, message_id: int
) -> list[Attachment]:
    return Messages(console_client(settings, account)).attachments(list_id, message_id)


CREATE = JobKind("message_create", CreateMessage, execute_create, stage=stage)
UPDATE = JobKind("message_update", UpdateMessage, execute_update)
COPY = JobKind("message_copy", CopyMessage, execute_copy)
VISIBILITY = JobKind("message_visibility", MessageVisibility, execute_visibility)
DYNAMIC_FIELDS = JobKind("message_dynamic_fields", MessageDynamicFields, execute_dynamic_fields)
TAG_CREATE = JobKind("tag_create", CreateTag, execute_create_tag)
TAG_RENAME = JobKind("tag_rename", RenameTag, execute_rename_tag)
TAG_DELETE = JobKind("tag_delete", DeleteTag, execute_delete_tag)
ATTACHMENT_ADD = JobKind("attachment_add", AddAttachment, execute_add_attachment, stage=stage)
ATTACHMENT_DELETE = JobKind("attachment_delete", DeleteAttachment, execute_delete_attachment)
