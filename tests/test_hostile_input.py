"""Hostile input at the door (issue 19): no string chooses who gets the mail, every id and
number is within MailUp's range, and each refusal names its field with nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producers import InvalidJob, manage_list_secret, send_email, send_email_template, send_sms
from producers.campaigns import send_campaign
from producers.lists import add_recipient, create_group, update_group
from producers.messages import delete_tag
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import job_count, run_once
from worker.jobs.email import MAX_TOTAL_BYTES

EVE = "eve@evil.example"
TOO_BIG_ID = 2**31  # MailUp's ids end at 2**31 - 1


def _email(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "sender": "Shop <shop@example.com>",
        "to": ["ada@example.com"],
        "subject": "Your order",
        "text": "Thanks!",
    }
    return send_email(**{**fields, **overrides})


def _sms(**overrides: Any) -> str:
    fields = {"list_id": 1, "recipient": "+393350000001", "content": "hello"}
    return send_sms(**{**fields, **overrides})


def _refused(call: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        call()
    assert raised.value.field == field, raised.value.errors
    assert job_count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sender": f"Shop\r\nBcc: {EVE} <shop@example.com>"}, "sender"),
        ({"to": [f"<{EVE}>ada@example.com"]}, "to.0"),
        ({"to": [f"Ada <ada@example.com>, Eve <{EVE}>"]}, "to.0"),
        ({"to": [f"ada@example.com, {EVE}"]}, "to.0.email"),
        ({"to": [f"Ada <ada@example.com> <{EVE}>"]}, "to.0"),
        ({"to": [f"Ada <ada@example.com> {EVE}"]}, "to.0"),
        ({"to": [f"{EVE} <ada@example.com>"]}, "to.0.name"),  # parseaddr: eve's
        ({"to": [f"Bcc: {EVE} <ada@example.com>"]}, "to.0.name"),
        ({"to": ['"Lovelace, Ada" <ada@example.com>']}, "to.0.name"),
        ({"to": ["ada@example.com\x00"]}, "to.0"),
        ({"to": ["ada@example.com\x85"]}, "to.0"),  # NEL: str.strip would drop it
        ({"to": ["ada@example.com\u2028"]}, "to.0"),
        ({"to": [{"email": f"Eve <{EVE}>"}]}, "to.0.email"),
        ({"to": [("Ada\r\nBcc: x@example.com", "ada@example.com")]}, "to.0.name"),
        ({"to": [(f"Ada <{EVE}>", "ada@example.com")]}, "to.0.name"),
        ({"cc": [f"ada@example.com\n{EVE}"]}, "cc.0"),
        ({"bcc": ['"ada@example.com"@evil.example']}, "bcc.0.email"),  # a quoted local part
        ({"reply_to": f"Shop <{EVE}>"}, "reply_to"),  # MailUp's ReplyTo is one bare address
        ({"reply_to": f"shop@example.com\r\nBcc: {EVE}"}, "reply_to"),
    ],
)
def test_no_address_string_chooses_another_recipient(
    env: Env, change: dict[str, Any], field: str
) -> None:
    _refused(lambda: _email(**change), field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "Hi\x00"}, "subject"),
        ({"subject": "Hi\x0bthere"}, "subject"),  # VT
        ({"subject": "Hi\x0cthere"}, "subject"),  # FF
        ({"subject": "Hi\u2029Bcc: x"}, "subject"),
        ({"sender": ("Shop\x1f", "shop@example.com")}, "sender.name"),
        ({"charset": "utf-8\r\nBcc: x"}, "charset"),
        ({"charset": "utf 8"}, "charset"),
        ({"extended_headers": {"Bcc": EVE}}, "extended_headers"),
        ({"extended_headers": {"reply-to": EVE}}, "extended_headers"),
        ({"extended_headers": {"FROM": EVE}}, "extended_headers"),
        ({"extended_headers": {"Sender": EVE}}, "extended_headers"),
        ({"extended_headers": {"X-Tag\r\nBcc": EVE}}, "extended_headers"),
        ({"extended_headers": {"X-Tag: a": "b"}}, "extended_headers"),
        ({"extended_headers": {"X-Tag": "a\x00b"}}, "extended_headers.X-Tag"),
        ({"extended_headers": {"X-Tag": "a\u0085Bcc: x"}}, "extended_headers.X-Tag"),
        ({"campaign_code": "orders\nBcc: x"}, "campaign.campaign_code"),
    ],
)
def test_no_header_text_holds_a_control_character(
    env: Env, change: dict[str, Any], field: str
) -> None:
    _refused(lambda: _email(**change), field)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: _sms(list_id=TOO_BIG_ID), "list_id"),
        (lambda: _sms(list_id=True), "list_id"),
        (lambda: _sms(list_id="1"), "list_id"),
        (lambda: _sms(content=None, template_id=TOO_BIG_ID), "template_id"),
        (lambda: manage_list_secret("read", list_id=TOO_BIG_ID), "list_id"),
        (
            lambda: send_email_template(template_id=True, sender="s@example.com", to=["a@x.org"]),
            "template_id",
        ),
        (lambda: create_group(list_id=TOO_BIG_ID, name="Customers"), "list_id"),
        (lambda: update_group(list_id=1, group_id=TOO_BIG_ID, name="x"), "group_id"),
        (lambda: add_recipient(list_id=1, group_id=TOO_BIG_ID, email="ada@x.org"), "group_id"),
        (lambda: delete_tag(list_id=1, tag_id=TOO_BIG_ID), "tag_id"),
        (lambda: send_campaign(TOO_BIG_ID, list_id=1), "message_id"),
        (lambda: send_campaign(1, list_id=1, in_groups=[TOO_BIG_ID]), "in_groups"),
        (lambda: send_campaign(1, list_id=1, to=f"Eve <{EVE}>"), "to"),
        (
            lambda: send_campaign(
                1, list_id=1, sender_name="Shop\r\nBcc: x", sender_address="shop@example.com"
            ),
            "sender_name",
        ),
        (lambda: add_recipient(list_id=1, email=f"Ada <{EVE}>"), "email"),
        (lambda: _sms(recipient="+39335000000²"), "recipient"),  # superscript two
        (lambda: _sms(recipient="+٣٩٣٣٥٠٠٠٠٠٠١"), "recipient"),  # Arabic-Indic
        (lambda: _sms(recipient="+３９３３５００００００１"), "recipient"),  # full-width
        (lambda: _sms(recipient="+39335\x000001"), "recipient"),
        (lambda: _sms(recipient="+393350000001\x85"), "recipient"),
        (lambda: _sms(idempotency_key="order-42\x00"), "idempotency_key"),
        (lambda: _sms(idempotency_key="order-42\n"), "idempotency_key"),
        (lambda: _sms(dynamic_fields={f"f{n}": "x" for n in range(101)}), "dynamic_fields"),
        (
            lambda: _email(dynamic_fields={f"f{n}": "x" for n in range(101)}),
            "campaign.dynamic_fields",
        ),
        (lambda: _sms(dynamic_fields={f"f{n}": "x" * 6000 for n in range(100)}), "dynamic_fields"),
        (lambda: _email(text="x" * 512 * 2**10), "text"),  # over 512 KiB of JSON
    ],
)
def test_ids_numbers_keys_and_sizes_are_bounded(
    env: Env, call: Callable[[], object], field: str
) -> None:
    _refused(call, field)


def _sparse(path: Path) -> Path:
    with path.open("wb") as file:
        file.truncate(MAX_TOTAL_BYTES + 1)  # no byte written: read, it would take 10 MiB
    return path


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda tmp: (os.mkfifo(tmp / "pipe"), tmp / "pipe")[1], "attachments"),  # would block
        (lambda tmp: Path("/dev/zero"), "attachments"),  # would never end
        (lambda tmp: tmp, "attachments"),  # a directory
        (lambda tmp: tmp / "missing.pdf", "attachments"),
        (lambda tmp: _sparse(tmp / "big.bin"), "attachments"),
        (lambda tmp: _sparse(tmp / "big.png"), "embedded_images"),
    ],
)
def test_only_a_regular_file_within_the_limit_is_attached_from_a_path(
    env: Env, tmp_path: Path, make: Callable[[Path], Path], field: str
) -> None:
    path = make(tmp_path)
    _refused(lambda: _email(**{field: [path]}), field)


def test_a_display_name_and_a_file_attached_by_path_still_go_out(
    sandbox: Sandbox, env: Env, tmp_path: Path
) -> None:
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 invoice")
    job_id = _email(
        sender='"Shop" <shop@example.com>',
        to=["Ada Lovelace <ada@example.com>"],
        cc=["bob@example.com"],
        attachments=[invoice],
    )

    assert run_once(job_id) == "succeeded"
    [email] = sandbox.emails()
    assert email["from"] == {"name": "Shop", "email": "shop@example.com"}
    assert email["to"] == [{"name": "Ada Lovelace", "email": "ada@example.com"}]
    assert [a["email"] for a in email["cc"] + email["bcc"]] == ["bob@example.com"]
    [attached] = email["attachments"]
    assert attached["filename"] == "invoice.pdf"
