"""Every real MailUp answer in tests/fixtures/mailup-examples/ (kept from the team's collection,
``../shared/mailup-docs/examples/``, with its sources), read by the client's own code.

Where a client call reads the answer, the answer is replayed over HTTP to that call, so what
turns the bytes into a reply (a bare number, an empty body, a page envelope) is read too; where
the answer is a model's, it goes to the model's ``from_dto``. Each test names the files it
covers, and a file nobody covers fails ``test_every_example_has_a_test``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from worker.mailup.console import ConsoleClient
from worker.mailup.errors import PermanentError
from worker.mailup.http import Reply, Timeouts
from worker.mailup.lists import Group, Groups, Lists, ListSummary
from worker.mailup.messages import Messages, MessageSummary, NewMessage, Tag
from worker.mailup.oauth import OAuthClient
from worker.mailup.recipients import Audience, ImportStatus, Recipient, Recipients
from worker.mailup.sendings import QueuedSending, SendResult
from worker.mailup.sms import SmsClient
from worker.mailup.transactional import Address, Html, Message, SmtpUser, TransactionalClient

EXAMPLES = Path(__file__).resolve().parent / "fixtures/mailup-examples"
# The collection they come from, beside the checkout where there is one.
COLLECTION = Path(__file__).resolve().parents[2] / "shared/mailup-docs/examples"
TIMEOUTS = Timeouts(2, 5)
COVERED: set[str] = set()


def covers(*rows: Any, args: str = "name") -> pytest.MarkDecorator:
    """The test runs once per row: an example file's name, or a tuple that starts with it and
    goes on with what the test expects of it (``args`` names them all)."""
    names = [row[0] if isinstance(row, tuple) else row for row in rows]
    COVERED.update(names)
    return pytest.mark.parametrize(args, rows, ids=names)


def raw(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def parsed(name: str) -> Any:
    return json.loads(raw(name))


def renumbered(value: Any, numbers: Iterator[int] | None = None) -> Any:
    """The example with its numbers replaced by 1, 2, 3… in the file's order: the server's
    schema pages write 2147483647 everywhere, which would hide two fields read the wrong way."""
    numbers = numbers or itertools.count(1)
    if isinstance(value, dict):
        return {k: renumbered(v, numbers) for k, v in value.items()}
    if isinstance(value, list):
        return [renumbered(v, numbers) for v in value]
    return next(numbers) if type(value) is int else value


def later_page(name: str, number: int = 1) -> bytes:
    """An empty page after the recorded one: the recordings keep the first page only."""
    page = parsed(name)
    skipped = number * page["PageSize"]
    return json.dumps(page | {"Items": [], "PageNumber": number, "Skipped": skipped}).encode()


# --- MailUp, replayed ----------------------------------------------------------------------------


@dataclass
class Asked:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: bytes


@dataclass
class Replay:
    """Answers each request with the next of ``answers`` (the last one again once they run
    out), and keeps what was asked."""

    url: str = ""
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)

    def answer(self, *bodies: bytes) -> None:
        self.answers = [(200, body) for body in bodies]

    def pages(self) -> list[str]:
        return [a.query.get("PageNumber", "") for a in self.asked]


class _Handler(BaseHTTPRequestHandler):
    server: _ReplayServer

    def _replay(self) -> None:
        replay = self.server.replay
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        auth = self.headers.get("Authorization")
        replay.asked.append(Asked(self.command, url.path, query, auth, body))
        status, content = replay.answers.pop(0) if len(replay.answers) > 1 else replay.answers[0]
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = _replay

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _ReplayServer(ThreadingHTTPServer):
    replay: Replay


@pytest.fixture
def mailup() -> Iterator[Replay]:
    server = _ReplayServer(("127.0.0.1", 0), _Handler)
    server.replay = Replay(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.replay
    server.shutdown()
    server.server_close()


@pytest.fixture
def console(mailup: Replay) -> ConsoleClient:
    return ConsoleClient(
        mailup.url, token=lambda: "first", renew=lambda _: "renewed", timeouts=TIMEOUTS
    )


def test_every_example_has_a_test() -> None:
    files = {p.name for p in EXAMPLES.iterdir() if p.name != "README.md"}
    assert sorted(files - COVERED) == [], "examples without a test"
    assert sorted(COVERED - files) == [], "tests of examples that are gone"


@pytest.mark.skipif(not COLLECTION.is_dir(), reason="no shared/ beside the checkout")
def test_the_fixtures_hold_the_whole_collection_unchanged() -> None:
    """A real answer added to the collection fails here until it is kept (and tested) too."""
    kept = {p.name: p.read_bytes() for p in EXAMPLES.iterdir()}
    assert kept == {p.name: p.read_bytes() for p in COLLECTION.iterdir()}


# --- paged reads ---------------------------------------------------------------------------------


@covers("mailup_helppage__List_Tags_GET.json")
def test_tags_come_in_the_page_envelope(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name))

    found = Messages(console).tags(2)

    assert found == [
        Tag(5, "news"),
        Tag(4, "users-manual"),
        Tag(3, "$5 off promo"),
        Tag(2, "preferred customer"),
        Tag(1, "promotion"),
    ]
    assert [a.path for a in mailup.asked] == ["/Console/List/2/Tags"]  # all 5 in one page


@covers("mailup_helppage__User_Lists_GET.json")
def test_lists_of_the_deprecated_read(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name))

    assert Lists(console).read_deprecated() == [
        ListSummary(2, "f34e5054-5555-4444-ffff-51acc36ae104", "Second List "),
        ListSummary(1, "49494949-4444-9999-8888-185543409eb7", "Newsletter "),
    ]
    assert mailup.pages() == ["0"]


@covers("mailupy__List_1_Emails_GET.json")
def test_messages_of_a_list(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name))

    [message] = Messages(console).read(1)

    assert message == MessageSummary(
        id=1,
        list_id=1,
        subject="QWERTYUIOP",
        notes="",
        created_at=datetime(2020, 1, 27, 10, 5, 53, tzinfo=UTC),
        last_sent_at=None,
        tags=(),
        service_type=0,
        url=None,
    )
    assert [a.path for a in mailup.asked] == ["/Console/List/1/Emails"]


@covers("mailupy__List_1_Groups_GET.json")
def test_groups_carry_a_null_count(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name), later_page(name))

    found = Groups(console).read(1)

    assert found == [Group(6, 1, "TEST", "Gruppo per invii di test", deletable=False)]
    assert mailup.pages() == ["0", "1"]  # TotalElementsCount 3: the next page is asked for


@covers("mailupy__Group_6_Recipients_GET.json")
def test_an_empty_page_of_group_members(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name))

    assert Recipients(console).read(Audience(1, group_id=6)) == []
    assert [a.path for a in mailup.asked] == ["/Console/Group/6/Recipients"]


@covers("mailupy__List_1_Recipients_EmailOptins_GET.json")
def test_a_page_of_opt_ins(name: str, mailup: Replay, console: ConsoleClient) -> None:
    """No client call reads opt-ins: its items are read as the recipients they are."""
    mailup.answer(raw(name), later_page(name))

    items = console.pages("Console/List/1/Recipients/EmailOptins", "read opt-ins")

    assert [Recipient.from_dto(i) for i in items] == [Recipient("email@email.email", id=13)]
    assert mailup.pages() == ["0", "1"]


@covers("mailupy__Recipient_DynamicFields_GET.json")
def test_a_paginated_page(name: str, mailup: Replay, console: ConsoleClient) -> None:
    """IsPaginated true, 20 of 27: the next page is asked for."""
    mailup.answer(raw(name), later_page(name))

    items = list(console.pages("Console/Recipient/DynamicFields", "read recipient fields"))

    assert [i["Id"] for i in items] == list(range(27, 7, -1))
    assert (items[0]["Description"], items[-1]["Description"]) == ("compleanno", "paese")
    assert mailup.pages() == ["0", "1"]


# --- answers of a creation or a change ------------------------------------------------------------


@covers("mailup_helppage__List_Email_POST_old.json")
def test_a_created_message_in_the_old_short_answer(
    name: str, mailup: Replay, console: ConsoleClient
) -> None:
    mailup.answer(raw(name))

    made = Messages(console).create(2, NewMessage("Monthly Newsletter 4", "<p>Hi</p>"))

    assert (made.id, made.list_id, made.subject) == (47, 2, "Monthly Newsletter 4")
    assert (made.notes, made.tags, made.attachments, made.use_dynamic_fields) == ("", (), (), False)


@covers("mailupy__List_1_Group_POST.json")
def test_a_created_group(name: str, mailup: Replay, console: ConsoleClient) -> None:
    mailup.answer(raw(name))

    made = Groups(console).create(1, "Gruppo", "QWERTYUIOP")

    assert made == Group(9, 1, "Gruppo", "QWERTYUIOP", deletable=True)


@covers(
    ("mailupy__List_1_Recipient_POST.json", Audience(1), False, 16),  # "16\n\n"
    ("mailupy__Group_6_Recipient_POST.json", Audience(1, group_id=6), False, 18),
    ("nodenock__Group_9_Recipient_POST.json", Audience(1, group_id=9), True, 28),
    args="name, audience, confirm, recipient_id",
)
def test_a_recipient_creation_answers_a_bare_number(
    name: str,
    audience: Audience,
    confirm: bool,
    recipient_id: int,
    mailup: Replay,
    console: ConsoleClient,
) -> None:
    mailup.answer(raw(name))

    added = Recipients(console).add(audience, Recipient("ada@example.com"), confirm_email=confirm)

    assert added == recipient_id
    [asked] = mailup.asked
    assert asked.path == f"/{audience.path}/Recipient"
    assert asked.query == ({"ConfirmEmail": "true"} if confirm else {})


@covers("mailupy__Recipient_Detail_PUT.json")
def test_a_recipients_details(name: str) -> None:
    found = Recipient.from_dto(parsed(name))

    assert (found.id, found.email, found.name) == (18, "email+1@email.email", "ASDFGHJKL")
    assert (found.mobile_number, found.mobile_prefix) == (None, None)
    assert found.fields == {n: "" for n in range(1, 28)}


@covers(
    ("mailupy__Group_6_Unsubscribe_18_DELETE.json", "Console/Group/6/Unsubscribe/18"),
    ("mailupy__List_1_Unsubscribe_18_DELETE.json", "Console/List/1/Unsubscribe/18"),
    ("mailupy__List_1_Recipient_18_DELETE.json", "Console/List/1/Recipient/18"),
    ("mailupy__Recipients_18_DELETE.json", "Console/Recipients/18"),
    args="name, path",
)
def test_a_deletion_answers_nothing(
    name: str, path: str, mailup: Replay, console: ConsoleClient
) -> None:
    mailup.answer(raw(name))

    reply = console.call("DELETE", path, "delete")

    assert reply == Reply(200, None, {}) and reply.data is None
    assert [(a.method, a.path) for a in mailup.asked] == [("DELETE", f"/{path}")]


# --- imports -------------------------------------------------------------------------------------


@covers("mailup_wcfhelp__ConsoleImportDetail_excerpt.json")
def test_an_import_detail(name: str) -> None:
    """``Console/Imports/{id}``: IdImport, StatusCode, Rows."""
    assert ImportStatus.from_dto(parsed(name)) == ImportStatus(2147483647, False, *[2147483647] * 5)

    detail = renumbered(parsed(name))

    assert ImportStatus.from_dto(detail) == ImportStatus(
        id=1, completed=False, updated=6, valid=7, created=5, imported=7, not_valid=3
    )
    for status_code, completed in ((1, False), (2, False), (3, True), (4, True)):
        assert ImportStatus.from_dto(detail | {"StatusCode": status_code}).completed is completed


def test_an_import_status(mailup: Replay, console: ConsoleClient) -> None:
    """``Console/Import/{id}``, the status shape of the docs' catalogue (no example of it)."""
    status = {
        "idImport": 7,
        "Completed": True,
        "UpdatedRecipients": 1,
        "ValidRecipients": 3,
        "CreatedRecipients": 2,
        "ImportedRecipients": 4,
        "NotValidRecipients": 5,
    }
    mailup.answer(json.dumps(status).encode())

    found = Recipients(console).import_status(7)

    assert found == ImportStatus(
        id=7, completed=True, updated=1, valid=3, created=2, imported=4, not_valid=5
    )
    assert [a.path for a in mailup.asked] == ["/Console/Import/7"]


