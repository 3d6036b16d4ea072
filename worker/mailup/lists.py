"""MailUp's lists and groups (Console API; docs: "Manage Lists and Groups").

A list is created with its "mandatory sender details"; updating one sends every mandatory
field again, so ``update`` reads the list, changes what is asked and puts it all back.
Deleting one needs its ListGuid in If-Match.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from worker.mailup.console import ConsoleClient
from worker.mailup.errors import PermanentError


@dataclass(frozen=True)
class Country:
    code: str
    name: str


@dataclass(frozen=True)
class TimeZone:
    code: str
    description: str
    offset: str


@dataclass(frozen=True)
class ListSummary:
    """A list as list reads give it."""

    id: int
    guid: str
    name: str
    company: str = ""
    description: str = ""


# Our field → MailUp's, for the sender details a list is created and updated with.
_SENDER_DETAILS = {
    "name": "Name",
    "owner_email": "OwnerEmail",
    "reply_to": "ReplyTo",
    "sender_name": "NLSenderName",
    "company_name": "CompanyName",
    "contact_name": "ContactName",
    "address": "Address",
    "city": "City",
    "country_code": "CountryCode",
    "permission_reminder": "PermissionReminder",
    "website_url": "WebSiteUrl",
    "business": "Business",
    "customer": "Customer",
    "description": "Description",
    "time_zone_code": "TimeZoneCode",
    "sms_sender_name": "SmsSenderName",
    "default_prefix": "DefaultPrefix",
}


@dataclass(frozen=True)
class ListFields:
    """What a list is created or updated with; None leaves a field as it is (or, on
    creation, to the settings the list inherits)."""

    name: str | None = None
    owner_email: str | None = None
    reply_to: str | None = None
    sender_name: str | None = None
    company_name: str | None = None
    contact_name: str | None = None
    address: str | None = None
    city: str | None = None
    country_code: str | None = None
    permission_reminder: str | None = None
    website_url: str | None = None
    business: bool | None = None
    customer: bool | None = None
    description: str | None = None
    time_zone_code: str | None = None
    sms_sender_name: str | None = None
    default_prefix: str | None = None

    def dto(self) -> dict[str, Any]:
        given = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {_SENDER_DETAILS[name]: value for name, value in given if value is not None}


@dataclass(frozen=True)
class ListDetails:
    id: int
    guid: str
    name: str
    owner_email: str
    sender_name: str  # NLSenderName: with owner_email, the sender of its campaigns
    # Every field MailUp answered, to send back whole on update.
    dto: dict[str, Any]


@dataclass(frozen=True)
class Group:
    id: int
    list_id: int
    name: str
    notes: str
    deletable: bool

    @classmethod
    def from_dto(cls, dto: dict[str, Any]) -> Group:
        return cls(
            id=int(dto["idGroup"]),
            list_id=int(dto["idList"]),
            name=str(dto.get("Name") or ""),
            notes=str(dto.get("Notes") or ""),
            deletable=bool(dto.get("Deletable")),
        )


def _details(body: dict[str, Any], list_id: int) -> ListDetails:
    guid = body.get("ListGuid")
    if not isinstance(guid, str) or not guid:
        raise PermanentError(f"MailUp's details of list {list_id} carry no ListGuid")
    return ListDetails(
        id=int(body.get("IdList") or list_id),
        guid=guid,
        name=str(body.get("Name") or ""),
        owner_email=str(body.get("OwnerEmail") or ""),
        sender_name=str(body.get("NLSenderName") or ""),
        dto=body,
    )


class Lists:
    def __init__(self, console: ConsoleClient) -> None:
        self._console = console

    def countries(self) -> list[Country]:
        reply = self._console.call("GET", "Console/List/Countries", "read countries")
        return [Country(c["CountryCode"], c["CountryName"]) for c in reply.data]

    def time_zones(self) -> list[TimeZone]:
        reply = self._console.call("GET", "Console/TimeZones", "read time zones")
        return [
            TimeZone(
                z["TimeZoneCode"], z.get("TimeZoneDescription", ""), z.get("OffsetFromUTC", "")
            )
            for z in reply.data
        ]

    def create(self, list_fields: ListFields, *, settings_from: int | None = None) -> ListDetails:
        """The new method: missing settings come from list ``settings_from``, or from the
        account's defaults. Not idempotent: a lost answer may have created a list."""
        body = list_fields.dto()
        if settings_from is None:
            body["UseDefaultSettings"] = True
        else:
            body["IdSettings"] = settings_from
        reply = self._console.call(
            "POST", "Console/List", "create list", json=body, idempotent=False
        )
        return _details(reply.body, 0)

    def create_deprecated(self, name: str, owner_email: str, *, settings_from: int = 1) -> int:
        """The deprecated method (kept for accounts whose tooling relies on it): the new list's
        id only; MailUp answers 500 when the reference list lacks sender details."""
        body = {
            "Name": name,
            "owneremail": owner_email,
            "useDefaultSettings": settings_from == 1,
            "idSettings": settings_from,
        }
        reply = self._console.call(
            "POST", "Console/User/Lists", "create list (deprecated)", json=body, idempotent=False
        )
        return int(reply.data)

    def read(self, *, filterby: str | None = None, orderby: str | None = None) -> list[ListSummary]:
        items = self._console.pages(
            "Console/List", "read lists", filterby=filterby, orderby=orderby
        )
        return [
            ListSummary(
                id=int(i["IdList"]),
                guid=str(i["ListGuid"]),
                name=str(i.get("Name") or ""),
                company=str(i.get("Company") or ""),
                description=str(i.get("Description") or ""),
            )
            for i in items
        ]

    def read_deprecated(self) -> list[ListSummary]:
        items = self._console.pages("Console/User/Lists", "read lists (deprecated)")
        return [
            ListSummary(int(i["idList"]), str(i["listGuid"]), str(i.get("Name") or ""))
            for i in items
        ]

    def details(self, list_id: int) -> ListDetails:
        reply = self._console.call("GET", f"Console/List/{list_id}", "read list details")
        return _details(reply.body, list_id)

    def update(self, list_id: int, changes: ListFields) -> ListDetails:
        """Read, change, put back: MailUp wants every mandatory field on each update."""
        current = self.details(list_id).dto
        body = {k: v for k, v in current.items() if k not in ("IdList", "ListGuid")}
        reply = self._console.call(
            "PUT", f"Console/List/{list_id}", "update list", json={**body, **changes.dto()}
        )
        return _details(reply.body, list_id)

    def delete(self, list_id: int, list_guid: str) -> None:
        self._console.call(
            "DELETE", f"Console/List/{list_id}", "delete list", headers={"If-Match": list_guid}
        )


