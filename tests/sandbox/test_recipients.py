"""Console recipients and imports (README †): add one, subscribe and unsubscribe, read by status,
group membership, asynchronous imports (ConfirmEmail, asOptout), their status and list."""

from __future__ import annotations

import re
import time

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import SENDER_DETAILS, bearer, console_error, password_grant

pytestmark = pytest.mark.usefixtures("uncapped")

RECIPIENT_KEYS = {"idRecipient", "Email", "Name", "MobileNumber", "MobilePrefix", "Fields"}
IMPORT_KEYS = {
    "idImport", "Completed", "UpdatedRecipients", "ValidRecipients", "CreatedRecipients",
    "ImportedRecipients", "NotValidRecipients",
}  # fmt: skip
PENDING_IMPORT = dict.fromkeys(IMPORT_KEYS - {"idImport", "Completed"}, 0) | {"Completed": False}
ADA = {
    "Email": "ada@example.com",
    "Name": "Ada",
    "MobileNumber": "3330000001",
    "MobilePrefix": "39",
    "Fields": [{"Id": 1, "Value": "Ada"}, {"Id": 2, "Value": "Lovelace"}],
}


def add(console, route: str, body: dict, **params: str) -> int:
    r = console("POST", route, json=body, params=params)
    assert r.status_code == 200, r.text
    assert type(r.json()) is int
    return int(r.json())


def statuses(sb: Sandbox, list_id: int) -> dict[str, str]:
    return {r["email"]: r["status"] for r in sb.recipients(list_id)}


def items(console, route: str, **params: str) -> list[dict]:
    r = console("GET", route, params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["Items"])


def post_import(console, route: str, body: object, **params: str) -> int:
    r = console("POST", route, json=body, params=params)
    assert r.status_code == 200, r.text
    assert type(r.json()) is int
    return int(r.json())


# --- one recipient -----------------------------------------------------------------------------


def test_add_recipient_to_a_list(sb: Sandbox, console, ctl) -> None:
    recipient_id = add(console, "Console/List/1/Recipient", ADA)
    assert recipient_id == 1
    subscribed = items(console, "Console/List/1/Recipients/Subscribed")
    assert subscribed == [
        {
            "idRecipient": 1,
            "Email": "ada@example.com",
            "Name": "Ada",
            "MobileNumber": "3330000001",
            "MobilePrefix": "39",
            "Fields": [{"Id": 1, "Value": "Ada"}, {"Id": 2, "Value": "Lovelace"}],
        }
    ]
    entry = ctl("GET", "journal", params={"operation": "recipient_add"})["entries"][-1]
    assert (entry["list_id"], entry["recipient_id"], entry["email"]) == (1, 1, "ada@example.com")
    assert (entry["created"], entry["status"], entry["confirm_email_sent"]) == (
        True,
        "subscribed",
        False,
    )
    # The same address in another case: the same recipient, updated field by field.
    again = {"Email": "ADA@example.com", "Name": "Ada L.", "Fields": [{"Id": 2, "Value": "L"}]}
    assert add(console, "Console/List/2/Recipient", again) == 1
    item = items(console, "Console/List/2/Recipients/Subscribed")[0]
    assert (item["Email"], item["Name"], item["MobileNumber"]) == (
        "ada@example.com",
        "Ada L.",
        "3330000001",
    )
    assert item["Fields"] == [{"Id": 1, "Value": "Ada"}, {"Id": 2, "Value": "L"}]
    entry = ctl("GET", "journal", params={"operation": "recipient_add"})["entries"][-1]
    assert (entry["created"], entry["list_id"]) == (False, 2)


