"""A list's email messages, their tags and attachments: a job for every change, and the
reads operators run directly (through the account's shared OAuth2 token).

    from producers import Attachment
    from producers.messages import create_message, create_tag, publish_message
    create_tag(list_id=1, name="welcome")
    create_message(list_id=1, subject="Hello [Name]", html="<p>Hi!</p>", tags=["welcome"],
                   attachments=[Attachment("terms.pdf", pdf_bytes)])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from producers.email import Attachment
from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob
from worker.engine.kind import Payload
from worker.jobs import messages
from worker.jobs.email import Part
from worker.jobs.messages import (
    AddAttachment,
    CopyMessage,
    CreateMessage,
    CreateTag,
    DeleteAttachment,
    DeleteTag,
    MessageDynamicFields,
    MessageVisibility,
    RenameTag,
    UpdateMessage,
)
from worker.mailup.messages import MessageSummary, Which
from worker.settings import DEFAULT_ACCOUNT, get_settings


def _queue(
    kind: str, payload: Payload, account: str, job: dict[str, Any], contents: Any = None
) -> str:
    return enqueue(kind, payload, account, **job, extras=contents)


def create_message(
    *,
    list_id: int,
    subject: str,
    html: str,
    notes: str = "",
    tags: Sequence[int | str] = (),
    fields: dict[int, str] | None = None,
    use_dynamic_fields: bool = False,
    attachments: Sequence[Attachment] = (),
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue a message's creation in a list. ``tags`` are the list's tags by name or id (an
    unknown one fails the job before anything is written: create it first); ``fields`` are
    recipient fields' default values by field id (giving one enables dynamic fields, as
    ``use_dynamic_fields`` does); ``attachments`` (at most 5) go into slots 1, 2, …"""
    payload = validate(
        CreateMessage,
        list_id=list_id,
        subject=subject,
        html=html,
        notes=notes,
        tags=list(tags),
        fields=fields or {},
        use_dynamic_fields=use_dynamic_fields,
        attachments=[Part.of(a.filename, a.content) for a in attachments],
    )
    contents = [a.content for a in attachments]
    return _queue("message_create", payload, account, job, contents)


