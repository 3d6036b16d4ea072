"""Console lists and groups (doc 004): countries, time zones, create (new and deprecated), read,
details, update, delete with If-Match; groups: create, update, read, delete, empty."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox import Sandbox
from sandbox.state import list_guid
from tests.sandbox.conftest import SENDER_DETAILS, console_error

pytestmark = pytest.mark.usefixtures("uncapped")

DETAILS_KEYS = {  # the doc's "Get list details" answer
    "Address", "BouncedEmail", "Business", "Charset", "City", "CompanyName", "ContactName",
    "ConversionlabTrackCode", "CountryCode", "Customer", "DefaultPrefix", "Description",
    "Disclaimer", "DisplayAs", "Format", "FrontendForm", "HeaderListUnsubscriber", "HeaderXAbuse",
    "IdList", "KBMax", "LinkTrackingParameters", "ListGuid", "MultiOptoutList", "MultipartText",
    "Name", "NLSenderName", "NotifyEmail", "OptoutType", "OwnerEmail", "PermissionReminder",
    "Phone", "PostalCode", "Public", "ReplyTo", "ScopeCode", "SendConfirmSms", "SendEmailOptout",
    "SmsSenderName", "StateOrProvince", "SubscribedEmail", "TimeZoneCode", "TrackOnOpened",
    "WebSiteUrl",
}  # fmt: skip
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GROUP_KEYS = {"Count", "Deletable", "Name", "Notes", "idGroup", "idList"}


def create(console, **fields) -> dict:
    body = SENDER_DETAILS | {"UseDefaultSettings": True} | fields
    r = console("POST", "Console/List", json={k: v for k, v in body.items() if v is not None})
    assert r.status_code == 200, r.text
    return dict(r.json())


def envelope(body: dict) -> tuple:
    return body["PageNumber"], body["PageSize"], body["Skipped"], body["TotalElementsCount"]


# --- countries and time zones ------------------------------------------------------------------


def test_countries_and_time_zones(sb: Sandbox, console) -> None:
    countries = console("GET", "Console/List/Countries").json()
    assert len(countries) >= 15 and all(set(c) == {"CountryCode", "CountryName"} for c in countries)
    codes = {c["CountryCode"]: c["CountryName"] for c in countries}
    assert {"IT", "US", "GB", "DE", "FR", "ES"} <= set(codes) and codes["IT"] == "Italy"
    names = [c["CountryName"] for c in countries]
    assert names == sorted(names)  # as the doc's example: by name
    zones = {z["TimeZoneCode"]: z for z in console("GET", "Console/TimeZones").json()}
    assert zones["UTC+00:00.1"] == {
        "OffsetFromUTC": "0:00:00",
        "TimeZoneCode": "UTC+00:00.1",
        "TimeZoneDescription": "(UTC) Coordinated Universal Time",
        "TimeZoneName": "UTC",
    }
    assert zones["UTC+01:00.0"]["OffsetFromUTC"] == "01:00:00"
    assert zones["UTC-12:00.0"]["OffsetFromUTC"] == "-12:00:00"
    assert requests.get(f"{sb.console_url}/Console/TimeZones", timeout=5).status_code == 401


# --- seeded lists, details, reads --------------------------------------------------------------


def test_seeded_list_details(sb: Sandbox, console) -> None:
    details = {n: console("GET", f"Console/List/{n}").json() for n in (1, 2, 3)}
    assert all(set(d) == DETAILS_KEYS for d in details.values())
    assert [(d["IdList"], d["ListGuid"], d["Name"]) for d in details.values()] == [
        (1, list_guid(1), "Newsletter"),
        (2, list_guid(2), "Promotions"),
        (3, list_guid(3), "Alerts"),
    ]
    assert [d["SmsSenderName"] for d in details.values()] == ["MailUp", "MailUp", ""]
    assert details[1]["OwnerEmail"] == "sender@example.com"  # the seeded trusted sender
    assert (details[1]["TimeZoneCode"], details[1]["DefaultPrefix"]) == ("UTC+01:00.0", "0039")
    assert details[3]["CompanyName"] == "" and details[3]["OwnerEmail"] == ""  # an old list
    assert [m["default_sender"] for m in sb.lists()] == ["MailUp", "MailUp", None]


def test_read_lists_new_and_deprecated(sb: Sandbox, console) -> None:
    body = console("GET", "Console/List").json()
    assert envelope(body) == (0, 20, 0, 3) and body["IsPaginated"] is False
    assert body["Items"][0] == {
        "Company": "",
        "Description": "",
        "IdList": 3,
        "ListGuid": list_guid(3),
        "Name": "Alerts",
    }
    assert [i["IdList"] for i in body["Items"]] == [3, 2, 1]  # newest first, as in the doc
    old = console("GET", "Console/User/Lists").json()
    assert old["Items"][-1] == {
        "Company": "",
        "Description": "",
        "Name": "Newsletter",
        "idList": 1,
        "listGuid": list_guid(1),
    }
    page = console("GET", "Console/List", params={"PageNumber": 1, "PageSize": 2}).json()
    assert envelope(page) == (1, 2, 2, 3) and [i["IdList"] for i in page["Items"]] == [1]


def test_read_lists_filter_and_order_as_the_doc(sb: Sandbox, console) -> None:
    def ids(route: str, key: str, **params: str) -> list[int]:
        r = console("GET", route, params=params)
        assert r.status_code == 200, r.text
        return [i[key] for i in r.json()["Items"]]

    exact = {"filterby": "\"Name=='Newsletter'\"", "orderby": '"idList desc"'}
    assert ids("Console/List", "IdList", **exact) == [1]
    assert ids("Console/List", "IdList", filterby="Name=='newsletter'") == []  # case-sensitive
    contains = {"filterby": "\"Name.Contains('o')\"", "orderby": '"idList asc"'}
    assert ids("Console/User/Lists", "idList", **contains) == [2]
    assert ids("Console/List", "IdList", orderby="Name asc") == [3, 1, 2]
    assert ids("Console/List", "IdList", orderby="IDLIST") == [1, 2, 3]  # any case, asc
    assert ids("Console/List", "IdList", filterby="idList != 2", orderby="idList") == [1, 3]
    console_error(console("GET", "Console/List", params={"filterby": "Name=='Newsletter"}), 400)
    console_error(console("GET", "Console/List", params={"orderby": "Name sideways"}), 400)


# --- create ------------------------------------------------------------------------------------


def test_create_list_inheriting_from_a_list(sb: Sandbox, console, ctl) -> None:
    console("PUT", "Console/List/2", json=SENDER_DETAILS | {"Name": "Promotions", "KBMax": 250})
    created = create(console, UseDefaultSettings=None, IdSettings=2, ReplyTo="mike@example.com")
    assert set(created) == DETAILS_KEYS
    assert created["IdList"] == 4 and GUID.fullmatch(created["ListGuid"])
    assert created["ListGuid"] not in {list_guid(n) for n in (1, 2, 3)}
    assert {k: created[k] for k in SENDER_DETAILS} == SENDER_DETAILS
    assert (created["ReplyTo"], created["Description"]) == ("mike@example.com", "")
    assert (created["KBMax"], created["SmsSenderName"]) == (250, "MailUp")  # from list 2
    assert created["MultiOptoutList"] == "4"  # its own id, as in the doc's example
    assert console("GET", "Console/List/4").json() == created
    groups = console("GET", "Console/List/4/Groups").json()["Items"]
    assert groups == [
        {
            "Count": None,
            "Deletable": False,
            "Name": "TEST",
            "Notes": "Used for test sending.",
            "idGroup": 3,
            "idList": 4,
        }
    ]
    entry = ctl("GET", "journal", params={"operation": "list_create"})["entries"][-1]
    assert (entry["processed"], entry["list_id"], entry["id_settings"]) == (True, 4, 2)
    assert entry["use_default_settings"] is False


def test_create_list_with_default_settings(sb: Sandbox, console) -> None:
    created = create(console, Description="Arrivals", TimeZoneCode="UTC+00:00.1", KBMax=50)
    assert created["ReplyTo"] == "jane@example.com"  # blank ReplyTo: the FROM address
    assert (created["Description"], created["TimeZoneCode"], created["KBMax"]) == (
        "Arrivals",
        "UTC+00:00.1",
        50,
    )
    assert (created["Charset"], created["Format"], created["SmsSenderName"]) == (
        "UTF-8",
        "html",
        "MailUp",
    )
    second = create(console, Name="Second", IdSettings=99)  # UseDefaultSettings wins
    assert second["IdList"] == 5 and second["ListGuid"] != created["ListGuid"]
    names = [m["name"] for m in sb.lists()]
    assert names == ["Newsletter", "Promotions", "Alerts", "New Arrivals", "Second"]


@pytest.mark.parametrize("missing", sorted(SENDER_DETAILS))
def test_create_list_wants_every_sender_detail(sb: Sandbox, console, missing) -> None:
    body = SENDER_DETAILS | {"UseDefaultSettings": True}
    r = console("POST", "Console/List", json={k: v for k, v in body.items() if k != missing})
    assert missing in console_error(r, 400)
    body[missing] = "" if isinstance(body[missing], str) else None
    assert missing in console_error(console("POST", "Console/List", json=body), 400)
    assert len(sb.lists()) == 3


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"Name": "x" * 51}, "Name"),
        ({"Business": "yes"}, "Business"),
        ({"OwnerEmail": "jane"}, "OwnerEmail"),
        ({"ReplyTo": "mike@"}, "ReplyTo"),
        ({"CountryCode": "XX"}, "CountryCode"),
        ({"CountryCode": "it"}, "CountryCode"),
        ({"TimeZoneCode": "CET"}, "TimeZoneCode"),
        ({"Format": "pdf"}, "Format"),
        ({"KBMax": -1}, "KBMax"),
        ({"OptoutType": 5}, "OptoutType"),
        ({"ScopeCode": "0"}, "ScopeCode"),
        ({"SmsSenderName": "Far too long name"}, "SmsSenderName"),
        ({"DefaultPrefix": "39"}, "DefaultPrefix"),
        ({"NotifyEmail": "nobody"}, "NotifyEmail"),
        ({"UseDefaultSettings": None}, "IdSettings"),
        ({"UseDefaultSettings": False}, "IdSettings"),
        ({"UseDefaultSettings": "true"}, "UseDefaultSettings"),
        ({"UseDefaultSettings": None, "IdSettings": 99}, "IdSettings"),
        ({"UseDefaultSettings": None, "IdSettings": "1"}, "IdSettings"),
    ],
)
def test_create_list_refuses_malformed_fields(sb: Sandbox, console, fields, named) -> None:
    body = SENDER_DETAILS | {"UseDefaultSettings": True} | fields
    r = console("POST", "Console/List", json={k: v for k, v in body.items() if v is not None})
    assert named in console_error(r, 400)
    assert len(sb.lists()) == 3


def test_create_list_accepts_the_doc_example_and_any_case(sb: Sandbox, console) -> None:
    body = {k.lower(): v for k, v in SENDER_DETAILS.items()} | {"idsettings": 1}
    created = create(console, **body | {"Name": None})
    assert created["Name"] == "New Arrivals"
    console_error(console("POST", "Console/List", data="not json"), 400)
    console_error(console("POST", "Console/List", json=[SENDER_DETAILS]), 400)


# --- create, the deprecated method -------------------------------------------------------------


def test_deprecated_create_answers_the_bare_id(sb: Sandbox, console, ctl) -> None:
    body = {
        "Name": "New Arrivals",
        "useDefaultSettings": False,
        "idSettings": 1,
        "business": True,
        "Customer": False,
        "scope": "Direct_Advertising",
        "owneremail": "jane@example.com",
        "nl_sendername": "Jane",
        "tracking": False,
        "optout_type": 0,
        "sms_sendername": "Arrivals",
        "copyTemplate": False,
        "senderfax": "",
        "CountryCode": "FR",
    }
    r = console("POST", "Console/User/Lists", json=body)
    assert (r.status_code, r.json()) == (200, 4)
    details = console("GET", "Console/List/4").json()
    assert (details["Name"], details["OwnerEmail"], details["NLSenderName"]) == (
        "New Arrivals",
        "jane@example.com",
        "Jane",
    )
    assert (details["ScopeCode"], details["TrackOnOpened"], details["OptoutType"]) == (1, False, 0)
    assert (details["SmsSenderName"], details["Customer"], details["CountryCode"]) == (
        "Arrivals",
        False,
        "FR",
    )
    assert details["CompanyName"] == "Sandbox company"  # copied from the reference list 1
    assert details["ReplyTo"] == "jane@example.com"
    r = console("POST", "Console/User/Lists", json={"Name": "Defaults", "useDefaultSettings": True})
    assert r.json() == 5
    entry = ctl("GET", "journal", params={"operation": "list_create_deprecated"})["entries"][-1]
    assert (entry["list_id"], entry["reference_list"]) == (5, 1)


def test_deprecated_create_fails_500_when_the_reference_is_empty(sb: Sandbox, console) -> None:
    r = console("POST", "Console/User/Lists", json={"Name": "From alerts", "idSettings": 3})
    description = console_error(r, 500)
    assert "CompanyName" in description and "list 3" in description  # list 3: an old list
    given = {"owneremail": "a@b.co", "nl_sendername": "A", "CompanyName": "A", "ContactName": "A"}
    given |= {"Address": "A", "City": "A", "CountryCode": "IT", "PermissionReminder": "A"}
    r = console("POST", "Console/User/Lists", json=given | {"Name": "Full", "idSettings": 3})
    assert "WebSiteUrl" in console_error(r, 500)
    r = console("POST", "Console/User/Lists", json=given | {"Name": "x", "WebSiteUrl": "w"})
    assert "idSettings" in console_error(r, 400)  # no reference at all
    assert "Name" in console_error(console("POST", "Console/User/Lists", json={}), 400)
    console("DELETE", "Console/List/1", headers={"If-Match": list_guid(1)})
    body = {"Name": "Defaults", "useDefaultSettings": True}
    console_error(console("POST", "Console/User/Lists", json=body), 500)  # list 1 is gone
    assert [m["id"] for m in sb.lists()] == [2, 3]


# --- update ------------------------------------------------------------------------------------


def test_update_list_needs_the_mandatory_fields(sb: Sandbox, console, ctl) -> None:
    before = console("GET", "Console/List/1").json()
    r = console("PUT", "Console/List/1", json={"Name": "Renamed"})
    assert "Business" in console_error(r, 400)
    assert console("GET", "Console/List/1").json() == before
    changes = {"Description": "About", "WebSiteUrl": "My NEW site", "KBMax": 120}
    ignored = {"IdList": 77, "ListGuid": list_guid(2), "IdSettings": 2, "UseDefaultSettings": True}
    r = console("PUT", "Console/List/1", json=SENDER_DETAILS | changes | ignored)
    assert r.status_code == 200, r.text
    after = r.json()
    assert (after["IdList"], after["ListGuid"]) == (1, list_guid(1))
    assert {k: after[k] for k in changes} == changes
    assert after["ReplyTo"] == before["ReplyTo"]  # not given: kept
    assert after["SmsSenderName"] == "MailUp"
    assert console("GET", "Console/List/1").json() == after
    entry = ctl("GET", "journal", params={"operation": "list_update"})["entries"][-1]
    assert "Description" in entry["changed"] and "IdList" not in entry["changed"]
    console_error(console("PUT", "Console/List/99", json=SENDER_DETAILS), 404)


def test_sms_sender_set_by_update_serves_the_sms_api(sb: Sandbox, console, send) -> None:
    assert send(3).json()["Code"] == "104"  # list 3 has no SMS sender
    r = console("PUT", "Console/List/3", json=SENDER_DETAILS | {"SmsSenderName": "Alerts"})
    assert r.status_code == 200, r.text
    assert send(3).json()["Code"] == "0"
    assert sb.deliveries()[-1]["sender"] == "Alerts"


# --- delete ------------------------------------------------------------------------------------


def test_delete_list_if_match_as_the_doc(sb: Sandbox, console, ctl) -> None:
    created = create(console)
    sb.add_recipient(4, "a@example.com", group_id=3)
    url = "Console/List/4"
    r = console("DELETE", url)
    assert (r.status_code, r.json()) == (
        403,
        {
            "ErrorCode": "403",
            "ErrorDescription": "Missing If-Match header.",
            "ErrorName": "Forbidden",
            "ErrorStack": "",
        },
    )
    r = console("DELETE", url, headers={"If-Match": "aaaa"})
    assert (r.status_code, r.json()["ErrorDescription"]) == (
        412,
        "If-Match header content type must be: System.Guid.",
    )
    assert r.json()["ErrorName"] == "PreconditionFailed"
    r = console("DELETE", url, headers={"If-Match": list_guid(1)})
    assert (r.status_code, r.json()["ErrorDescription"]) == (
        412,
        "Invalid [listGuid] from If-Match header field.",
    )
    assert console("GET", url).status_code == 200  # the refusals changed nothing
    r = console("DELETE", url, headers={"If-Match": f'"{created["ListGuid"].upper()}"'})
    assert (r.status_code, r.content) == (200, b"")
    console_error(console("GET", url), 404)
    console_error(console("DELETE", url, headers={"If-Match": created["ListGuid"]}), 404)
    assert [m["id"] for m in sb.lists()] == [1, 2, 3]
    with pytest.raises(KeyError):
        sb.groups(4)
    entry = ctl("GET", "journal", params={"operation": "list_delete", "processed": "true"})
    assert entry["entries"][-1]["groups_removed"] == 1
    assert entry["entries"][-1]["subscriptions_removed"] == 1


def test_delete_list_takes_its_groups_and_subscriptions(sb: Sandbox, console) -> None:
    sb.add_recipient(2, "a@example.com", group_id=2)
    sb.add_recipient(1, "a@example.com")
    assert console("DELETE", "Console/List/2", headers={"If-Match": list_guid(2)}).ok
    assert [g["id"] for g in sb.groups(1)] == [1]
    assert [r["email"] for r in sb.recipients(1)] == ["a@example.com"]  # the recipient stays
    console_error(console("GET", "Console/Group/2/Recipients"), 404)


# --- groups ------------------------------------------------------------------------------------


def test_group_create_update_read_delete(sb: Sandbox, console, ctl) -> None:
    body = {"Name": "Test REST API Group", "Notes": "Notes should go here"}
    r = console("POST", "Console/List/2/Group", json=body)
    assert (r.status_code, r.json()) == (
        200,
        {
            "Count": None,
            "Deletable": True,
            "Name": "Test REST API Group",
            "Notes": "Notes should go here",
            "idGroup": 3,
            "idList": 2,
        },
    )
    renamed = {"Name": "Test REST API Group renamed", "Notes": "I changed the notes again"}
    r = console("PUT", "Console/List/2/Group/3", json=renamed)
    assert r.json() == {"Count": None, "Deletable": True, "idGroup": 3, "idList": 2} | renamed
    console("POST", "Console/List/2/Group", json={"Name": "buddies"})
    groups = console("GET", "Console/List/2/Groups").json()
    assert envelope(groups) == (0, 20, 0, 3)
    assert [(g["idGroup"], g["Name"], g["Notes"]) for g in groups["Items"]] == [
        (4, "buddies", ""),
        (3, "Test REST API Group renamed", "I changed the notes again"),
        (2, "TEST", "Used for test sending."),
    ]
    assert all(set(g) == GROUP_KEYS for g in groups["Items"])
    params = {"filterby": "\"Name.Contains('Test')\"", "orderby": '"idGroup asc"'}
    found = console("GET", "Console/List/2/Groups", params=params).json()
    assert [g["idGroup"] for g in found["Items"]] == [3]
    params = {"PageNumber": 0, "PageSize": 2, "orderby": "idGroup asc"}
    first = console("GET", "Console/List/2/Groups", params=params).json()
    assert [g["idGroup"] for g in first["Items"]] == [2, 3] and envelope(first) == (0, 2, 0, 3)
    r = console("DELETE", "Console/List/2/Group/3")
    assert (r.status_code, r.content) == (200, b"")
    assert [g["id"] for g in sb.groups(2)] == [2, 4]
    entry = ctl("GET", "journal", params={"operation": "group_create"})["entries"][-1]
    assert (entry["list_id"], entry["group_id"]) == (2, 4)


def test_group_errors(sb: Sandbox, console) -> None:
    console_error(console("POST", "Console/List/99/Group", json={"Name": "x"}), 404)
    assert "Name" in console_error(console("POST", "Console/List/1/Group", json={}), 400)
    r = console("POST", "Console/List/1/Group", json={"Name": "x", "Notes": 3})
    assert "Notes" in console_error(r, 400)
    console_error(console("PUT", "Console/List/1/Group/2", json={"Name": "x"}), 404)  # list 2's
    console_error(console("DELETE", "Console/List/1/Group/2"), 404)
    console_error(console("DELETE", "Console/List/1/Group/99"), 404)
    assert "not deletable" in console_error(console("DELETE", "Console/List/1/Group/1"), 400)
    r = console("PUT", "Console/List/1/Group/1", json={"Name": "x"})
    assert "not deletable" in console_error(r, 400)
    assert [g["name"] for g in sb.groups(1)] == ["TEST"]


def test_removing_every_recipient_of_a_group(sb: Sandbox, console) -> None:
    console("POST", "Console/List/1/Group", json={"Name": "vip"})
    for email in ("a@example.com", "b@example.com"):
        sb.add_recipient(1, email, group_id=3)
    sb.add_recipient(1, "c@example.com", group_id=1)
    r = console("DELETE", "Console/List/1/Group/3/Recipients")
    assert (r.status_code, r.json()) == (200, {"Removed": 2})
    assert sb.group_members(3) == [] and len(sb.group_members(1)) == 1
    assert [r["status"] for r in sb.recipients(1)] == ["subscribed"] * 3  # subscriptions stay
    assert console("DELETE", "Console/List/1/Group/3/Recipients").json() == {"Removed": 0}
    console_error(console("DELETE", "Console/List/2/Group/3/Recipients"), 404)


def test_another_accounts_lists_are_not_found(sb: Sandbox, console) -> None:
    from sandbox.state import Account

    with sb.state.lock:
        sb.state.accounts[99] = Account(99, "m99", "pw", 0.0)
        mlist = sb.state.add_list(99, dict(sb.state.lists[1].settings))
    console_error(console("GET", f"Console/List/{mlist.id}"), 404)
    console_error(console("GET", f"Console/List/{mlist.id}/Groups"), 404)
    r = console("POST", "Console/List", json=SENDER_DETAILS | {"IdSettings": mlist.id})
    assert "IdSettings" in console_error(r, 400)
    assert [i["IdList"] for i in console("GET", "Console/List").json()["Items"]] == [3, 2, 1]