def test_confirm_email_leaves_the_recipient_pending(sb: Sandbox, console, ctl) -> None:
    add(console, "Console/List/1/Recipient", {"Email": "bob@example.com"}, ConfirmEmail="true")
    assert statuses(sb, 1) == {"bob@example.com": "pending"}
    pending = items(console, "Console/List/1/Recipients/Pending")
    assert [i["Email"] for i in pending] == ["bob@example.com"]
    assert items(console, "Console/List/1/Recipients/Subscribed") == []
    entry = ctl("GET", "journal", params={"operation": "recipient_add"})["entries"][-1]
    assert (entry["status"], entry["confirm_email_sent"]) == ("pending", True)
    add(console, "Console/List/1/Recipient", {"Email": "bob@example.com"})  # no confirmation
    assert statuses(sb, 1) == {"bob@example.com": "subscribed"}
    add(console, "Console/List/1/Recipient", {"Email": "bob@example.com"}, confirmemail="TRUE")
    assert statuses(sb, 1) == {"bob@example.com": "subscribed"}  # never demoted
    entry = ctl("GET", "journal", params={"operation": "recipient_add"})["entries"][-1]
    assert entry["confirm_email_sent"] is False
    r = console("POST", "Console/List/1/Recipient", json=ADA, params={"ConfirmEmail": "yes"})
    assert "ConfirmEmail" in console_error(r, 400)


def test_add_recipient_to_a_group_joins_its_list(sb: Sandbox, console, ctl) -> None:
    recipient_id = add(console, "Console/Group/2/Recipient", ADA)
    assert [m["id"] for m in sb.group_members(2)] == [recipient_id]
    assert statuses(sb, 2) == {"ada@example.com": "subscribed"}
    assert statuses(sb, 1) == {}
    members = items(console, "Console/Group/2/Recipients")
    assert [m["idRecipient"] for m in members] == [recipient_id]
    assert set(members[0]) == RECIPIENT_KEYS
    entry = ctl("GET", "journal", params={"operation": "group_recipient_add"})["entries"][-1]
    assert (entry["group_id"], entry["list_id"], entry["recipient_id"]) == (2, 2, recipient_id)
    add(console, "Console/Group/1/Recipient", {"Email": "c@example.com"}, ConfirmEmail="true")
    assert statuses(sb, 1) == {"c@example.com": "pending"}
    assert [m["status"] for m in sb.group_members(1)] == ["pending"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Email": "not-an-address"}, "Email"),
        ({"Email": ""}, "Email"),
        ({"Name": "No email"}, "Email"),
        ({"Email": 7}, "Email"),
        ({"Email": "a@example.com", "MobileNumber": "333-000"}, "MobileNumber"),
        ({"Email": "a@example.com", "MobilePrefix": "italy"}, "MobilePrefix"),
        ({"Email": "a@example.com", "Name": ["x"]}, "Name"),
        ({"Email": "a@example.com", "Fields": {"Id": 1}}, "Fields"),
        ({"Email": "a@example.com", "Fields": [{"Id": "1", "Value": "x"}]}, "Fields"),
        ({"Email": "a@example.com", "Fields": [{"Id": 0, "Value": "x"}]}, "Fields"),
    ],
)
def test_add_recipient_refuses_bad_input(sb: Sandbox, console, body, named) -> None:
    assert named in console_error(console("POST", "Console/List/1/Recipient", json=body), 400)
    assert named in console_error(console("POST", "Console/Group/1/Recipient", json=body), 400)
    assert sb.recipients(1) == []


def test_unknown_lists_groups_and_recipients_are_404(sb: Sandbox, console) -> None:
    body = {"Email": "a@example.com"}
    console_error(console("POST", "Console/List/99/Recipient", json=body), 404)
    console_error(console("POST", "Console/Group/99/Recipient", json=body), 404)
    console_error(console("POST", "Console/List/1/Subscribe/99"), 404)
    console_error(console("DELETE", "Console/List/1/Unsubscribe/99"), 404)
    console_error(console("POST", "Console/Group/1/Subscribe/99"), 404)
    console_error(console("POST", "Console/Group/99/Subscribe/1"), 404)
    console_error(console("GET", "Console/List/99/Recipients/Subscribed"), 404)
    console_error(console("GET", "Console/Group/99/Recipients"), 404)
    console_error(console("POST", "Console/List/99/Recipients", json=[body]), 404)
    console_error(console("POST", "Console/Group/99/Recipients", json=[body]), 404)
    console_error(console("GET", "Console/Import/99"), 404)


