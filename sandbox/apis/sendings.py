"""Console API sendings (doc 003, "Send Email Messages", "Sending Queue Status", "Stop a sending",
"Delete a sending"; README †), on the ``CONSOLE`` family: send a message to a list's subscribers
(``inGroups`` / ``notInGroups``), to a group's, to one recipient; the queues (Immediate, Deferred,
Undefined), a sending's first date, a message's history; start, stop and delete a sending.

A sending snapshots its recipients when it is asked for (``Sandbox.sendings()`` shows them) and
takes an account-wide id from 1; asking for it is the message's LastSendDate. ``datetime``
absent or ``now``: it enters Immediate at once; a UTC date ``YYYY-MM-DD HH:MM:SSZ``: Deferred
until then; ``undefined``: Undefined (standby) until ``POST Console/Email/Sendings/{id}/Immediate``
(MailUp's StartDelivery) or a control call. A sending finishes ``state.sending_duration`` seconds
(2.0) after it entered Immediate, leaving the queues for the message's SendHistory, whose items
have no sending Id and no Sent (MailUp's help page). Time moves lazily: every call here (and
``Sandbox.sendings()``) first moves the sendings whose time has come. As MailUp verifies a new
item for "some seconds" (doc 003), a new sending is listed nowhere, queues or history, for
``state.listing_delay`` seconds (0 unless a test sets it). ``send_elsewhere`` makes a sending as
another application of the account would.

Stop and delete are limited to one call every 30 seconds per account each (``sandbox.limits``,
buckets ``stop`` and ``delete``, ``stop_delete_interval``): a second call within 30 s of the last
one let through is answered 429 with ``Retry-After`` the seconds left; both also count against
the 5 calls per second.

Sender: ``SenderName`` and ``SenderAddress`` both or neither (one alone: 400); values may come in
one pair of single or double quotes, stripped (the doc's examples); the address must be a
trusted sender of the account (any StatusCode but 0 and 2, doc 004), else HTTP 500 (the doc:
since 8.6.1 a verified address).
Without them the list's sender is used, NLSenderName and OwnerEmail: either empty (list 3) is
the doc's HTTP 500, and so is an OwnerEmail that is not a trusted sender (the doc's
"verified address" rule applies to the list's sender as well). ``replyto`` must be an email
address (400). The answer is ``{Id, Sent, InvalidRecipients, UnprocessedRecipients, idMessage}``,
both arrays of bare addresses (the server's schema; the reasons below are the sandbox's
own, in ``Sandbox.sendings()``); Sent counts the enqueued recipients and the discarded
ones (the doc: "despite of its name").

Where the doc is silent: a ``datetime`` that is neither now, undefined nor the doc's UTC format
(blank included) is a 400; a date already past enters Immediate at once. ``inGroups`` and
``notInGroups`` are comma-separated group ids (quotes stripped, blank items skipped, a
non-integer item a 400) and apply to the list send only (the group and the one-recipient sends
ignore them). Only subscribed recipients are sent to: a group send skips members that are not
subscribed to the group's list; the one-recipient send takes the address as given, an address
that is not an email is an InvalidRecipient (Reason "invalid email"), one that unsubscribed from
the message's list an UnprocessedRecipient (Reason "unsubscribed"), an unknown one is sent to.
A trial account's sending processes its first ``trial_recipients`` recipients (by recipient id),
the rest are UnprocessedRecipients with Reason "trial account". A sending with nobody to send to
is still made (an Id, Sent 0). Queues answer the oldest first (Immediate by when it entered,
Deferred by date, Undefined by id); a history the newest first. Stop on a Deferred or Immediate
sending makes it "Stopped": out of the queues, not in the history, deletable; stop on any other
(Undefined, the doc; Finished; Stopped) changes nothing and answers 200 too. Delete answers
``IsDeleted: true`` for an Undefined or Stopped sending (gone from everywhere) and false for any
other (Deferred and Immediate: stop first, the doc; Finished: it went). StartDelivery moves an
Undefined or Deferred sending to Immediate now, leaves an Immediate one, and refuses a Finished
or Stopped one (400); it answers an empty 200. Unknown sendings (or another account's) are 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox import limits
from sandbox.apis.console import (
    CONSOLE,
    ConsoleError,
    ConsoleHandler,
    _bearer,
    _date,
    _endpoint,
    _fields,
    _token_owner,
    paged,
)
from sandbox.apis.messages import _message
from sandbox.http import Reply, Request
from sandbox.state import (
    DEFERRED,
    EMAIL_RE,
    FINISHED,
    IMMEDIATE,
    STOPPED,
    SUBSCRIBED,
    UNDEFINED,
    UNSUBSCRIBED,
    Account,
    EmailMessage,
    Group,
    MailingList,
    SandboxState,
    Sending,
    trusted,
    utcnow,
)

LIST = r"/Console/List/(?P<list_id>\d+)"
MESSAGE_ID = r"(?P<message_id>\d+)"
SENDING_ID = r"(?P<sending_id>\d+)"
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z")
QUEUE_ITEM = ("Id", "IdList", "IdMessage", "Notes", "StartDate", "State", "Subject", "Type")
# MailUp's help page: a history item has no sending Id and no Sent.
HISTORY_ITEM = (
    "EndDate", "Kb_transferred", "Recipients", "SenderEmail", "SenderName", "StartDate",
    "idMessage",
)  # fmt: skip
TRIAL, INVALID, OPTED_OUT = "trial account", "invalid email", "unsubscribed"
KB_PER_EMAIL = 12  # the history's Kb_transferred: a made-up size per email sent


def _advancing(func: ConsoleHandler) -> ConsoleHandler:
    """The handler, run after the sendings whose time has come have moved."""

    def handler(req: Request, state: SandboxState, account: Account) -> Reply:
        state.advance_sendings()
        return func(req, state, account)

    handler.__name__ = func.__name__
    return handler


def _sending_endpoint(
    method: str, pattern: str, operation: str
) -> Callable[[ConsoleHandler], ConsoleHandler]:
    def register(func: ConsoleHandler) -> ConsoleHandler:
        _endpoint(method, pattern, operation)(_advancing(func))
        return func

    return register


def _interval_endpoint(
    method: str, pattern: str, operation: str, bucket: str
) -> Callable[[ConsoleHandler], ConsoleHandler]:
    """``console._endpoint`` for a route MailUp also limits to one call per interval: the same
    authenticated, locked handler, counted against ``bucket`` (which counts against the console
    cap too)."""

    def key(req: Request, state: SandboxState) -> tuple[int, str] | None:
        account = _token_owner(req, state)
        return None if account is None else (account.id, bucket)

    def register(func: ConsoleHandler) -> ConsoleHandler:
        run = _advancing(func)

        def handler(req: Request) -> Reply:
            assert req.state is not None
            try:
                with req.state.lock:
                    req.state.complete_due_imports()
                    reply = run(req, req.state, _bearer(req, req.state))
            except ConsoleError as err:
                return err.reply
            req.processed = True
            return reply

        CONSOLE.route(method, pattern, operation, limit_key=key)(handler)
        return func

    return register


# --- views -------------------------------------------------------------------------------------


def _start_date(sending: Sending) -> str:
    if sending.state == DEFERRED:
        return _date(sending.deferred_until)
    return _date(sending.started)


def _queue_view(state: SandboxState) -> Callable[[Sending], dict[str, Any]]:
    def view(sending: Sending) -> dict[str, Any]:
        message = state.messages[sending.message_id]
        return {
            "Id": sending.id,
            "IdList": sending.list_id,
            "IdMessage": sending.message_id,
            "Notes": message.notes,
            "StartDate": _start_date(sending),
            "State": sending.state,
            "Subject": message.subject,
            "Type": "Email",  # a string (the server's schema)
        }

    return view


def history_view(sending: Sending) -> dict[str, Any]:
    return {
        "EndDate": _date(sending.ended),
        "Kb_transferred": len(sending.recipients) * KB_PER_EMAIL,
        "Recipients": len(sending.recipients),
        "SenderEmail": sending.sender_address,
        "SenderName": sending.sender_name,
        "StartDate": _date(sending.started),
        "idMessage": sending.message_id,
    }


def send_view(sending: Sending) -> dict[str, Any]:
    """Skipped recipients as bare addresses: the server's schema has string arrays."""
    return {
        "Id": sending.id,
        "Sent": sending.sent,
        "InvalidRecipients": [r["Email"] for r in sending.invalid],
        "UnprocessedRecipients": [r["Email"] for r in sending.unprocessed],
        "idMessage": sending.message_id,
    }


