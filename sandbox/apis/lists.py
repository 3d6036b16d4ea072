"""Console API lists and groups (doc 004, "Manage Lists and Groups"), on the ``CONSOLE`` family:
countries and time zones, create (new and deprecated methods), read (new and deprecated), details,
update, delete with ``If-Match: {ListGuid}``; groups: create, update, read, delete, remove all
recipients.

A list's fields are kept by the doc's names (``MailingList.settings``); its SmsSenderName is the
default sender of the SMS API. MailUp's "default settings" are those of list 1
(``state.LIST_DEFAULTS``). JSON field names match case-insensitively, as everywhere in the Console.

Where the doc is silent: a field of the wrong JSON type, a ReplyTo, NotifyEmail or BouncedEmail
that is not an email address, a CountryCode or TimeZoneCode not in the sandbox's subsets below, a
Format other than "html" or "text", a DefaultPrefix not like "0039", an SmsSenderName that is not a
phone number or 1-11 letters and digits, an out-of-range OptoutType (0-4), ScopeCode (0-2) or a
negative KBMax answer 400 naming the field; unknown fields are ignored. A blank ReplyTo stores the
OwnerEmail (the doc: the "FROM" address is then used). A new list inherits from its reference list
every field the request leaves out but Name, Description, ReplyTo and MultiOptoutList (its own id,
as in the doc's example); UseDefaultSettings wins over IdSettings (the deprecated method's rule),
neither (or ``UseDefaultSettings: false`` alone) is a 400, an IdSettings naming no list of the
account a 400 (the deprecated method: a 500, its reference being "empty"). The deprecated method
wants Name (400), copies missing sender details from the reference and fails with the doc's 500
when one is still empty (list 3 is such an old list). Every new list gets a non-deletable "TEST"
group, as MailUp's lists have. DELETE checks If-Match before looking the list up and takes only a
hyphenated GUID, any case, ETag quotes stripped; it removes the list's groups, subscriptions and
imports (SMTP+ users and templates stay). Read Lists answers ``Company`` empty, as in both of the
doc's examples. Paged reads answer the newest first, as the doc's examples do. A group's Name is
mandatory, Notes default to ""; a non-deletable group cannot be updated nor deleted (400). A group
answers ``Count`` null, as MailUp's recorded answers do (the doc's examples omit it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.apis.console import (
    ConsoleError,
    _endpoint,
    _fields,
    _if_match,
    _list,
    paged,
)
from sandbox.http import Reply, Request
from sandbox.state import (
    EMAIL_RE,
    LIST_DEFAULTS,
    SENDER_DETAILS,
    Account,
    Group,
    MailingList,
    SandboxState,
)

COUNTRIES = [
    {"CountryCode": code, "CountryName": name}
    for code, name in sorted(
        {
            "AR": "Argentina", "AT": "Austria", "AU": "Australia", "BE": "Belgium",
            "BR": "Brazil", "CA": "Canada", "CH": "Switzerland", "CN": "China", "DE": "Germany",
            "DK": "Denmark", "ES": "Spain", "FR": "France", "GB": "United Kingdom",
            "GR": "Greece", "IE": "Ireland", "IN": "India", "IT": "Italy", "JP": "Japan",
            "MX": "Mexico", "NL": "Netherlands", "NO": "Norway", "PL": "Poland",
            "PT": "Portugal", "SE": "Sweden", "SM": "San Marino", "US": "United States",
        }.items(),
        key=lambda pair: pair[1],
    )
]  # fmt: skip
TIME_ZONE_KEYS = ("OffsetFromUTC", "TimeZoneCode", "TimeZoneDescription", "TimeZoneName")
TIME_ZONES = [
    dict(zip(TIME_ZONE_KEYS, row, strict=True))
    for row in (
        ("0:00:00", "UTC+00:00.0", "(UTC) Casablanca", "Morocco Standard Time"),
        ("0:00:00", "UTC+00:00.1", "(UTC) Coordinated Universal Time", "UTC"),
        ("0:00:00", "UTC+00:00.2", "(UTC) Dublin, Edinburgh, Lisbon, London", "GMT Standard Time"),
        ("0:00:00", "UTC+00:00.3", "(UTC) Monrovia, Reykjavik", "Greenwich Standard Time"),
        ("01:00:00", "UTC+01:00.0", "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
         "W. Europe Standard Time"),
        ("01:00:00", "UTC+01:00.1", "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague",
         "Central Europe Standard Time"),
        ("01:00:00", "UTC+01:00.2", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
         "Romance Standard Time"),
        ("02:00:00", "UTC+02:00.0", "(UTC+02:00) Athens, Bucharest", "GTB Standard Time"),
        ("03:00:00", "UTC+03:00.0", "(UTC+03:00) Moscow, St. Petersburg", "Russian Standard Time"),
        ("09:00:00", "UTC+09:00.0", "(UTC+09:00) Osaka, Sapporo, Tokyo", "Tokyo Standard Time"),
        ("-05:00:00", "UTC-05:00.0", "(UTC-05:00) Eastern Time (US & Canada)",
         "Eastern Standard Time"),
        ("-06:00:00", "UTC-06:00.0", "(UTC-06:00) Central Time (US & Canada)",
         "Central Standard Time"),
        ("-08:00:00", "UTC-08:00.0", "(UTC-08:00) Pacific Time (US & Canada)",
         "Pacific Standard Time"),
        ("-11:00:00", "UTC-11:00.0", "(UTC-11:00) Coordinated Universal Time-11", "UTC-11"),
        ("-12:00:00", "UTC-12:00.0", "(UTC-12:00) International Date Line West",
         "Dateline Standard Time"),
    )
]  # fmt: skip
COUNTRY_CODES = {c["CountryCode"] for c in COUNTRIES}
TIME_ZONE_CODES = {t["TimeZoneCode"] for t in TIME_ZONES}
GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SMS_SENDER_RE = re.compile(r"\+?\d{6,16}|[A-Za-z0-9]{1,11}")
PREFIX_RE = re.compile(r"00\d{1,4}")
NOT_INHERITED = ("Name", "Description", "ReplyTo", "MultiOptoutList")
SCOPES = {"newsletters": 0, "direct_advertising": 1, "transactional": 2}  # deprecated "scope"
LIST_ITEM = ("Company", "Description", "IdList", "ListGuid", "Name")
USER_LIST_ITEM = ("Company", "Description", "Name", "idList", "listGuid")
GROUP_ITEM = ("Count", "Deletable", "Name", "Notes", "idGroup", "idList")

# --- list fields: (label as the request spells it, JSON value) -> value to store ---------------

Check = Callable[[str, Any], Any]


def _text(label: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConsoleError(400, f"{label} must be a string.")
    return value.strip()


def _name(label: str, value: Any) -> str:
    name = _text(label, value)
    if len(name) > 50:
        raise ConsoleError(400, f"{label} must be at most 50 characters.")
    return name


def _flag(label: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConsoleError(400, f"{label} must be true or false.")
    return value


def _integer(low: int, high: int | None = None) -> Check:
    def check(label: str, value: Any) -> int:
        if type(value) is not int or value < low or (high is not None and value > high):
            top = "" if high is None else f" and <= {high}"
            raise ConsoleError(400, f"{label} must be an integer >= {low}{top}.")
        return value

    return check


def _email(label: str, value: Any) -> str:
    email = _text(label, value)
    if email and not EMAIL_RE.fullmatch(email):
        raise ConsoleError(400, f"{label} is not a valid email address: {email!r}.")
    return email


def _nullable_email(label: str, value: Any) -> str | None:
    return None if value is None else _email(label, value)


def _matching(pattern: re.Pattern[str] | set[str], what: str, blank: bool = False) -> Check:
    """A string check: a full match of ``pattern`` or one of a set; blank allowed if so said."""

    def check(label: str, value: Any) -> str:
        text = _text(label, value)
        fits = text in pattern if isinstance(pattern, set) else pattern.fullmatch(text)
        if not fits and not (blank and not text):
            raise ConsoleError(400, f"{label} must be {what}: {text!r}.")
        return text

    return check


def _scope(label: str, value: Any) -> int:
    """The deprecated method's ``scope`` name, as the ScopeCode it stands for."""
    code = SCOPES.get(_text(label, value).lower())
    if code is None:
        raise ConsoleError(400, f"{label} must be one of {sorted(SCOPES)}.")
    return code