# --- subscriptions -----------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_on_a_list(sb: Sandbox, console, ctl) -> None:
    recipient_id = add(console, "Console/List/1/Recipient", ADA)
    r = console("DELETE", f"Console/List/1/Unsubscribe/{recipient_id}")
    assert (r.status_code, r.content) == (200, b"")
    assert statuses(sb, 1) == {"ada@example.com": "unsubscribed"}
    unsubscribed = items(console, "Console/List/1/Recipients/Unsubscribed")
    assert [i["idRecipient"] for i in unsubscribed] == [recipient_id]
    add(console, "Console/List/1/Recipient", ADA)  # an add does not undo an unsubscription
    assert statuses(sb, 1) == {"ada@example.com": "unsubscribed"}
    r = console("POST", f"Console/List/1/Subscribe/{recipient_id}")  # forcing it does
    assert (r.status_code, r.content) == (200, b"")
    assert statuses(sb, 1) == {"ada@example.com": "subscribed"}
    entry = ctl("GET", "journal", params={"operation": "list_subscribe"})["entries"][-1]
    assert (entry["list_id"], entry["recipient_id"]) == (1, recipient_id)
    assert (entry["previous_status"], entry["status"]) == ("unsubscribed", "subscribed")
    console("POST", f"Console/List/2/Subscribe/{recipient_id}")  # any recipient of the account
    assert statuses(sb, 2) == {"ada@example.com": "subscribed"}
    r = console("DELETE", f"Console/List/3/Unsubscribe/{recipient_id}")
    assert "not in list 3" in console_error(r, 404)


def test_subscribe_and_unsubscribe_on_a_group(sb: Sandbox, console, ctl) -> None:
    recipient_id = add(console, "Console/List/2/Recipient", ADA)
    console("DELETE", f"Console/List/2/Unsubscribe/{recipient_id}")
    r = console("POST", f"Console/Group/2/Subscribe/{recipient_id}")
    assert (r.status_code, r.content) == (200, b"")
    assert [m["status"] for m in sb.group_members(2)] == ["subscribed"]  # forced, as the doc
    r = console("DELETE", f"Console/Group/2/Unsubscribe/{recipient_id}")
    assert (r.status_code, r.content) == (200, b"")
    assert sb.group_members(2) == []
    assert statuses(sb, 2) == {"ada@example.com": "subscribed"}  # still on the list
    r = console("DELETE", f"Console/Group/2/Unsubscribe/{recipient_id}")
    assert "not in group 2" in console_error(r, 404)
    ops = [e["operation"] for e in ctl("GET", "journal", params={"processed": "true"})["entries"]]
    assert ops.count("group_subscribe") == 1 and ops.count("group_unsubscribe") == 1


def test_recipient_reads_page_filter_and_order(sb: Sandbox, console) -> None:
    for n in range(5):
        sb.add_recipient(1, f"r{n}@example.com", name=f"R{n}", group_id=1)
    sb.add_recipient(1, "gone@example.com", status="unsubscribed")
    page = console("GET", "Console/List/1/Recipients/Subscribed", params={"PageSize": 2}).json()
    assert (page["TotalElementsCount"], page["PageSize"]) == (5, 2)
    assert [i["Email"] for i in page["Items"]] == ["r4@example.com", "r3@example.com"]
    exact = items(
        console, "Console/List/1/Recipients/Subscribed", filterby="Email=='r2@example.com'"
    )
    assert [i["idRecipient"] for i in exact] == [3]
    ordered = items(console, "Console/Group/1/Recipients", orderby="email asc")
    assert [i["Name"] for i in ordered] == ["R0", "R1", "R2", "R3", "R4"]
    assert (
        items(console, "Console/List/1/Recipients/unsubscribed")[0]["Email"] == "gone@example.com"
    )
    r = console("GET", "Console/Group/1/Recipients", params={"orderby": "Fields"})
    console_error(r, 400)


# --- imports -----------------------------------------------------------------------------------


