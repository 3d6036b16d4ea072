"""MailUp's recipients and imports (Console API; URL templates in the docs' catalogue, †).

A recipient goes to a list, or to a group (and so to the group's list). One at a time it
is added, subscribed or unsubscribed by id; many at a time they are imported
asynchronously: MailUp answers an import id at once, and ``import_status`` tells when the
import has completed and what it did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.mailup.console import ConsoleClient

Status = Literal["subscribed", "unsubscribed", "pending"]
_STATUS_PATHS = {"subscribed": "Subscribed", "unsubscribed": "Unsubscribed", "pending": "Pending"}


@dataclass(frozen=True)
class Audience:
    """Where recipients go: a list, or one of its groups."""

    list_id: int
    group_id: int | None = None

    @property
    def path(self) -> str:
        if self.group_id is not None:
            return f"Console/Group/{self.group_id}"
        return f"Console/List/{self.list_id}"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None = None
    mobile_number: str | None = None
    mobile_prefix: str | None = None
    # MailUp's recipient fields by id (e.g. 1 is the first name on most consoles).
    fields: dict[int, str] = field(default_factory=dict)
    id: int | None = None

    def dto(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Email": self.email}
        if self.name is not None:
            body["Name"] = self.name
        if self.mobile_number is not None:
            body["MobileNumber"] = self.mobile_number
        if self.mobile_prefix is not None:
            body["MobilePrefix"] = self.mobile_prefix
        if self.fields:
            body["Fields"] = [{"Id": i, "Value": v} for i, v in self.fields.items()]
        return body

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> Recipient:
        return cls(
            email=str(dto.get("Email") or ""),
            name=dto.get("Name") or None,
            mobile_number=dto.get("MobileNumber") or None,
            mobile_prefix=dto.get("MobilePrefix") or None,
            fields={int(f["Id"]): str(f.get("Value") or "") for f in dto.get("Fields") or []},
            id=int(dto["idRecipient"]) if dto.get("idRecipient") is not None else None,
        )


# An import detail's StatusCode (MailUp's import process codes): 1 waiting, 2 running,
# 3 completed, 4 failed. Failed is finished too: waiting for more would never end.
_IMPORT_FINISHED = frozenset({3, 4})


@dataclass(frozen=True)
class ImportStatus:
    id: int
    completed: bool
    updated: int = 0
    valid: int = 0
    created: int = 0
    imported: int = 0
    not_valid: int = 0

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> ImportStatus:
        """``Console/Import/{id}``'s status, or ``Console/Imports/{id}``'s detail."""
        if "IdImport" in dto:
            return cls._from_detail(dto)
        return cls(
            id=int(dto["idImport"]),
            completed=bool(dto.get("Completed")),
            updated=int(dto.get("UpdatedRecipients") or 0),
            valid=int(dto.get("ValidRecipients") or 0),
            created=int(dto.get("CreatedRecipients") or 0),
            imported=int(dto.get("ImportedRecipients") or 0),
            not_valid=int(dto.get("NotValidRecipients") or 0),
        )

    @classmethod
    def _from_detail(cls, dto: dict[str, Any]) -> ImportStatus:
        """``{IdImport, StatusCode, Rows: {Valid: {EmailNew, EmailUpdate, Total}, Invalid:
        {Total}}}``: every valid row is imported, as the status shape counts them."""
        rows = dto.get("Rows") or {}
        valid, invalid = rows.get("Valid") or {}, rows.get("Invalid") or {}
        return cls(
            id=int(dto["IdImport"]),
            completed=int(dto.get("StatusCode") or 0) in _IMPORT_FINISHED,
            updated=int(valid.get("EmailUpdate") or 0),
            valid=int(valid.get("Total") or 0),
            created=int(valid.get("EmailNew") or 0),
            imported=int(valid.get("Total") or 0),
            not_valid=int(invalid.get("Total") or 0),
        )


def _confirm(confirm_email: bool) -> dict[str, str]:
    return {"ConfirmEmail": "true"} if confirm_email else {}


class Recipients:
    def __init__(self, console: ConsoleClient) -> None:
        self._console = console

    def add(self, audience: Audience, recipient: Recipient, *, confirm_email: bool) -> int:
        """The recipient's id. With ``confirm_email`` MailUp mails a confirmation request and
        the recipient is pending until confirmed. Not idempotent: the request is resent."""
        reply = self._console.call(
            "POST",
            f"{audience.path}/Recipient",
            "add recipient",
            params=_confirm(confirm_email),
            json=recipient.dto(),
            idempotent=False,
        )
        return int(reply.data)

    def subscribe(self, audience: Audience, recipient_id: int) -> None:
        self._console.call(
            "POST", f"{audience.path}/Subscribe/{recipient_id}", "subscribe recipient"
        )

    def unsubscribe(self, audience: Audience, recipient_id: int) -> None:
        self._console.call(
            "DELETE", f"{audience.path}/Unsubscribe/{recipient_id}", "unsubscribe recipient"
        )

    def read(
        self, audience: Audience, status: Status = "subscribed", *, email: str | None = None
    ) -> list[Recipient]:
        """A list's recipients of one status, or a group's members; ``email`` picks one."""
        path = f"{audience.path}/Recipients"
        if audience.group_id is None:
            path += f"/{_STATUS_PATHS[status]}"
        filterby = f"Email=='{email}'" if email else None
        items = self._console.pages(path, "read recipients", filterby=filterby)
        return [Recipient.from_dto(item) for item in items]

    def start_import(
        self,
        audience: Audience,
        recipients: Iterable[Recipient],
        *,
        confirm_email: bool = False,
        optout: bool = False,
    ) -> int:
        """An asynchronous import (``optout``: they are unsubscribed); its import id. Not
        idempotent: a lost answer may have started an import."""
        params = _confirm(confirm_email)
        if optout:
            params["importType"] = "asOptout"
        reply = self._console.call(
            "POST",
            f"{audience.path}/Recipients",
            "import recipients",
            params=params,
            json=[r.dto() for r in recipients],
            idempotent=False,
        )
        return int(reply.data)

    def import_status(self, import_id: int) -> ImportStatus:
        reply = self._console.call("GET", f"Console/Import/{import_id}", "read import status")
        return ImportStatus.from_dto(reply.body)

    def imports(self) -> list[ImportStatus]:
        return [
            ImportStatus.from_dto(i) for i in self._console.pages("Console/Imports", "read imports")
        ]
