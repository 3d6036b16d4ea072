"""Console email messages (doc 003): create, details, update, dynamic fields, copy, publish, read
(all, published, archived, tags), tags, attachments in five slots."""

from __future__ import annotations

import base64
import re

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import console_error

pytestmark = pytest.mark.usefixtures("uncapped")

DETAILS_KEYS = {
    "idMessage", "idList", "Subject", "Content", "Head", "Body", "Embed", "IsConfirmation",
    "Notes", "Fields", "UseDynamicField", "Tags", "TrackingInfo", "Attachments", "CreationDate",
}  # fmt: skip
ITEM_KEYS = {
    "idMessage", "idList", "Subject", "Notes", "CreationDate", "LastSendDate", "Tags",
    "ServiceType",
}  # fmt: skip
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z")
PDF = base64.b64encode(b"%PDF-1.4 sandbox").decode()


def create(console, list_id: int = 1, **fields) -> dict:
    body = {"Subject": "Hello", "Content": "<p>Hi</p>"} | fields
    r = console("POST", f"Console/List/{list_id}/Email", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def tag(console, name: str, list_id: int = 1) -> dict:
    r = console("POST", f"Console/List/{list_id}/Tag", json=name)
    assert r.status_code == 200, r.text
    return dict(r.json())


def ids(console, route: str, **params: str) -> list[int]:
    r = console("GET", route, params=params)
    assert r.status_code == 200, r.text
    return [i["idMessage"] for i in r.json()["Items"]]


# --- create, details ---------------------------------------------------------------------------


def test_create_and_details(sb: Sandbox, console, ctl) -> None:
    news = tag(console, "newsletter")
    assert news == {"Enabled": True, "Id": 1, "Name": "newsletter"}
    created = create(
        console,
        Notes="first",
        Head="<style></style>",
        Embed=True,
        Tags=[{"Id": 1, "Name": "ignored", "Enabled": False}],
        TrackingInfo={"Enabled": True, "Protocols": ["http", "https"], "CustomParams": "a=b"},
    )
    assert set(created) == DETAILS_KEYS
    assert (created["idMessage"], created["idList"], created["Subject"]) == (1, 1, "Hello")
    assert (created["Content"], created["Head"], created["Notes"]) == (
        "<p>Hi</p>",
        "<style></style>",
        "first",
    )
    assert (created["Embed"], created["IsConfirmation"], created["Body"]) == (True, False, "")
    assert created["Tags"] == [news]
    assert created["TrackingInfo"] == {
        "CustomParams": "a=b",
        "Enabled": True,
        "Protocols": ["http", "https"],
    }
    assert created["Attachments"] == [] and DATE.fullmatch(created["CreationDate"])
    assert (created["Fields"], created["UseDynamicField"]) == ([], False)  # disabled by default
    assert console("GET", "Console/List/1/Email/1").json() == created
    console_error(console("GET", "Console/List/2/Email/1"), 404)  # another list's message
    console_error(console("GET", "Console/List/1/Email/99"), 404)
    console_error(console("GET", "Console/List/99/Email/1"), 404)
    second = create(console, list_id=2, Subject="Other")
    assert second["idMessage"] == 2  # account-wide ids
    entry = ctl("GET", "journal", params={"operation": "email_create"})["entries"][0]
    assert (entry["processed"], entry["message_id"], entry["list_id"]) == (True, 1, 1)
    assert [m["subject"] for m in sb.messages(1)] == ["Hello"]
    assert requests.get(f"{sb.console_url}/Console/List/1/Emails", timeout=5).status_code == 401


def test_dynamic_fields_are_off_unless_a_field_or_the_flag(sb: Sandbox, console) -> None:
    field = {"Id": 1, "Value": "Jane", "Description": "name"}
    assert create(console, Fields=[field])["UseDynamicField"] is True
    assert create(console, UseDynamicField=True)["UseDynamicField"] is True
    plain = create(console)
    assert plain["UseDynamicField"] is False
    r = console("PUT", "Console/List/1/Email/3/DynamicFields", json={"UseDynamicField": True})
    assert r.status_code == 200 and r.json()["UseDynamicField"] is True
    r = console("PUT", "Console/List/1/Email/3/DynamicFields", json={"usedynamicfield": False})
    assert r.json()["UseDynamicField"] is False  # names match in any case
    for bad in ({}, {"UseDynamicField": "true"}, {"UseDynamicField": None}):
        r = console("PUT", "Console/List/1/Email/3/DynamicFields", json=bad)
        console_error(r, 400)
    assert console("GET", "Console/List/1/Email/1").json()["Fields"] == [field]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Content": "x"}, "Subject"),
        ({"Subject": ""}, "Subject"),
        ({"Subject": 5}, "Subject"),
        ({"Subject": "s", "Embed": "yes"}, "Embed"),
        ({"Subject": "s", "Fields": [{"Value": "x"}]}, "Fields"),
        ({"Subject": "s", "Tags": [{"Name": "newsletter"}]}, "Tags"),
        ({"Subject": "s", "Tags": [{"Id": 7}]}, "Tag 7"),
        ({"Subject": "s", "TrackingInfo": {"Enabled": "on"}}, "TrackingInfo"),
    ],
)
def test_create_refuses(sb: Sandbox, console, body, named) -> None:
    assert named in console_error(console("POST", "Console/List/1/Email", json=body), 400)
    assert sb.messages() == []