def test_import_completes_after_the_delay(sb: Sandbox, console, ctl) -> None:
    sb.add_recipient(1, "old@example.com", name="Old")
    batch = [
        {"Email": "new@example.com", "Name": "New"},
        {"Email": "OLD@example.com", "Name": "Older"},
        {"Email": "broken"},
        {"Email": "new2@example.com", "MobileNumber": "33x"},
    ]
    import_id = post_import(console, "Console/List/1/Recipients", batch)
    assert import_id == 1
    status = console("GET", f"Console/Import/{import_id}").json()
    assert status == {"idImport": 1} | PENDING_IMPORT
    assert statuses(sb, 1) == {"old@example.com": "subscribed"}  # not applied yet
    entry = ctl("GET", "journal", params={"operation": "recipients_import"})["entries"][-1]
    assert (entry["import_id"], entry["list_id"], entry["items"], entry["mode"]) == (
        1,
        1,
        4,
        "subscribe",
    )
    time.sleep(1.05)  # MailUp's sandbox default: 1.0 s from the request
    status = console("GET", f"Console/Import/{import_id}").json()
    assert status == {
        "idImport": 1,
        "Completed": True,
        "UpdatedRecipients": 1,
        "ValidRecipients": 2,
        "CreatedRecipients": 1,
        "ImportedRecipients": 2,
        "NotValidRecipients": 2,
    }
    assert statuses(sb, 1) == {"old@example.com": "subscribed", "new@example.com": "subscribed"}
    assert [r["name"] for r in sb.recipients(1)] == ["Older", "New"]
    entry = ctl("GET", "journal", params={"operation": "import_status"})["entries"][-1]
    assert (entry["import_id"], entry["completed"]) == (1, True)


def test_import_detail_counts_rows(sb: Sandbox, console) -> None:
    sb.set_import_delay(3600)
    sb.add_recipient(1, "old@example.com")
    batch = [{"Email": "new@example.com"}, {"Email": "OLD@example.com"}, {"Email": "broken"}]
    import_id = post_import(console, "Console/List/1/Recipients", batch)
    running = console("GET", f"Console/Imports/{import_id}").json()
    assert (running["IdImport"], running["IdList"]) == (import_id, 1)
    assert (running["StatusCode"], running["EndDate"]) == (2, "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", running["StartDate"])
    sb.complete_import(import_id)
    done = console("GET", f"Console/Imports/{import_id}").json()
    assert done["StatusCode"] == 3 and done["EndDate"] >= done["StartDate"]
    assert done["Rows"] == {
        "Invalid": {"Total": 1},
        "Total": 3,
        "Valid": {"EmailNew": 1, "EmailUpdate": 1, "Total": 2},
    }
    console_error(console("GET", "Console/Imports/99"), 404)


def test_import_delay_is_measured_from_the_request(sb: Sandbox, console, ctl) -> None:
    assert ctl("GET", "imports") == {"delay": 1.0}
    assert ctl("POST", "imports", json={"delay": 0.3}) == {"delay": 0.3}
    import_id = post_import(console, "Console/List/2/Recipients", [{"Email": "a@example.com"}])
    sb.set_import_delay(0)  # only for imports asked for from now on
    assert console("GET", f"Console/Import/{import_id}").json()["Completed"] is False
    time.sleep(0.35)
    assert sb.imports()[0]["completed"] is not None  # a control read completes it too
    now = post_import(console, "Console/List/2/Recipients", [{"Email": "b@example.com"}])
    assert console("GET", f"Console/Import/{now}").json()["Completed"] is True
    for bad in ({"delay": -1}, {"delay": "1"}, {"delay": True}, {}):
        assert requests.post(f"{sb.control_url}/imports", json=bad, timeout=5).status_code == 400