# --- sendings ------------------------------------------------------------------------------------


@covers(
    ("mailupy__Email_Send_POST.json", 1, 1, 1),
    ("nodenock__Email_Send_POST.json", 96, 1, 4),
    args="name, sending_id, sent, message_id",
)
def test_a_send_answer(name: str, sending_id: int, sent: int, message_id: int) -> None:
    result = SendResult.from_dto(parsed(name), 99)

    assert (result.sending_id, result.sent, result.message_id) == (sending_id, sent, message_id)
    assert (result.invalid, result.unprocessed) == ((), ())


@covers("mailup_wcfhelp__MailMessageSendResponse.json")
def test_a_send_answer_skips_recipients_as_strings(name: str) -> None:
    result = SendResult.from_dto(renumbered(parsed(name)), 99)

    assert (result.sending_id, result.sent, result.message_id) == (1, 2, 3)
    for skipped in (result.invalid, result.unprocessed):
        assert len(skipped) == 1 and "String content" in str(skipped[0])


@covers("mailup_wcfhelp__EmailSendingItem.json")
def test_a_queued_sending(name: str) -> None:
    as_is = QueuedSending.from_dto(parsed(name), "Deferred")
    assert (as_is.id, as_is.queue, as_is.subject, as_is.start) == (
        2147483647,
        "Deferred",
        "String content",
        None,  # "String content" is no date
    )

    found = QueuedSending.from_dto(renumbered(parsed(name)), "Immediate")

    assert (found.id, found.list_id, found.message_id) == (1, 2, 3)