def test_tags_must_be_of_the_list(sb: Sandbox, console) -> None:
    tag(console, "mine")
    other = tag(console, "theirs", list_id=2)
    r = console("POST", "Console/List/1/Email", json={"Subject": "s", "Tags": [other]})
    assert "Tag 2" in console_error(r, 400)
    console_error(console("POST", "Console/List/9/Email", json={"Subject": "s"}), 404)
    assert sb.messages() == []


# --- update, copy, visibility ------------------------------------------------------------------


def test_update_keeps_tags_when_empty_and_fields_when_absent(sb: Sandbox, console) -> None:
    first, second = tag(console, "a"), tag(console, "b")
    field = {"Id": 2, "Value": "v", "Description": ""}
    created = create(console, Tags=[first], Fields=[field], Notes="n")
    body = created | {"Subject": "Changed", "Tags": [], "Content": "<p>new</p>"}
    del body["Fields"]
    updated = console("PUT", "Console/List/1/Email/1", json=body).json()
    assert (updated["Subject"], updated["Content"], updated["Notes"]) == (
        "Changed",
        "<p>new</p>",
        "n",
    )
    assert updated["Tags"] == [first] and updated["Fields"] == [field]
    assert updated["UseDynamicField"] is True
    updated = console("PUT", "Console/List/1/Email/1", json={"Subject": "S", "Tags": [second]})
    assert updated.json()["Tags"] == [second]
    assert updated.json()["Content"] == ""  # what an update leaves out is reset
    assert updated.json()["TrackingInfo"]["Enabled"] is False
    r = console("PUT", "Console/List/1/Email/1", json={"Content": "no subject"})
    assert "Subject" in console_error(r, 400)
    r = console("PUT", "Console/List/1/Email/1", json={"Subject": "x", "Tags": [{"Id": 99}]})
    console_error(r, 400)
    assert console("GET", "Console/List/1/Email/1").json()["Subject"] == "S"  # nothing changed
    console_error(console("PUT", "Console/List/2/Email/1", json={"Subject": "x"}), 404)


def test_copy(sb: Sandbox, console) -> None:
    news = tag(console, "news")
    create(console, Tags=[news], Notes="orig")
    console("POST", "Console/List/1/Email/1/Attachment/2", json={"Base64Data": PDF, "Name": "a"})
    same = console("POST", "Console/List/1/Email/1").json()
    assert (same["idMessage"], same["Subject"], same["Notes"]) == (2, "Hello", "orig")
    assert same["Tags"] == [news] and [a["Slot"] for a in same["Attachments"]] == [2]
    notes = console("POST", "Console/List/1/Email/1", json={"Notes": "copy"}).json()
    assert (notes["idMessage"], notes["Subject"], notes["Notes"]) == (3, "Hello", "copy")
    both = console("POST", "Console/List/1/Email/1", json={"Subject": "S2", "Notes": "N2"})
    assert (both.json()["Subject"], both.json()["Notes"]) == ("S2", "N2")
    console_error(console("POST", "Console/List/2/Email/1"), 404)