def test_import_completed_through_the_control_route(sb: Sandbox, console, ctl) -> None:
    sb.set_import_delay(3600)
    import_id = post_import(console, "Console/Group/1/Recipients", [ADA], ConfirmEmail="true")
    done = ctl("POST", f"imports/{import_id}/complete")
    assert (done["id"], done["list_id"], done["group_id"], done["mode"]) == (1, 1, 1, "confirm")
    assert done["counts"] == {"valid": 1, "not_valid": 0, "created": 1, "updated": 0, "imported": 1}
    assert done["completed"] is not None
    assert statuses(sb, 1) == {"ada@example.com": "pending"}
    assert [m["email"] for m in sb.group_members(1)] == ["ada@example.com"]
    assert sb.complete_import(import_id) == done  # once only
    r = requests.post(f"{sb.control_url}/imports/99/complete", timeout=5)
    assert r.status_code == 404


def test_import_as_optout_unsubscribes(sb: Sandbox, console) -> None:
    sb.set_import_delay(0)
    sb.add_recipient(2, "a@example.com", group_id=2)
    sb.add_recipient(2, "b@example.com", status="pending")
    batch = [{"Email": "a@example.com"}, {"Email": "b@example.com"}, {"Email": "c@example.com"}]
    import_id = post_import(
        console, "Console/Group/2/Recipients", batch, importType="asOptout", ConfirmEmail="true"
    )
    status = console("GET", f"Console/Import/{import_id}").json()
    assert (status["CreatedRecipients"], status["UpdatedRecipients"]) == (1, 2)
    assert statuses(sb, 2) == dict.fromkeys(
        ("a@example.com", "b@example.com", "c@example.com"), "unsubscribed"
    )
    assert [m["email"] for m in sb.group_members(2)] == ["a@example.com"]  # left alone
    # An ordinary import does not undo the opt-out.
    post_import(console, "Console/List/2/Recipients", batch[:1])
    assert statuses(sb, 2)["a@example.com"] == "unsubscribed"


def test_import_with_confirm_email_is_pending(sb: Sandbox, console) -> None:
    sb.set_import_delay(0)
    sb.add_recipient(1, "already@example.com")
    batch = [{"Email": "already@example.com"}, {"Email": "fresh@example.com"}]
    post_import(console, "Console/List/1/Recipients", batch, ConfirmEmail="true")
    assert statuses(sb, 1) == {"already@example.com": "subscribed", "fresh@example.com": "pending"}
    pending = items(console, "Console/List/1/Recipients/Pending")
    assert [i["Email"] for i in pending] == ["fresh@example.com"]


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"Email": "a@example.com"}, {}),
        ("a@example.com", {}),
        ([{"Email": "a@example.com"}, "b@example.com"], {}),
        ([{"Email": "a@example.com", "Fields": "x"}], {}),
        ([{"Email": "a@example.com"}], {"importType": "asSomethingElse"}),
        ([{"Email": "a@example.com"}], {"ConfirmEmail": "maybe"}),
    ],
)
def test_import_refuses_malformed_requests(sb: Sandbox, console, body, params) -> None:
    r = console("POST", "Console/List/1/Recipients", json=body, params=params)
    console_error(r, 400)
    assert sb.imports() == []


def test_empty_import_and_the_imports_list(sb: Sandbox, console) -> None:
    sb.set_import_delay(0)
    first = post_import(console, "Console/List/1/Recipients", [])
    second = post_import(console, "Console/List/2/Recipients", [{"Email": "a@example.com"}])
    listed = console("GET", "Console/Imports").json()
    assert listed["TotalElementsCount"] == 2
    assert [i["idImport"] for i in listed["Items"]] == [second, first]
    assert all(set(i) == IMPORT_KEYS for i in listed["Items"])
    assert listed["Items"][1] == {"idImport": first, "Completed": True} | {
        k: 0 for k in IMPORT_KEYS - {"idImport", "Completed"}
    }
    found = console("GET", "Console/Imports", params={"filterby": "CreatedRecipients==1"}).json()
    assert [i["idImport"] for i in found["Items"]] == [second]