@covers("mailupy__Sms_Send_POST.json")
def test_a_console_sms_send_answer(name: str, mailup: Replay, console: ConsoleClient) -> None:
    """The client sends SMS through the SMS API, not Console/Sms/Send: what it has for this
    answer is the Console plumbing, which takes it for a success with its counts."""
    mailup.answer(raw(name))

    reply = console.call("POST", "Console/Sms/Send", "send SMS", idempotent=False)

    assert (reply.http_status, reply.code) == (200, None)
    assert reply.body == {
        "InvalidRecipients": [],
        "Sent": 1,
        "UnprocessedRecipients": [],
        "idMessage": 1,
    }


# --- OAuth2 --------------------------------------------------------------------------------------


@covers("mailup_helppage__token_3600.json")
def test_a_token_answer(name: str, mailup: Replay) -> None:
    mailup.answer(raw(name))
    oauth = OAuthClient(
        f"{mailup.url}/Authorization/OAuth/Token",
        client_id="client",
        client_secret="secret",
        username="m1234",
        password="password",
        timeouts=TIMEOUTS,
    )

    before = time.time()
    token = oauth.password_grant()

    assert (token.access_token, token.refresh_token) == ("MYNEWACCESSTOKEN", "MYREFRESHTOKEN")
    assert before + 3600 <= token.expires_at <= time.time() + 3600