def unquoted(value: str) -> str:
    """``value`` trimmed, without one pair of surrounding single or double quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    return value


def _param(req: Request, name: str) -> str | None:
    raw = req.query.get(name.lower())
    return None if raw is None else unquoted(raw)


def _schedule(req: Request) -> tuple[str, datetime | None]:
    """(state, deferred date) as ``datetime`` asks."""
    raw = _param(req, "datetime")
    if raw is None or raw.lower() == "now":
        return IMMEDIATE, None
    if raw.lower() == "undefined":
        return UNDEFINED, None
    problem = ConsoleError(
        400, f'datetime must be now, undefined or "yyyy-MM-dd HH:mm:ssZ": {raw!r}.'
    )
    if not DATE_RE.fullmatch(raw):
        raise problem
    try:
        when = datetime.strptime(raw, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise problem from None
    return DEFERRED, when


def _group_ids(req: Request, name: str) -> list[int]:
    raw = _param(req, name)
    ids = []
    for item in (raw or "").split(","):
        item = unquoted(item)
        if not item:
            continue
        if not item.isdigit():
            raise ConsoleError(400, f"{name} must be comma-separated group ids: {item!r}.")
        ids.append(int(item))
    return ids


def _reply_to(req: Request) -> str | None:
    reply_to = _param(req, "replyto")
    if reply_to is not None and not EMAIL_RE.fullmatch(reply_to):
        raise ConsoleError(400, f"replyto is not a valid email address: {reply_to!r}.")
    return reply_to


def _sender(
    req: Request, state: SandboxState, account: Account, mlist: MailingList
) -> tuple[str, str]:
    """(name, address) of the sending: the query's pair or the list's, a verified address."""
    name, address = _param(req, "SenderName"), _param(req, "SenderAddress")
    if (name is None) != (address is None):
        raise ConsoleError(400, "Provide both SenderName and SenderAddress, or neither.")
    if name is None or address is None:
        name, address = list_sender(mlist)
        if not name or not address:
            raise ConsoleError(
                500, f"List {mlist.id} has no sender name and address: configure them."
            )
    sender = state.sender_by_email(account.id, address)
    if sender is None or not trusted(sender.status_code):
        raise ConsoleError(500, f"Sender address {address!r} is not a verified address.")
    return name, address


def list_sender(mlist: MailingList) -> tuple[str, str]:
    """The list's own sender: NLSenderName and OwnerEmail (either may be empty)."""
    name = str(mlist.settings.get("NLSenderName") or "").strip()
    return name, str(mlist.settings.get("OwnerEmail") or "").strip()