def update_message(
    message_id: int,
    *,
    list_id: int,
    subject: str | None = None,
    html: str | None = None,
    notes: str | None = None,
    tags: Sequence[int | str] | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue changes to a message; what is not given stays as it is. ``tags`` replace the
    message's tags (MailUp cannot remove them all: an empty list is refused)."""
    payload = validate(
        UpdateMessage,
        list_id=list_id,
        message_id=message_id,
        subject=subject,
        html=html,
        notes=notes,
        tags=None if tags is None else list(tags),
    )
    check_message(account, list_id, message_id)
    return _queue("message_update", payload, account, job)


def copy_message(
    message_id: int,
    *,
    list_id: int,
    subject: str | None = None,
    notes: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue copying a message (tags and attachments too) in its list, with another subject
    or notes if given; the new message's id is in the job's outcome."""
    fields = {"subject": subject, "notes": notes}
    payload = validate(CopyMessage, list_id=list_id, message_id=message_id, **fields)
    check_message(account, list_id, message_id)
    return _queue("message_copy", payload, account, job)


def publish_message(
    message_id: int, *, list_id: int, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    """Queue making a message visible online (the list's web library)."""
    return _visibility(message_id, list_id, True, account, job)


def unpublish_message(
    message_id: int, *, list_id: int, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    return _visibility(message_id, list_id, False, account, job)


def _visibility(
    message_id: int, list_id: int, published: bool, account: str, job: dict[str, Any]
) -> str:
    payload = validate(
        MessageVisibility, list_id=list_id, message_id=message_id, published=published
    )
    check_message(account, list_id, message_id)
    return _queue("message_visibility", payload, account, job)


def set_dynamic_fields(
    message_id: int,
    *,
    list_id: int,
    enabled: bool = True,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue enabling (or disabling) a message's dynamic fields."""
    payload = validate(
        MessageDynamicFields, list_id=list_id, message_id=message_id, enabled=enabled
    )
    check_message(account, list_id, message_id)
    return _queue("message_dynamic_fields", payload, account, job)


def create_tag(*, list_id: int, name: str, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    return _queue("tag_create", validate(CreateTag, list_id=list_id, name=name), account, job)


def rename_tag(
    *, list_id: int, tag_id: int, name: str, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    payload = validate(RenameTag, list_id=list_id, tag_id=tag_id, name=name)
    return _queue("tag_rename", payload, account, job)


def delete_tag(*, list_id: int, tag_id: int, account: str = DEFAULT_ACCOUNT, **job: Any) -> str:
    """Queue a tag's deletion (MailUp takes it off every message too)."""
    payload = validate(DeleteTag, list_id=list_id, tag_id=tag_id)
    return _queue("tag_delete", payload, account, job)


def add_attachment(
    *,
    list_id: int,
    message_id: int,
    slot: int,
    attachment: Attachment,
    account: str = DEFAULT_ACCOUNT,
    **job: Any,
) -> str:
    """Queue putting a file into one of a message's five slots (replacing what is there)."""
    payload = validate(
        AddAttachment,
        list_id=list_id,
        message_id=message_id,
        slot=slot,
        attachment=Part.of(attachment.filename, attachment.content),
    )
    check_message(account, list_id, message_id)
    return _queue("attachment_add", payload, account, job, [attachment.content])


def delete_attachment(
    *, list_id: int, message_id: int, slot: int, account: str = DEFAULT_ACCOUNT, **job: Any
) -> str:
    payload = validate(DeleteAttachment, list_id=list_id, message_id=message_id, slot=slot)
    check_message(account, list_id, message_id)
    return _queue("attachment_delete", payload, account, job)


def check_message(account: str, list_id: int, message_id: int) -> None:
    """A message the ledger knows in another list is refused at the door."""
    known = messages.list_of(get_settings(), account, message_id)
    if known is not None and known != list_id:
        raise InvalidJob(
            {"message_id": f"message {message_id} belongs to list {known}, not {list_id}"}
        )


# --- reads, run directly ---------------------------------------------------------------


def read_messages(
    list_id: int,
    *,
    which: Which = "all",
    filterby: str | None = None,
    orderby: str | None = None,
    tags: str | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> list[dict[str, Any]]:
    """A list's messages (``which``: all, published or archived). ``tags`` is MailUp's:
    ids or names, comma-separated (``1,13,'hello, world'``): messages with any of them."""
    found = messages.read(
        get_settings(), account, list_id, which, filterby=filterby, orderby=orderby, tags=tags
    )
    return [_summary(m) for m in found]


def _summary(message: MessageSummary) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "list_id": message.list_id,
        "subject": message.subject,
        "notes": message.notes,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "last_sent_at": message.last_sent_at.isoformat() if message.last_sent_at else None,
        "tags": [t.name for t in message.tags],
        "service_type": message.service_type,
        "url": message.url,
    }


def message_details(
    message_id: int, *, list_id: int, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """Everything MailUp says of a message, as MailUp names it."""
    return dict(messages.details(get_settings(), account, list_id, message_id).dto)


def read_tags(list_id: int, *, account: str = DEFAULT_ACCOUNT) -> list[dict[str, Any]]:
    return [
        {"tag_id": t.id, "name": t.name, "enabled": t.enabled}
        for t in messages.tags(get_settings(), account, list_id)
    ]


def read_attachments(
    message_id: int, *, list_id: int, account: str = DEFAULT_ACCOUNT
) -> list[dict[str, Any]]:
    return [
        {"slot": a.slot, "name": a.name, "path": a.path}
        for a in messages.attachments(get_settings(), account, list_id, message_id)
    ]
