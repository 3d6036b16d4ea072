"""MailUp's email messages of a list, their tags and attachments (Console API; docs:
"Email messages").

A message lives in one list; the tags it names must exist in that list first (MailUp answers
400 otherwise). Updating one sends every field again, so ``update`` reads the message, changes
what is asked and puts it all back; an empty ``Tags`` there leaves the tags as they are (MailUp
has no way to clear them all). A message has five attachment slots; a file goes into a slot,
replacing what was there, so adding one again is safe.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from worker.mailup.console import ConsoleClient
from worker.mailup.dates import from_mailup

Which = Literal["all", "published", "archived"]
# Under Console/List/{id}: MailUp's published and archived reads are not below /Emails.
_READS = {"all": "Emails", "published": "Online/Emails", "archived": "Archived/Emails"}
SLOTS = range(1, 6)


@dataclass(frozen=True)
class Tag:
    id: int
    name: str
    enabled: bool = True

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> Tag:
        return cls(int(dto["Id"]), str(dto.get("Name") or ""), bool(dto.get("Enabled", True)))

    def dto(self) -> dict[str, Any]:
        return {"Id": self.id, "Name": self.name, "Enabled": self.enabled}


@dataclass(frozen=True)
class Attachment:
    slot: int
    name: str
    path: str

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> Attachment:
        return cls(int(dto["Slot"]), str(dto.get("Name") or ""), str(dto.get("Path") or ""))


@dataclass(frozen=True)
class DynamicField:
    """A recipient field's default value in the message (MailUp's ``Fields``)."""

    id: int
    value: str
    description: str = ""

    def dto(self) -> dict[str, Any]:
        return {"Id": self.id, "Value": self.value, "Description": self.description}


@dataclass(frozen=True)
class MessageSummary:
    """A message as list reads give it (``url`` only in the published read)."""

    id: int
    list_id: int
    subject: str
    notes: str
    created_at: datetime | None
    last_sent_at: datetime | None
    tags: tuple[Tag, ...]
    service_type: int | None
    url: str | None

    @classmethod
    def from_dto(cls, dto: dict[str, Any], list_id: int) -> MessageSummary:
        return cls(
            id=int(dto["idMessage"]),
            list_id=int(dto.get("idList") or list_id),
            subject=str(dto.get("Subject") or ""),
            notes=str(dto.get("Notes") or ""),
            created_at=from_mailup(dto.get("CreationDate")),
            last_sent_at=from_mailup(dto.get("LastSendDate")),
            tags=_tags(dto.get("Tags")),
            service_type=dto.get("ServiceType"),
            url=dto.get("Url"),
        )


@dataclass(frozen=True)
class MessageDetails:
    id: int
    list_id: int
    subject: str
    notes: str
    use_dynamic_fields: bool
    tags: tuple[Tag, ...]
    attachments: tuple[Attachment, ...]
    # Every field MailUp answered, to send back whole on update.
    dto: dict[str, Any]

    @classmethod
    def from_dto(cls, dto: dict[str, Any], list_id: int) -> MessageDetails:
        return cls(
            id=int(dto["idMessage"]),
            list_id=int(dto.get("idList") or list_id),
            subject=str(dto.get("Subject") or ""),
            notes=str(dto.get("Notes") or ""),
            use_dynamic_fields=bool(dto.get("UseDynamicField")),
            tags=_tags(dto.get("Tags")),
            attachments=tuple(Attachment.from_dto(a) for a in dto.get("Attachments") or ()),
            dto=dto,
        )


@dataclass(frozen=True)
class NewMessage:
    """What a message is created with; ``html`` is its content (MailUp's ``Content``)."""

    subject: str
    html: str
    notes: str = ""
    head: str = ""
    body: str = ""
    embed: bool = False
    is_confirmation: bool = False
    fields: tuple[DynamicField, ...] = ()
    use_dynamic_fields: bool = False
    tags: tuple[Tag, ...] = ()
    tracking: bool = True

    def dto(self) -> dict[str, Any]:
        return {
            "Subject": self.subject,
            "Content": self.html,
            "Head": self.head,
            "Body": self.body,
            "Embed": self.embed,
            "IsConfirmation": self.is_confirmation,
            "Notes": self.notes,
            "Fields": [f.dto() for f in self.fields],
            "UseDynamicField": self.use_dynamic_fields,
            "Tags": [t.dto() for t in self.tags],
            "TrackingInfo": {
                "Enabled": self.tracking,
                "Protocols": ["http", "https"] if self.tracking else [],
                "CustomParams": "",
            },
        }


@dataclass(frozen=True)
class MessageChanges:
    """What an update changes; None leaves a field as it is (and no tags leave the tags)."""

    subject: str | None = None
    html: str | None = None
    notes: str | None = None
    tags: tuple[Tag, ...] = ()

    def dto(self) -> dict[str, Any]:
        given = {"Subject": self.subject, "Content": self.html, "Notes": self.notes}
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if self.tags:
            changes["Tags"] = [t.dto() for t in self.tags]
        return changes


def _tags(value: Any) -> tuple[Tag, ...]:
    return tuple(Tag.from_dto(t) for t in value or () if isinstance(t, dict))


class Messages:
    def __init__(self, console: ConsoleClient) -> None:
        self._console = console

    # --- messages -----------------------------------------------------------------------

    def create(self, list_id: int, message: NewMessage) -> MessageDetails:
        """Not idempotent: a lost answer may have created a message (and nothing tells it
        from another of the same subject)."""
        reply = self._console.call(
            "POST",
            f"Console/List/{list_id}/Email",
            "create message",
            json=message.dto(),
            idempotent=False,
        )
        return MessageDetails.from_dto(reply.body, list_id)

    def details(self, list_id: int, message_id: int) -> MessageDetails:
        reply = self._console.call(
            "GET", f"Console/List/{list_id}/Email/{message_id}", "read message details"
        )
        return MessageDetails.from_dto(reply.body, list_id)

    def update(self, list_id: int, message_id: int, changes: MessageChanges) -> MessageDetails:
        """Read, change, put back: MailUp wants the whole message on each update."""
        current = self.details(list_id, message_id).dto
        reply = self._console.call(
            "PUT",
            f"Console/List/{list_id}/Email/{message_id}",
            "update message",
            json={**current, **changes.dto()},
        )
        return MessageDetails.from_dto(reply.body, list_id)

    def set_dynamic_fields(self, list_id: int, message_id: int, enabled: bool) -> MessageDetails:
        reply = self._console.call(
            "PUT",
            f"Console/List/{list_id}/Email/{message_id}/DynamicFields",
            "enable dynamic fields" if enabled else "disable dynamic fields",
            json={"UseDynamicField": enabled},
        )
        return MessageDetails.from_dto(reply.body, list_id)

    def read(
        self,
        list_id: int,
        which: Which = "all",
        *,
        filterby: str | None = None,
        orderby: str | None = None,
        tags: str | None = None,
    ) -> list[MessageSummary]:
        """``tags`` is MailUp's: ids or names, comma-separated, a name holding a comma in
        single quotes (``1,13,'hello, world'``); messages with any of them."""
        # ``pages`` sends filterby and orderby only: the tags ride in the path's query.
        path = f"Console/List/{list_id}/{_READS[which]}"
        if tags:
            path += "?" + urlencode({"tags": tags})
        items = self._console.pages(path, "read messages", filterby=filterby, orderby=orderby)
        return [MessageSummary.from_dto(item, list_id) for item in items]

    def copy(
        self, list_id: int, message_id: int, *, subject: str | None = None, notes: str | None = None
    ) -> MessageDetails:
        """The new message. Not idempotent: a lost answer may have made a copy."""
        given = {"Subject": subject, "Notes": notes}
        body = {k: v for k, v in given.items() if v is not None}
        reply = self._console.call(
            "POST",
            f"Console/List/{list_id}/Email/{message_id}",
            "copy message",
            json=body or None,
            idempotent=False,
        )
        return MessageDetails.from_dto(reply.body, list_id)

    def set_visibility(self, list_id: int, message_id: int, published: bool) -> None:
        self._console.call(
            "PUT",
            f"Console/List/{list_id}/Email/{message_id}/Online/Visibility",
            "publish message" if published else "unpublish message",
            json=published,
        )

    # --- tags ---------------------------------------------------------------------------

    def tags(self, list_id: int) -> list[Tag]:
        items = self._console.pages(f"Console/List/{list_id}/Tags", "read tags")
        return [Tag.from_dto(t) for t in items]

    def create_tag(self, list_id: int, name: str) -> Tag:
        """Not idempotent: a lost answer may have created the tag."""
        reply = self._console.call(
            "POST", f"Console/List/{list_id}/Tag", "create tag", json=name, idempotent=False
        )
        return Tag.from_dto(reply.body)

    def rename_tag(self, list_id: int, tag: Tag) -> Tag:
        reply = self._console.call(
            "PUT", f"Console/List/{list_id}/Tag/{tag.id}", "update tag", json=tag.dto()
        )
        return Tag.from_dto(reply.body)

    def delete_tag(self, list_id: int, tag_id: int) -> None:
        self._console.call("DELETE", f"Console/List/{list_id}/Tag/{tag_id}", "delete tag")

    # --- attachments --------------------------------------------------------------------

    def attachments(self, list_id: int, message_id: int) -> list[Attachment]:
        reply = self._console.call(
            "GET", f"Console/List/{list_id}/Email/{message_id}/Attachment", "read attachments"
        )
        return [Attachment.from_dto(a) for a in reply.data or ()]

    def add_attachment(
        self, list_id: int, message_id: int, slot: int, name: str, content: bytes
    ) -> list[Attachment]:
        """The message's attachments after; the slot's file, if any, is replaced."""
        body = {
            # MailUp answers 400 to a line break in it: b64encode adds none.
            "Base64Data": base64.b64encode(content).decode("ascii"),
            "Name": name,
            "Slot": slot,
            "idList": list_id,
            "idMessage": message_id,
        }
        reply = self._console.call(
            "POST",
            f"Console/List/{list_id}/Email/{message_id}/Attachment/{slot}",
            "add attachment",
            json=body,
        )
        return [Attachment.from_dto(a) for a in reply.data or ()]

    def delete_attachment(self, list_id: int, message_id: int, slot: int) -> list[Attachment]:
        """The attachments that remain (an empty slot deletes nothing, and is no error)."""
        reply = self._console.call(
            "DELETE",
            f"Console/List/{list_id}/Email/{message_id}/Attachment/{slot}",
            "delete attachment",
        )
        return [Attachment.from_dto(a) for a in reply.data or ()]