@covers("mailup_helppage__401_expired_token.json")
def test_an_expired_token_is_renewed_once(
    name: str, mailup: Replay, console: ConsoleClient
) -> None:
    mailup.answers = [(401, raw(name)), (200, b"[]")]

    assert console.smtp_priorities() == []
    assert [a.authorization for a in mailup.asked] == ["Bearer first", "Bearer renewed"]

    mailup.answers = [(401, raw(name))]
    with pytest.raises(PermanentError) as refused:
        console.smtp_priorities()
    assert (refused.value.http_status, refused.value.code) == (401, "401")
    assert "Access token is expired" in str(refused.value)


# --- SMS and transactional email -----------------------------------------------------------------


@covers("dpi_sms_mailup__listsecret_POST.json")
def test_a_created_list_secret(name: str, mailup: Replay) -> None:
    mailup.answer(raw(name))
    sms = SmsClient(
        mailup.url, account_id=1234, username="m1234", password="password", timeouts=TIMEOUTS
    )

    secret, reply = sms.create_list_secret(1, "00000000-0000-4000-8000-000000000001")

    assert (secret, reply.code) == ("$the-secret", "0")
    [asked] = mailup.asked
    assert (asked.method, asked.path) == ("POST", "/lists/1/listsecret")
    assert json.loads(asked.body) == {"ListGUID": "00000000-0000-4000-8000-000000000001"}


@covers(
    ("nodenock__sendtemplate.json", 7, "/messages/sendtemplate", ("done", "0", "Ok")),
    ("pagopa__sendmessage.json", None, "/messages/sendmessage", ("200", "0", "")),
    args="name, template_id, path, answer",
)
def test_a_transactional_send_answer(
    name: str, template_id: int | None, path: str, answer: tuple[str, str, str], mailup: Replay
) -> None:
    mailup.answer(raw(name))
    client = TransactionalClient(mailup.url, user=SmtpUser("s1234_1", "secret"), timeouts=TIMEOUTS)
    message = Message(
        Address("shop@example.com"),
        subject="Hi",
        to=(Address("ada@example.com"),),
        html=Html("<p>Hi</p>"),
        template_id=template_id,
    )

    result = client.send(message)

    assert (result.status, result.code, result.message, result.http_status) == (*answer, 200)
    assert [a.path for a in mailup.asked] == [path]