FIELDS: dict[str, Check] = {
    "Name": _name,
    "Business": _flag,
    "Customer": _flag,
    "OwnerEmail": _email,
    "ReplyTo": _email,
    "NLSenderName": _text,
    "CompanyName": _text,
    "ContactName": _text,
    "Address": _text,
    "City": _text,
    "CountryCode": _matching(COUNTRY_CODES, "one of the Countries codes", blank=True),
    "PermissionReminder": _text,
    "WebSiteUrl": _text,
    "Description": _text,
    "DisplayAs": _text,
    "Phone": _text,
    "PostalCode": _text,
    "StateOrProvince": _text,
    "TimeZoneCode": _matching(TIME_ZONE_CODES, "one of the TimeZones codes"),
    "SmsSenderName": _matching(SMS_SENDER_RE, "a phone number or 1-11 letters", blank=True),
    "DefaultPrefix": _matching(PREFIX_RE, 'an international prefix like "0039"'),
    "SendConfirmSms": _flag,
    "Charset": _matching(re.compile(r"\S+"), "a charset name"),
    "Format": _matching({"html", "text"}, '"html" or "text"'),
    "MultipartText": _flag,
    "KBMax": _integer(0),
    "NotifyEmail": _nullable_email,
    "OptoutType": _integer(0, 4),
    "MultiOptoutList": _text,
    "SendEmailOptout": _flag,
    "SubscribedEmail": _flag,
    "BouncedEmail": _nullable_email,
    "FrontendForm": _flag,
    "Public": _flag,
    "ScopeCode": _integer(0, 2),
    "TrackOnOpened": _flag,
    "ConversionlabTrackCode": _text,
    "LinkTrackingParameters": _text,
    "Disclaimer": _text,
    "HeaderListUnsubscriber": _text,
    "HeaderXAbuse": _text,
}
# Lowercased request name -> (name as errors spell it, field, check): the new methods' names and
# the deprecated method's (the doc's own spelling).
Names = Mapping[str, tuple[str, str, Check]]
NEW_NAMES: Names = {name.lower(): (name, name, check) for name, check in FIELDS.items()}
OLD_RENAMES = {
    "bouncedemail": "BouncedEmail", "conversionlab_trackcode": "ConversionlabTrackCode",
    "default_prefix": "DefaultPrefix", "displayas": "DisplayAs", "frontendform": "FrontendForm",
    "headerlistunsubscriber": "HeaderListUnsubscriber", "headerxabuse": "HeaderXAbuse",
    "multi_optout_list": "MultiOptoutList", "multipart_text": "MultipartText",
    "nl_sendername": "NLSenderName", "notifyemail": "NotifyEmail", "optout_type": "OptoutType",
    "owneremail": "OwnerEmail", "replyto": "ReplyTo", "sendconfirmsms": "SendConfirmSms",
    "sendemailoptout": "SendEmailOptout", "sms_sendername": "SmsSenderName",
    "subscribedemail": "SubscribedEmail", "tracking": "TrackOnOpened",
}  # fmt: skip
OLD_SAME = (  # written the same way (case aside) by both methods
    "Name", "Business", "Customer", "Charset", "Description", "Disclaimer", "Format", "KBMax",
    "Public", "CompanyName", "ContactName", "Address", "City", "PostalCode", "StateOrProvince",
    "CountryCode", "Phone", "WebSiteUrl", "PermissionReminder",
)  # fmt: skip
OLD_NAMES: Names = {
    **{old: (old, name, FIELDS[name]) for old, name in OLD_RENAMES.items()},
    **{name.lower(): (name, name, FIELDS[name]) for name in OLD_SAME},
    "scope": ("scope", "ScopeCode", _scope),
}