# --- audiences ---------------------------------------------------------------------------------


def _subscribed(mlist: MailingList, ids: set[int] | None = None) -> list[int]:
    return sorted(
        rid
        for rid, status in mlist.subscriptions.items()
        if status == SUBSCRIBED and (ids is None or rid in ids)
    )


def _list_audience(req: Request, state: SandboxState, mlist: MailingList) -> list[int]:
    """The list's subscribers, as inGroups and notInGroups (the doc's rules) filter them."""
    included, excluded = _group_ids(req, "inGroups"), _group_ids(req, "notInGroups")
    req.details.update(in_groups=included, not_in_groups=excluded)

    def of_list(group_id: int) -> Group | None:
        group = state.groups.get(group_id)
        return group if group is not None and group.list_id == mlist.id else None

    members: set[int] | None = None
    if included:
        groups = [g for g in map(of_list, included) if g is not None]
        if not groups:
            raise ConsoleError(500, f"None of the inGroups belongs to list {mlist.id}.")
        members = set().union(*(g.members for g in groups))
    audience = _subscribed(mlist, members)
    excluding = [of_list(n) for n in excluded]
    if excluded and all(g is not None for g in excluding):
        left_out = set().union(*(g.members for g in excluding if g is not None))
        audience = [rid for rid in audience if rid not in left_out]
    req.details["excluded_applied"] = bool(excluded) and all(g is not None for g in excluding)
    return audience


