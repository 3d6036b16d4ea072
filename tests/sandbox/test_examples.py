"""The sandbox answers in the shape of MailUp's real answers (tests/fixtures/mailup-examples/):
the same fields, nested alike, a page's items by their first one; values may differ."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox import Sandbox
from tests.sandbox.conftest import AUTH, GUIDS, SEND_MESSAGE, password_grant
from tests.test_examples import parsed

pytestmark = pytest.mark.usefixtures("uncapped")


def shape(value: Any) -> Any:
    """The fields of an answer, nested; a list by its first item; a scalar by its JSON kind."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if type(value) is int else None


@pytest.mark.parametrize(
    ("name", "method", "route", "body"),
    [
        ("mailup_helppage__List_Tags_GET.json", "GET", "List/1/Tags", None),
        ("mailup_helppage__User_Lists_GET.json", "GET", "User/Lists", None),
        ("mailupy__List_1_Groups_GET.json", "GET", "List/1/Groups", None),
        ("mailupy__Group_6_Recipients_GET.json", "GET", "Group/1/Recipients", None),
        ("mailupy__List_1_Group_POST.json", "POST", "List/1/Group", {"Name": "Gruppo"}),
        ("mailupy__List_1_Recipient_POST.json", "POST", "List/1/Recipient", {"Email": "a@b.it"}),
        ("mailupy__Group_6_Recipient_POST.json", "POST", "Group/1/Recipient", {"Email": "a@b.it"}),
        (
            "mailupy__Email_Send_POST.json",
            "POST",
            "Email/Send",
            {"Email": "a@b.it", "idMessage": 1},
        ),
        ("mailup_wcfhelp__ConsoleImportDetail_excerpt.json", "GET", "Imports/1", None),
    ],
)
def test_console_answers(
    sb: Sandbox, console, name: str, method: str, route: str, body: Any
) -> None:
    console("POST", "Console/List/1/Tag", json="news")
    console("POST", "Console/List/1/Email", json={"Subject": "Hello"})
    console("POST", "Console/List/1/Recipient", json={"Email": "a@b.it"})
    console("POST", "Console/List/1/Recipients", json=[{"Email": "b@b.it"}])

    r = console(method, f"Console/{route}", json=body)

    assert r.status_code == 200, r.text
    assert shape(r.json()) == shape(parsed(name))


def test_message_items_hold_the_recorded_fields(console) -> None:
    """The doc's items add LastSendDate and Tags to what the recording shows."""
    console("POST", "Console/List/1/Email", json={"Subject": "Hello"})
    [item] = console("GET", "Console/List/1/Emails").json()["Items"]
    [recorded] = parsed("mailupy__List_1_Emails_GET.json")["Items"]
    assert set(recorded) <= set(item)


@pytest.mark.parametrize(
    "route", ["List/1/Unsubscribe/{id}", "Group/1/Unsubscribe/{id}"], ids=["list", "group"]
)
def test_an_unsubscription_answers_an_empty_body(console, route: str) -> None:
    recipient_id = console("POST", "Console/Group/1/Recipient", json={"Email": "a@b.it"}).json()
    r = console("DELETE", f"Console/{route.format(id=recipient_id)}")
    assert (r.status_code, r.content) == (200, b"")


def test_the_expired_token_error(sb: Sandbox, tokens) -> None:
    sb.expire_tokens()
    r = requests.get(
        f"{sb.console_url}/Console/List/1/Tags",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert r.status_code == 401
    assert set(r.json()) == set(parsed("mailup_helppage__401_expired_token.json"))


def test_token_list_secret_and_transactional_answers(sb: Sandbox) -> None:
    token = password_grant(sb).json()
    assert shape(token) == shape(parsed("mailup_helppage__token_3600.json"))
    r = requests.post(
        f"{sb.sms_url}/lists/1/listsecret", json={"ListGUID": GUIDS[1]}, auth=AUTH, timeout=5
    )
    assert shape(r.json()) == shape(parsed("dpi_sms_mailup__listsecret_POST.json"))
    sent = requests.post(f"{sb.send_url}/messages/sendmessage", json=SEND_MESSAGE, timeout=5)
    assert shape(sent.json()) == shape(parsed("pagopa__sendmessage.json"))
    template = {k: v for k, v in SEND_MESSAGE.items() if k != "Html"} | {"TemplateId": 7}
    sent = requests.post(f"{sb.send_url}/messages/sendtemplate", json=template, timeout=5)
    assert shape(sent.json()) == shape(parsed("nodenock__sendtemplate.json"))