class Groups:
    def __init__(self, console: ConsoleClient) -> None:
        self._console = console

    def create(self, list_id: int, name: str, notes: str = "") -> Group:
        """Not idempotent: a lost answer may have created a group."""
        reply = self._console.call(
            "POST",
            f"Console/List/{list_id}/Group",
            "create group",
            json={"Name": name, "Notes": notes},
            idempotent=False,
        )
        return Group.from_dto(reply.body)

    def update(self, list_id: int, group_id: int, name: str, notes: str) -> Group:
        reply = self._console.call(
            "PUT",
            f"Console/List/{list_id}/Group/{group_id}",
            "update group",
            json={"Name": name, "Notes": notes},
        )
        return Group.from_dto(reply.body)

    def read(self, list_id: int, *, filterby: str | None = None) -> list[Group]:
        items = self._console.pages(
            f"Console/List/{list_id}/Groups", "read groups", filterby=filterby
        )
        return [Group.from_dto(item) for item in items]

    def delete(self, list_id: int, group_id: int) -> None:
        self._console.call("DELETE", f"Console/List/{list_id}/Group/{group_id}", "delete group")

    def clear(self, list_id: int, group_id: int) -> int:
        """Remove every recipient from the group (they stay on the list): how many."""
        reply = self._console.call(
            "DELETE",
            f"Console/List/{list_id}/Group/{group_id}/Recipients",
            "remove group recipients",
        )
        return int(reply.body.get("Removed") or 0)