def _send(
    req: Request,
    state: SandboxState,
    account: Account,
    message: EmailMessage,
    kind: str,
    audience: Callable[[], tuple[list[str], list[dict[str, str]], list[dict[str, str]]]],
    group_id: int | None = None,
) -> Reply:
    """Check the query, resolve the sender, snapshot the audience, enqueue; the doc's answer.
    ``audience`` -> (emails to send to, invalid, unprocessed)."""
    mlist = state.lists[message.list_id]
    schedule, when = _schedule(req)
    reply_to = _reply_to(req)
    name, address = _sender(req, state, account, mlist)
    emails, invalid, unprocessed = audience()
    if account.trial and len(emails) > account.trial_recipients:
        cut = max(account.trial_recipients, 0)
        unprocessed += [{"Email": e, "Reason": TRIAL} for e in emails[cut:]]
        emails = emails[:cut]
    sending = Sending(
        state.take_id("sending"),
        account.id,
        mlist.id,
        message.id,
        kind,
        group_id,
        name,
        address,
        reply_to,
        emails,
        invalid,
        unprocessed,
        datetime.now(UTC),
    )
    enqueue(state, sending, schedule, when)
    req.details.update(
        sending_id=sending.id,
        state=sending.state,
        sender_address=address,
        recipients=len(emails),
        invalid=len(invalid),
        unprocessed=len(unprocessed),
    )
    return Reply(200, send_view(sending))


def enqueue(
    state: SandboxState, sending: Sending, schedule: str = IMMEDIATE, when: datetime | None = None
) -> None:
    """Into its queue (listed after ``state.listing_delay``); the message's LastSendDate."""
    now = sending.created
    sending.listed_from = now + timedelta(seconds=state.listing_delay)
    if schedule == IMMEDIATE:
        state.start_sending(sending, now)
    else:
        sending.state, sending.deferred_until = schedule, when
    state.sendings[sending.id] = sending
    state.advance_sendings(now)
    state.messages[sending.message_id].last_sent = utcnow()


def send_elsewhere(state: SandboxState, message_id: int) -> Sending:
    """A sending of the message to its list's subscribers, as another application of the
    account makes it (with the list's own sender), now."""
    message = state.messages[message_id]
    mlist = state.lists[message.list_id]
    sending = Sending(
        state.take_id("sending"),
        message.account_id,
        mlist.id,
        message.id,
        "list",
        None,
        *list_sender(mlist),
        None,
        _emails(state, _subscribed(mlist)),
        [],
        [],
        datetime.now(UTC),
    )
    enqueue(state, sending)
    return sending


def _emails(state: SandboxState, ids: list[int]) -> list[str]:
    return [state.recipients[rid].email for rid in ids]


@_sending_endpoint("POST", LIST + f"/Email/{MESSAGE_ID}/Send", "send_list")
def send_to_list(req: Request, state: SandboxState, account: Account) -> Reply:
    message = _message(req, state, account)
    mlist = state.lists[message.list_id]
    return _send(
        req,
        state,
        account,
        message,
        "list",
        lambda: (_emails(state, _list_audience(req, state, mlist)), [], []),
    )


@_sending_endpoint(
    "POST", rf"/Console/Group/(?P<group_id>\d+)/Email/{MESSAGE_ID}/Send", "send_group"
)
def send_to_group(req: Request, state: SandboxState, account: Account) -> Reply:
    group_id = int(req.params["group_id"])
    req.details["group_id"] = group_id
    group = state.groups.get(group_id)
    mlist = None if group is None else state.lists.get(group.list_id)
    if group is None or mlist is None or mlist.account_id != account.id:
        raise ConsoleError(404, f"Group {group_id} not found.")
    req.params["list_id"] = str(mlist.id)  # the message must be one of the group's list
    message = _message(req, state, account)
    audience = _subscribed(mlist, group.members)
    return _send(
        req, state, account, message, "group", lambda: (_emails(state, audience), [], []), group.id
    )


@_sending_endpoint("POST", r"/Console/Email/Send", "send_recipient")
def send_to_recipient(req: Request, state: SandboxState, account: Account) -> Reply:
    body = _fields(req)
    email, message_id = body.get("email"), body.get("idmessage")
    if not isinstance(email, str) or not email.strip():
        raise ConsoleError(400, "Email is mandatory.")
    if type(message_id) is not int:
        raise ConsoleError(400, "idMessage must be a message id.")
    email = email.strip()
    req.details.update(email=email, message_id=message_id)
    message = state.messages.get(message_id)
    if message is None or message.account_id != account.id:
        raise ConsoleError(404, f"Message {message_id} not found.")
    mlist = state.lists[message.list_id]
    req.details["list_id"] = mlist.id

    def audience() -> tuple[list[str], list[dict[str, str]], list[dict[str, str]]]:
        if not EMAIL_RE.fullmatch(email):
            return [], [{"Email": email, "Reason": INVALID}], []
        recipient = state.recipient_by_email(account.id, email)
        if recipient is not None and mlist.subscriptions.get(recipient.id) == UNSUBSCRIBED:
            return [], [], [{"Email": email, "Reason": OPTED_OUT}]
        return [email], [], []

    return _send(req, state, account, message, "recipient", audience)


