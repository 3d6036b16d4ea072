"""MailUp's campaign sendings (Console API; docs: "Send Email Messages", "Sending Queue
Status", "Stop a sending", "Delete a sending"; URL templates in the docs' catalogue, †).

A send asks MailUp to make a *sending* of a message to an audience — every subscriber of a
list (optionally only those in some groups, or not in others), one group, or one
recipient — and answers its ``Id`` at once. The sending then waits in one of MailUp's
queues (Undefined: not planned yet; Deferred: planned for a date; Immediate: going out)
and leaves them when it is done. A message's finished sendings are in its SendHistory,
which gives them no Id: only their dates.

Sends are not idempotent: a lost answer may have made a sending. The queues and the history
are what a caller reads to find out (``worker.jobs.campaigns``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from worker.mailup.console import ConsoleClient
from worker.mailup.dates import from_mailup

Queue = Literal["Immediate", "Deferred", "Undefined"]
QUEUES: tuple[Queue, ...] = ("Immediate", "Deferred", "Undefined")


@dataclass(frozen=True)
class Audience:
    """Who a sending goes to: a list's subscribers (``in_groups`` narrows, ``not_in_groups``
    excludes), a group's, or one address (a recipient of ``list_id``)."""

    list_id: int
    group_id: int | None = None
    email: str | None = None
    in_groups: tuple[int, ...] = ()
    not_in_groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class SendOptions:
    """The send's query parameters. ``when`` is ``now``, ``undefined`` (a sending planned
    later, by hand) or a date in MailUp's form (``to_mailup``)."""

    sender_name: str | None = None
    sender_address: str | None = None
    when: str = "now"
    reply_to: str | None = None

    def query(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.sender_name is not None and self.sender_address is not None:
            params["SenderName"] = self.sender_name
            params["SenderAddress"] = self.sender_address
        if self.when != "now":
            params["datetime"] = self.when
        if self.reply_to is not None:
            params["replyto"] = self.reply_to
        return params


@dataclass(frozen=True)
class Skipped:
    """A recipient a sending left out: its address and MailUp's reason, if it gave one."""

    email: str
    reason: str

    @classmethod
    def from_dto(cls, item: Any) -> Skipped:
        if isinstance(item, dict):
            email = item.get("Email") or item.get("email") or ""
            reason = item.get("Reason") or item.get("reason") or ""
            return cls(str(email), str(reason))
        return cls(str(item), "")


@dataclass(frozen=True)
class SendResult:
    """MailUp's answer to a send. ``sent`` is the size of the sending queue, discarded
    recipients included (the docs: "despite its name")."""

    sending_id: int
    sent: int
    message_id: int
    invalid: tuple[Skipped, ...]
    unprocessed: tuple[Skipped, ...]

    @classmethod
    def from_dto(cls, dto: dict[str, Any], message_id: int) -> SendResult:
        return cls(
            sending_id=int(dto["Id"]),
            sent=int(dto.get("Sent") or 0),
            message_id=int(dto.get("idMessage") or message_id),
            invalid=tuple(Skipped.from_dto(i) for i in dto.get("InvalidRecipients") or ()),
            unprocessed=tuple(Skipped.from_dto(i) for i in dto.get("UnprocessedRecipients") or ()),
        )


@dataclass(frozen=True)
class QueuedSending:
    """A sending in one of MailUp's queues."""

    id: int
    queue: Queue
    list_id: int | None
    message_id: int | None
    subject: str
    start: datetime | None

    @classmethod
    def from_dto(cls, dto: dict[str, Any], queue: Queue) -> QueuedSending:
        return cls(
            id=int(dto["Id"]),
            queue=queue,
            list_id=_int(dto.get("IdList")),
            message_id=_int(dto.get("IdMessage")),
            subject=str(dto.get("Subject") or ""),
            start=from_mailup(dto.get("StartDate")),
        )


@dataclass(frozen=True)
class PastSending:
    """A finished sending of a message, from its SendHistory: MailUp gives it no Id (nor
    Sent), only its dates, its sender and how many it went to."""

    start: datetime | None
    end: datetime | None
    recipients: int | None
    sender_email: str

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> PastSending:
        return cls(
            start=from_mailup(dto.get("StartDate")),
            end=from_mailup(dto.get("EndDate")),
            recipients=_int(dto.get("Recipients")),
            sender_email=str(dto.get("SenderEmail") or ""),
        )


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


class Sendings:
    def __init__(self, console: ConsoleClient) -> None:
        self._console = console

    def send(self, message_id: int, audience: Audience, options: SendOptions) -> SendResult:
        """Not idempotent: a lost answer may have made a sending."""
        params = options.query()
        if audience.email is not None:
            path, body = "Console/Email/Send", {"Email": audience.email, "idMessage": message_id}
        elif audience.group_id is not None:
            path, body = f"Console/Group/{audience.group_id}/Email/{message_id}/Send", None
        else:
            path, body = f"Console/List/{audience.list_id}/Email/{message_id}/Send", None
            if audience.in_groups:
                params["inGroups"] = ",".join(map(str, audience.in_groups))
            if audience.not_in_groups:
                params["notInGroups"] = ",".join(map(str, audience.not_in_groups))
        reply = self._console.call(
            "POST", path, "send campaign", params=params, json=body, idempotent=False
        )
        return SendResult.from_dto(reply.body, message_id)

    def queue(self, queue: Queue) -> list[QueuedSending]:
        items = self._console.pages(f"Console/Email/Sendings/{queue}", f"read {queue} sendings")
        return [QueuedSending.from_dto(item, queue) for item in items]

    def queued(self) -> list[QueuedSending]:
        """Every sending in MailUp's three queues, read against the way sendings move
        (Undefined and Deferred to Immediate): one that moves while they are read is seen
        twice, never missed."""
        return [sending for queue in reversed(QUEUES) for sending in self.queue(queue)]

    def history(self, list_id: int, message_id: int) -> list[PastSending]:
        items = self._console.pages(
            f"Console/List/{list_id}/Email/{message_id}/SendHistory", "read sending history"
        )
        return [PastSending.from_dto(item) for item in items]

    def first_available(self, sending_id: int) -> datetime | None:
        reply = self._console.call(
            "GET", f"Console/Email/Sending/{sending_id}/Deferred", "read first sending date"
        )
        return from_mailup(reply.data)

    def stop(self, sending_id: int) -> None:
        """Stops a deferred or going sending (an undefined one is left as it is)."""
        self._console.call("POST", f"Console/Email/Sendings/{sending_id}/Stop", "stop sending")

    def delete(self, sending_id: int) -> bool:
        """Whether MailUp deleted it (it does not delete one still planned or going)."""
        reply = self._console.call(
            "DELETE", f"Console/Email/Sendings/{sending_id}", "delete sending"
        )
        return bool(reply.body.get("IsDeleted"))