def _settings(body: dict[str, Any], names: Names) -> dict[str, Any]:
    """The list fields ``body`` (lowercased keys) gives, checked, by their field names."""
    return {
        field: check(label, body[key])
        for key, (label, field, check) in names.items()
        if key in body
    }


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _require_sender_details(settings: dict[str, Any]) -> None:
    for field in SENDER_DETAILS:
        if _empty(settings.get(field)):
            raise ConsoleError(400, f"{field} is mandatory.")


def _inherited(reference: dict[str, Any]) -> dict[str, Any]:
    """What a new list takes from its reference list's settings."""
    return {k: v for k, v in reference.items() if k not in NOT_INHERITED} | {"Description": ""}


def _reply_to(settings: dict[str, Any]) -> dict[str, Any]:
    """A blank ReplyTo means the OwnerEmail (the doc)."""
    if _empty(settings.get("ReplyTo")):
        settings["ReplyTo"] = settings.get("OwnerEmail") or ""
    return settings


def _reference(body: dict[str, Any], names: tuple[str, str]) -> tuple[bool, int]:
    """(UseDefaultSettings, IdSettings) as asked; the doc: at least one of them."""
    use_default, id_settings = body.get(names[0].lower()), body.get(names[1].lower())
    if use_default is not None:
        _flag(names[0], use_default)
    if id_settings is not None and type(id_settings) is not int:
        raise ConsoleError(400, f"{names[1]} must be a list id.")
    if not use_default and id_settings is None:
        raise ConsoleError(400, f"Provide {names[1]} or {names[0]}.")
    return bool(use_default), id_settings or 0