# --- queues and history ------------------------------------------------------------------------

QUEUE_ORDER: dict[str, Callable[[Sending], Any]] = {
    IMMEDIATE: lambda s: (s.started, s.id),
    DEFERRED: lambda s: (s.deferred_until, s.id),
    UNDEFINED: lambda s: s.id,
}


def _queue_reader(queue: str) -> ConsoleHandler:
    def read(req: Request, state: SandboxState, account: Account) -> Reply:
        now = datetime.now(UTC)
        mine = [s for s in state.sendings.values() if s.account_id == account.id and s.listed(now)]
        queued = sorted((s for s in mine if s.state == queue), key=QUEUE_ORDER[queue])
        return paged(req, state, queued, _queue_view(state), QUEUE_ITEM)

    return read


for _queue in (IMMEDIATE, DEFERRED, UNDEFINED):
    _sending_endpoint("GET", f"/Console/Email/Sendings/{_queue}", f"sendings_{_queue.lower()}")(
        _queue_reader(_queue)
    )


def _sending(req: Request, state: SandboxState, account: Account) -> Sending:
    sending_id = int(req.params["sending_id"])
    req.details["sending_id"] = sending_id
    sending = state.sendings.get(sending_id)
    if sending is None or sending.account_id != account.id:
        raise ConsoleError(404, f"Sending {sending_id} not found.")
    req.details["previous_state"] = sending.state
    return sending


@_sending_endpoint("GET", f"/Console/Email/Sending/{SENDING_ID}/Deferred", "sending_first_date")
def first_date(req: Request, state: SandboxState, account: Account) -> Reply:
    sending = _sending(req, state, account)
    now = utcnow()
    when = sending.deferred_until if sending.state == DEFERRED else None
    return Reply(200, _date(when if when is not None and when > now else now))


@_sending_endpoint("GET", LIST + f"/Email/{MESSAGE_ID}/SendHistory", "send_history")
def send_history(req: Request, state: SandboxState, account: Account) -> Reply:
    message = _message(req, state, account)
    now = datetime.now(UTC)
    done = [
        s
        for s in state.sendings.values()
        if s.message_id == message.id and s.state == FINISHED and s.listed(now)
    ]
    done.sort(key=lambda s: s.id, reverse=True)
    return paged(req, state, done, history_view, HISTORY_ITEM)


# --- start, stop, delete -----------------------------------------------------------------------


@_sending_endpoint("POST", f"/Console/Email/Sendings/{SENDING_ID}/Immediate", "sending_start")
def start_sending(req: Request, state: SandboxState, account: Account) -> Reply:
    sending = _sending(req, state, account)
    if sending.state in (FINISHED, STOPPED):
        raise ConsoleError(400, f"Sending {sending.id} is {sending.state.lower()}.")
    if sending.state != IMMEDIATE:
        state.start_sending(sending, datetime.now(UTC))
    req.details["state"] = sending.state
    return Reply(200)


@_interval_endpoint(
    "POST", f"/Console/Email/Sendings/{SENDING_ID}/Stop", "stop_sending", limits.STOP
)
def stop_sending(req: Request, state: SandboxState, account: Account) -> Reply:
    sending = _sending(req, state, account)
    if sending.state in (DEFERRED, IMMEDIATE):
        sending.state, sending.ended = STOPPED, datetime.now(UTC)
    req.details["state"] = sending.state
    return Reply(200)


@_interval_endpoint(
    "DELETE", f"/Console/Email/Sendings/{SENDING_ID}", "delete_sending", limits.DELETE
)
def delete_sending(req: Request, state: SandboxState, account: Account) -> Reply:
    sending = _sending(req, state, account)
    deleted = sending.state in (UNDEFINED, STOPPED)
    if deleted:
        del state.sendings[sending.id]
    req.details["deleted"] = deleted
    return Reply(200, {"IsDeleted": deleted})