def test_publish_archive_and_reads(sb: Sandbox, console, ctl) -> None:
    for n in range(3):
        create(console, Subject=f"test {n}", Notes=f"note {n}")
    create(console, Subject="Other")
    body = console("GET", "Console/List/1/Emails").json()
    assert (body["TotalElementsCount"], body["PageSize"], body["IsPaginated"]) == (4, 20, False)
    item = body["Items"][-1]
    assert set(item) == ITEM_KEYS
    assert item["LastSendDate"] == "0001-01-01 00:00:00Z"  # never sent
    assert (item["ServiceType"], item["Tags"], item["Subject"]) == (0, [], "test 0")
    assert [i["idMessage"] for i in body["Items"]] == [4, 3, 2, 1]  # newest first
    params = {"filterby": "\"Subject.Contains('test')\"", "orderby": '"idMessage asc"'}
    assert ids(console, "Console/List/1/Emails", **params) == [1, 2, 3]
    assert ids(console, "Console/List/1/Emails", filterby='"servicetype==1"') == []
    page = console("GET", "Console/List/1/Emails", params={"PageNumber": 1, "PageSize": 3})
    assert [i["idMessage"] for i in page.json()["Items"]] == [1]
    console_error(console("GET", "Console/List/1/Emails", params={"filterby": "Nope==1"}), 400)

    assert console("GET", "Console/List/1/Online/Emails").json()["Items"] == []
    r = console("PUT", "Console/List/1/Email/2/Online/Visibility", json=True)
    assert (r.status_code, r.content) == (200, b"")
    published = console("GET", "Console/List/1/Online/Emails").json()["Items"]
    assert [p["idMessage"] for p in published] == [2] and published[0]["Url"]
    assert set(published[0]) == ITEM_KEYS | {"Url"}
    console("PUT", "Console/List/1/Email/2/Online/Visibility", json=False)
    assert console("GET", "Console/List/1/Online/Emails").json()["Items"] == []
    for bad in ("true", 1, {"Visible": True}):
        r = console("PUT", "Console/List/1/Email/2/Online/Visibility", json=bad)
        console_error(r, 400)
    r = console("PUT", "Console/List/1/Email/2/Online/Visibility", data="")
    console_error(r, 400)

    assert console("GET", "Console/List/1/Archived/Emails").json()["Items"] == []
    assert ctl("POST", "messages/3", json={"archived": True})["archived"] is True
    assert ids(console, "Console/List/1/Archived/Emails") == [3]
    r = requests.post(f"{sb.control_url}/messages/3", json={"hidden": True}, timeout=5)
    assert r.status_code == 400
    assert requests.post(f"{sb.control_url}/messages/99", json={}, timeout=5).status_code == 404
    for not_mailups in ("Emails/Published", "Emails/Archived"):
        assert console("GET", f"Console/List/1/{not_mailups}").status_code == 404


def test_tags_query_matches_ids_or_names(sb: Sandbox, console) -> None:
    hello, customers, lone = (
        tag(console, "hello, world"),
        tag(console, "customers"),
        tag(console, "x"),
    )
    create(console, Tags=[hello])
    create(console, Tags=[customers])
    create(console, Tags=[lone])
    create(console)
    route = "Console/List/1/Emails"
    assert ids(console, route, tags="\"1,13,'hello, world'\"") == [1]
    assert ids(console, route, tags="\"13,customers,welcome message,'hello, world'\"") == [2, 1]
    assert ids(console, route, tags="3") == [3]
    assert ids(console, route, tags="Customers") == []  # names match exactly
    assert ids(console, route, tags="") == [4, 3, 2, 1]
    console_error(console("GET", route, params={"tags": "'open"}), 400)


# --- tags --------------------------------------------------------------------------------------


def tags(console, list_id: int = 1, **params: str) -> list[dict]:
    r = console("GET", f"Console/List/{list_id}/Tags", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["Items"])


def test_tag_routes(sb: Sandbox, console) -> None:
    assert tags(console) == []
    first = tag(console, "  my-new-tag ")
    assert first == {"Enabled": True, "Id": 1, "Name": "my-new-tag"}
    tag(console, "other", list_id=2)
    assert tags(console) == [first]
    for bad in ({"Name": "x"}, 5, "", "   ", "MY-NEW-TAG", "x" * 51):
        console_error(console("POST", "Console/List/1/Tag", json=bad), 400)
    console_error(console("POST", "Console/List/1/Tag", data="not json"), 400)
    changed = {"Enabled": False, "Id": 1, "Name": "renamed"}
    assert console("PUT", "Console/List/1/Tag/1", json=changed).json() == changed
    console_error(console("PUT", "Console/List/1/Tag/1", json=changed | {"Id": 2}), 400)
    console_error(console("PUT", "Console/List/1/Tag/1", json=changed | {"Name": ""}), 400)
    console_error(console("PUT", "Console/List/1/Tag/1", json=changed | {"Enabled": 0}), 400)
    console_error(console("PUT", "Console/List/1/Tag/2", json=changed), 404)  # list 2's
    create(console, Tags=[changed])
    r = console("DELETE", "Console/List/1/Tag/1")
    assert (r.status_code, r.content) == (200, b"")
    assert console("GET", "Console/List/1/Email/1").json()["Tags"] == []
    assert sb.messages()[0]["tag_ids"] == []
    console_error(console("DELETE", "Console/List/1/Tag/1"), 404)
    console_error(console("GET", "Console/List/9/Tags"), 404)