def _account_list(state: SandboxState, account: Account, list_id: int) -> MailingList | None:
    mlist = state.lists.get(list_id)
    return mlist if mlist is not None and mlist.account_id == account.id else None


def details_view(mlist: MailingList) -> dict[str, Any]:
    """The doc's list details: every setting plus IdList and ListGuid."""
    return dict(sorted((mlist.settings | {"IdList": mlist.id, "ListGuid": mlist.guid}).items()))


def _newest_first(state: SandboxState, account: Account) -> list[MailingList]:
    mine = [m for m in state.lists.values() if m.account_id == account.id]
    return sorted(mine, key=lambda m: m.id, reverse=True)


# --- countries and time zones ------------------------------------------------------------------


@_endpoint("GET", r"/Console/List/Countries", "list_countries")
def countries(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, COUNTRIES)


@_endpoint("GET", r"/Console/TimeZones", "time_zones")
def time_zones(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, TIME_ZONES)


# --- lists -------------------------------------------------------------------------------------


@_endpoint("POST", r"/Console/List", "list_create")
def create_list(req: Request, state: SandboxState, account: Account) -> Reply:
    body = _fields(req)
    given = _settings(body, NEW_NAMES)
    _require_sender_details(given)
    use_default, id_settings = _reference(body, ("UseDefaultSettings", "IdSettings"))
    reference = LIST_DEFAULTS
    if not use_default:
        ref_list = _account_list(state, account, id_settings)
        if ref_list is None:
            raise ConsoleError(400, f"IdSettings: list {id_settings} not found.")
        reference = ref_list.settings
    mlist = state.add_list(account.id, _reply_to(_inherited(reference) | given))
    req.details.update(list_id=mlist.id, name=mlist.name, use_default_settings=use_default)
    req.details["id_settings"] = None if use_default else id_settings
    return Reply(200, details_view(mlist))


@_endpoint("POST", r"/Console/User/Lists", "list_create_deprecated")
def create_list_deprecated(req: Request, state: SandboxState, account: Account) -> Reply:
    """The old method: the bare new list id; sender details copied from the reference list."""
    body = _fields(req)
    given = _settings(body, OLD_NAMES)
    if _empty(given.get("Name")):
        raise ConsoleError(400, "Name is mandatory.")
    use_default, id_settings = _reference(body, ("useDefaultSettings", "idSettings"))
    reference_id = 1 if use_default else id_settings  # the doc: list 1 is the default
    req.details["reference_list"] = reference_id
    reference = _account_list(state, account, reference_id)
    if reference is None:
        raise ConsoleError(500, f"Reference list {reference_id} not found.")
    settings = _reply_to(_inherited(reference.settings) | given)
    empty = [f for f in SENDER_DETAILS if _empty(settings.get(f))]
    if empty:
        missing = ", ".join(empty)
        raise ConsoleError(
            500, f"Mandatory information of list {reference_id} is empty: {missing}."
        )
    mlist = state.add_list(account.id, settings)
    req.details.update(list_id=mlist.id, name=mlist.name)
    return Reply(200, mlist.id)


def _list_item(mlist: MailingList) -> dict[str, Any]:
    return {
        "Company": "",
        "Description": mlist.settings.get("Description") or "",
        "IdList": mlist.id,
        "ListGuid": mlist.guid,
        "Name": mlist.name,
    }


def _user_list_item(mlist: MailingList) -> dict[str, Any]:
    return {
        "Company": "",
        "Description": mlist.settings.get("Description") or "",
        "Name": mlist.name,
        "idList": mlist.id,
        "listGuid": mlist.guid,
    }


@_endpoint("GET", r"/Console/List", "lists_list")
def read_lists(req: Request, state: SandboxState, account: Account) -> Reply:
    return paged(req, state, _newest_first(state, account), _list_item, LIST_ITEM)


@_endpoint("GET", r"/Console/User/Lists", "user_lists_list")
def read_lists_deprecated(req: Request, state: SandboxState, account: Account) -> Reply:
    return paged(req, state, _newest_first(state, account), _user_list_item, USER_LIST_ITEM)