def test_an_import_goes_with_its_list(sb: Sandbox, console) -> None:
    sb.set_import_delay(3600)
    body = SENDER_DETAILS | {"UseDefaultSettings": True}
    created = console("POST", "Console/List", json=body).json()
    import_id = post_import(console, "Console/List/4/Recipients", [{"Email": "a@example.com"}])
    console("DELETE", "Console/List/4", headers={"If-Match": created["ListGuid"]})
    console_error(console("GET", f"Console/Import/{import_id}"), 404)
    assert sb.imports() == []


def test_an_import_of_a_deleted_group_still_subscribes(sb: Sandbox, console) -> None:
    sb.set_import_delay(3600)
    console("POST", "Console/List/1/Group", json={"Name": "tmp"})
    import_id = post_import(console, "Console/Group/3/Recipients", [{"Email": "a@example.com"}])
    console("DELETE", "Console/List/1/Group/3")
    sb.complete_import(import_id)
    assert statuses(sb, 1) == {"a@example.com": "subscribed"}


# --- control routes and Python conveniences ------------------------------------------------------


def test_control_routes_match_python(sb: Sandbox, console, ctl) -> None:
    added = ctl(
        "POST",
        "lists/1/recipients",
        json={"email": "a@example.com", "status": "pending", "group_id": 1, "fields": {"3": "x"}},
    )
    assert (added["email"], added["status"], added["fields"]) == (
        "a@example.com",
        "pending",
        {"3": "x"},
    )
    sb.add_recipient(1, "b@example.com", "unsubscribed", mobile_number="3331234567")
    assert ctl("GET", "state/lists")["lists"] == sb.lists()
    assert ctl("GET", "state/lists/1/groups")["groups"] == sb.groups(1)
    assert sb.groups(1)[0]["members"] == [1]
    assert ctl("GET", "state/lists/1/recipients")["recipients"] == sb.recipients(1)
    pending = ctl("GET", "state/lists/1/recipients", params={"status": "pending"})["recipients"]
    assert pending == sb.recipients(1, "pending") and len(pending) == 1
    assert ctl("GET", "state/groups/1/members")["members"] == sb.group_members(1)
    post_import(console, "Console/List/1/Recipients", [])
    assert ctl("GET", "state/imports")["imports"] == sb.imports()
    for route in ("state/lists/99/groups", "state/lists/99/recipients", "state/groups/99/members"):
        assert requests.get(f"{sb.control_url}/{route}", timeout=5).status_code == 404
    bad_adds = [{"status": "subscribed"}, {"email": "nope"}, {"email": "a@b.co", "status": "gone"}]
    for bad in bad_adds:
        r = requests.post(f"{sb.control_url}/lists/1/recipients", json=bad, timeout=5)
        assert r.status_code == 400
    r = requests.post(f"{sb.control_url}/lists/9/recipients", json={"email": "a@b.co"}, timeout=5)
    assert r.status_code == 404
    with pytest.raises(ValueError):
        sb.add_recipient(1, "a@example.com", group_id=2)  # a group of list 2
    with pytest.raises(ValueError):
        sb.recipients(1, "gone")


def test_reset_restores_lists_groups_recipients_and_imports(sb: Sandbox, console, ctl) -> None:
    created = console(
        "POST",
        "Console/User/Lists",
        json={"Name": "Tmp", "useDefaultSettings": True},
    )
    assert created.json() == 4
    sb.add_recipient(1, "a@example.com", group_id=1)
    sb.set_import_delay(5)
    post_import(console, "Console/List/1/Recipients", [{"Email": "b@example.com"}])
    ctl("POST", "reset")
    assert [m["id"] for m in sb.lists()] == [1, 2, 3]
    assert [(g["id"], g["name"], g["deletable"]) for g in sb.groups(1)] == [(1, "TEST", False)]
    assert sb.recipients(1) == [] and sb.group_members(1) == [] and sb.imports() == []
    assert ctl("GET", "imports") == {"delay": 1.0}
    token = password_grant(sb).json()["access_token"]  # the reset forgot every token too
    body = {"Name": "Again", "useDefaultSettings": True}
    url = f"{sb.console_url}/Console/User/Lists"
    assert requests.post(url, json=body, headers=bearer(token), timeout=5).json() == 4