def test_tags_come_in_pages_newest_first(sb: Sandbox, console) -> None:
    for name in ("a", "b", "c"):
        tag(console, name)
    body = console("GET", "Console/List/1/Tags", params={"PageSize": 2}).json()
    assert body == {
        "IsPaginated": False,
        "Items": [
            {"Enabled": True, "Id": 3, "Name": "c"},
            {"Enabled": True, "Id": 2, "Name": "b"},
        ],
        "PageNumber": 0,
        "PageSize": 2,
        "Skipped": 0,
        "TotalElementsCount": 3,
    }
    assert [t["Name"] for t in tags(console, PageNumber="1", PageSize="2")] == ["a"]
    assert [t["Id"] for t in tags(console, filterby="Name=='b'")] == [2]
    console_error(console("GET", "Console/List/1/Tags", params={"filterby": "Nope==1"}), 400)


# --- attachments -------------------------------------------------------------------------------


def test_attachment_slots(sb: Sandbox, console, ctl) -> None:
    create(console)
    route = "Console/List/1/Email/1/Attachment"
    assert console("GET", route).json() == []
    r = console(
        "POST",
        f"{route}/3",
        json={"Base64Data": PDF, "Name": "a.pdf", "Slot": 3, "idList": 1, "idMessage": 1},
    )
    assert r.status_code == 200, r.text
    assert r.json() == [{"Name": "a.pdf", "Path": "attachments/1/1/3/a.pdf", "Slot": 3}]
    console("POST", f"{route}/1", json={"Base64Data": PDF, "Name": "b.pdf"})
    after = console("POST", f"{route}/3", json={"Base64Data": PDF, "Name": "c.pdf"}).json()
    assert [(a["Slot"], a["Name"]) for a in after] == [(1, "b.pdf"), (3, "c.pdf")]  # replaced
    assert console("GET", route).json() == after
    assert console("GET", "Console/List/1/Email/1").json()["Attachments"] == after
    assert sb.messages()[0]["attachments"][0]["size"] == len(b"%PDF-1.4 sandbox")
    for slot in range(1, 6):
        console("POST", f"{route}/{slot}", json={"Base64Data": PDF, "Name": f"{slot}.pdf"})
    assert len(console("GET", route).json()) == 5
    for slot in (0, 6, -1):
        r = console("POST", f"{route}/{slot}", json={"Base64Data": PDF, "Name": "x"})
        assert "Slot" in console_error(r, 400)
        console_error(console("DELETE", f"{route}/{slot}"), 400)
    remaining = console("DELETE", f"{route}/2").json()
    assert [a["Slot"] for a in remaining] == [1, 3, 4, 5]
    assert console("DELETE", f"{route}/2").json() == remaining  # an empty slot: same answer
    console_error(console("GET", "Console/List/2/Email/1/Attachment"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"Base64Data": PDF[:8] + "\r\n" + PDF[8:], "Name": "a"},
        {"Base64Data": PDF[:8] + "\n" + PDF[8:], "Name": "a"},
        {"Base64Data": "not base64!", "Name": "a"},
        {"Base64Data": "QUJD=", "Name": "a"},
        {"Base64Data": "", "Name": "a"},
        {"Base64Data": PDF},
        {"Base64Data": PDF, "Name": " "},
        {"Base64Data": PDF, "Name": "a", "Slot": 2},
        {"Base64Data": PDF, "Name": "a", "idMessage": 9},
    ],
)
def test_attachment_refused(sb: Sandbox, console, body) -> None:
    create(console)
    console_error(console("POST", "Console/List/1/Email/1/Attachment/1", json=body), 400)
    assert console("GET", "Console/List/1/Email/1/Attachment").json() == []


def test_faults_apply_to_message_routes(sb: Sandbox, console) -> None:
    sb.force(500, "500", operation="email_create", after_processing=True)
    console_error(console("POST", "Console/List/1/Email", json={"Subject": "s"}), 500)
    assert [m["subject"] for m in sb.messages()] == ["s"]  # processed, then the answer was lost
    sb.force(503, None, operation="tags_list")
    assert console("GET", "Console/List/1/Tags").status_code == 503