@_endpoint("GET", r"/Console/List/(?P<list_id>\d+)", "list_details")
def list_details(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, details_view(_list(req, state, account)))


@_endpoint("PUT", r"/Console/List/(?P<list_id>\d+)", "list_update")
def update_list(req: Request, state: SandboxState, account: Account) -> Reply:
    """The mandatory fields every time, the optional ones to change; ids are ignored."""
    mlist = _list(req, state, account)
    given = _settings(_fields(req), NEW_NAMES)
    _require_sender_details(given)
    if "ReplyTo" in given:
        _reply_to(given)
    req.details["changed"] = sorted(k for k, v in given.items() if mlist.settings.get(k) != v)
    mlist.settings.update(given)
    return Reply(200, details_view(mlist))


@_endpoint("DELETE", r"/Console/List/(?P<list_id>\d+)", "list_delete")
def delete_list(req: Request, state: SandboxState, account: Account) -> Reply:
    if_match = req.headers.get("If-Match")
    if if_match is None or not if_match.strip():
        raise ConsoleError(403, "Missing If-Match header.")
    guid = _if_match(if_match)
    if not GUID_RE.fullmatch(guid):
        raise ConsoleError(412, "If-Match header content type must be: System.Guid.")
    mlist = _list(req, state, account)
    if guid.lower() != mlist.guid.lower():
        raise ConsoleError(412, "Invalid [listGuid] from If-Match header field.")
    groups = len(state.list_groups(mlist.id))
    state.delete_list(mlist.id)
    req.details.update(groups_removed=groups, subscriptions_removed=len(mlist.subscriptions))
    return Reply(200)


# --- groups ------------------------------------------------------------------------------------


def group_view(group: Group) -> dict[str, Any]:
    return {
        "Count": None,
        "Deletable": group.deletable,
        "Name": group.name,
        "Notes": group.notes,
        "idGroup": group.id,
        "idList": group.list_id,
    }


def _group_fields(req: Request) -> tuple[str, str]:
    body = _fields(req)
    name, notes = _text("Name", body.get("name")), _text("Notes", body.get("notes"))
    if not name:
        raise ConsoleError(400, "Name is mandatory.")
    return name, notes


def _list_group(req: Request, state: SandboxState, account: Account) -> Group:
    """The URL's group, which must belong to the URL's list."""
    mlist = _list(req, state, account)
    group_id = int(req.params["group_id"])
    req.details["group_id"] = group_id
    group = state.groups.get(group_id)
    if group is None or group.list_id != mlist.id:
        raise ConsoleError(404, f"Group {group_id} not found.")
    return group


def _changeable(group: Group, change: str) -> Group:
    if not group.deletable:
        raise ConsoleError(400, f"Group {group.id} is not deletable and cannot be {change}.")
    return group


GROUP = r"/Console/List/(?P<list_id>\d+)/Group/(?P<group_id>\d+)"


@_endpoint("POST", r"/Console/List/(?P<list_id>\d+)/Group", "group_create")
def create_group(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist = _list(req, state, account)
    group = state.add_group(mlist.id, *_group_fields(req))
    req.details["group_id"] = group.id
    return Reply(200, group_view(group))


@_endpoint("PUT", GROUP, "group_update")
def update_group(req: Request, state: SandboxState, account: Account) -> Reply:
    group = _changeable(_list_group(req, state, account), "updated")
    group.name, group.notes = _group_fields(req)
    return Reply(200, group_view(group))


@_endpoint("GET", r"/Console/List/(?P<list_id>\d+)/Groups", "groups_list")
def read_groups(req: Request, state: SandboxState, account: Account) -> Reply:
    groups = sorted(state.list_groups(_list(req, state, account).id), key=lambda g: -g.id)
    return paged(req, state, groups, group_view, GROUP_ITEM)


@_endpoint("DELETE", GROUP, "group_delete")
def delete_group(req: Request, state: SandboxState, account: Account) -> Reply:
    group = _changeable(_list_group(req, state, account), "deleted")
    del state.groups[group.id]
    req.details["members_removed"] = len(group.members)
    return Reply(200)


@_endpoint("DELETE", GROUP + "/Recipients", "group_recipients_remove")
def empty_group(req: Request, state: SandboxState, account: Account) -> Reply:
    """Every member leaves the group; their subscriptions to the list stay."""
    group = _list_group(req, state, account)
    removed = len(group.members)
    group.members.clear()
    req.details["removed"] = removed
    return Reply(200, {"Removed": removed})
