"""MailUp Console API (``https://services.mailup.com/API/v1.1/Rest/ConsoleService.svc``), served
under ``/services/API/v1.1/Rest/ConsoleService.svc``: the family and what its routes share (Bearer
auth, errors, paging), SMTP+ users and trusted senders here; lists and groups in
``sandbox.apis.lists``, recipients and imports in ``sandbox.apis.recipients``, registered on the
same ``CONSOLE`` when those modules are imported (``sandbox.server`` does).

Every call needs ``Authorization: Bearer <access_token>`` from the OAuth2 family; a missing,
unknown or expired token answers 401 (clients refresh, then retry once). Errors have the Console
shape ``{"ErrorCode", "ErrorDescription", "ErrorName", "ErrorStack"}``. Paths match
case-insensitively (MailUp's pages write both ``/API/v1.1/Rest`` and ``/api/v1.1/rest``), and so
do JSON field names.

Every call counts against the token's account for MailUp's cap of 5 calls per second
(``sandbox.limits``); a call without a valid token is not counted (it is refused anyway).

Paging (``paged``): ``PageNumber`` from 0, ``PageSize`` as asked but never over the sandbox-wide
``max_page_size`` (20, the size of every paged example in the doc; ``/_sandbox/paging``), 20 when
missing; the envelope answers the PageSize actually used, and ``Skipped`` is PageNumber times it.
A client must page by TotalElementsCount, not by the size it asked for. ``filterby`` and
``orderby`` (``sandbox.apis.query``) apply before the page is cut; TotalElementsCount counts the
filtered items. A route that knows its item fields names them, so a filter on an unknown field is
refused even when there is nothing to filter.

Imports complete lazily: every Console call first completes the imports whose time has come.

Where the doc is silent: creating an SMTP+ user names the first trusted sender that is unknown or
not confirmed in a 400; an unknown list answers 404; re-trusting a blocked sender answers 400
(the doc: a disabled address "cannot be trusted again"); DELETE checks that If-Match is present
before looking the sender up, and wants the stored EmailAddress exactly (the doc: "the
EmailAddress related to the IdTrustedSender"), case included, only ETag-style quotes and
surrounding whitespace stripped, whereas trusting looks an address up case-insensitively;
``IsPaginated`` is always false, as in every example of the doc. A sender may have a StatusCode
past 2 (the doc: trusted, "statuses that means Ok" it does not list; the control routes give
them): its StatusDescription is made up, and an SMTP+ user still wants 1 (doc 000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sandbox import limits
from sandbox.apis import query
from sandbox.http import ApiFamily, Reply, Request
from sandbox.state import (
    BLOCKED,
    CONFIRMED,
    EMAIL_RE,
    Account,
    MailingList,
    SandboxState,
    SmtpUser,
    TrustedSender,
    new_smtp_password,
    utcnow,
)

DESCRIPTIONS = {
    "400": "Bad Request",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "Not Found",
    "412": "Precondition Failed",
    "429": "Too Many Requests",
    "500": "Internal Server Error",
    "503": "Service Unavailable",
}
ERROR_NAMES = {code: text.replace(" ", "") for code, text in DESCRIPTIONS.items()}
STATUS_DESCRIPTIONS = {
    0: "Not confirmed (status: NotConfirmed)",
    1: "Confirmed (status: Confirmed)",
    2: "Blocked (status: Blocked)",
}
# The doc lists no other code nor its text ("statuses that means Ok"): made up, plainly.
OTHER_STATUS = "Trusted (status code {})"
PRIORITIES = [
    {"PriorityCode": n, "PriorityName": name}
    for n, name in enumerate(("VeryHigh", "High", "Normal", "Low", "VeryLow"), start=1)
]
SMTP_PLUS = {  # connection settings every SMTP+ user answer repeats
    "SmtpPlusEncryption": "NONE, STARTTLS",
    "SmtpPlusPort": "25, 80, 1025-5000",
    "SmtpPlusServer": "in.smtpok.com",
}
DEFAULT_PAGE_SIZE = 20
T = TypeVar("T")


def error_body(code: str, description: str) -> dict[str, str]:
    return {
        "ErrorCode": code,
        "ErrorDescription": description,
        "ErrorName": ERROR_NAMES.get(code, "Error"),
        "ErrorStack": "",
    }


CONSOLE = ApiFamily(
    "console",
    "/services/API/v1.1/Rest/ConsoleService.svc",
    error_body,
    DESCRIPTIONS,
    code_field="ErrorCode",
    server_error_code="500",
)


class ConsoleError(Exception):
    """An error answer; raised by validation, turned into a Reply by ``_endpoint``."""

    def __init__(self, status: int, description: str = "", headers: dict[str, str] | None = None):
        code = str(status)
        description = description or DESCRIPTIONS[code]
        super().__init__(description)
        self.reply = Reply(status, error_body(code, description), headers or {})


ConsoleHandler = Callable[[Request, SandboxState, Account], Reply]


def _endpoint(
    method: str, pattern: str, operation: str
) -> Callable[[ConsoleHandler], ConsoleHandler]:
    """Register a handler that runs authenticated, under the state lock; returning = processed."""

    def register(func: ConsoleHandler) -> ConsoleHandler:
        def handler(req: Request) -> Reply:
            assert req.state is not None
            try:
                with req.state.lock:
                    req.state.complete_due_imports()  # MailUp's background work, seen now
                    account = _bearer(req, req.state)
                    reply = func(req, req.state, account)
            except ConsoleError as err:
                return err.reply
            req.processed = True
            return reply

        CONSOLE.route(method, pattern, operation, limit_key=_token_account)(handler)
        return func

    return register


def _token_owner(req: Request, state: SandboxState) -> Account | None:
    """The account of the request's unexpired Bearer token."""
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    return state.account_of_token(token.strip()) if scheme.lower() == "bearer" else None


def _token_account(req: Request, state: SandboxState) -> tuple[int, str] | None:
    account = _token_owner(req, state)
    return None if account is None else (account.id, limits.CONSOLE)


def _bearer(req: Request, state: SandboxState) -> Account:
    account = _token_owner(req, state)
    req.details["token_valid"] = account is not None  # never the token itself
    if account is None:
        raise ConsoleError(401, "Unauthorized", {"WWW-Authenticate": 'Bearer realm="MailUp"'})
    return account


def _fields(req: Request) -> dict[str, Any]:
    """The JSON object body with lowercased keys."""
    try:
        body = req.json()
    except ValueError:
        raise ConsoleError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ConsoleError(400, "The request body must be a JSON object.")
    return {str(k).lower(): v for k, v in body.items()}


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConsoleError(400, f"{name} must be a list of strings.")
    return [v.strip() for v in value if v.strip()]


def _date(when: datetime | None) -> str:
    return "" if when is None else f"{when:%Y-%m-%d %H:%M:%S}Z"


def _list(req: Request, state: SandboxState, account: Account) -> MailingList:
    mlist = state.lists.get(int(req.params["list_id"]))
    req.details["list_id"] = int(req.params["list_id"])
    if mlist is None or mlist.account_id != account.id:
        raise ConsoleError(404, f"List {req.params['list_id']} not found.")
    return mlist


# --- SMTP+ users -------------------------------------------------------------------------------


def _smtp_view(user: SmtpUser) -> dict[str, Any]:
    return {
        "CreationDate": _date(user.created),
        "IdList": user.list_id,
        "IsEnabled": user.is_enabled,
        "Note": user.note,
        "Password": user.secret,
        "PriorityCode": user.priority_code,
        **SMTP_PLUS,
        "TrustedDomains": list(user.trusted_domains),
        "TrustedSenders": list(user.trusted_senders),
        "UpdateDate": _date(user.updated),
        "Username": user.username,
    }


@_endpoint("GET", r"/Console/SmtpPlusPriorities", "smtpplus_priorities")
def priorities(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, PRIORITIES)


@_endpoint("POST", r"/Console/List/(?P<list_id>\d+)/SmtpPlus", "smtpplus_create")
def create_smtp_user(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist = _list(req, state, account)
    body = _fields(req)
    senders = _strings(body.get("trustedsenders"), "TrustedSenders")
    domains = _strings(body.get("trusteddomains"), "TrustedDomains")
    req.details.update(trusted_senders=senders, trusted_domains=domains)
    if not senders and not domains:
        raise ConsoleError(400, "Provide at least one TrustedSenders or TrustedDomains entry.")
    for email in senders:  # the doc: only senders with StatusCode 1 (Confirmed)
        sender = state.sender_by_email(account.id, email)
        if sender is None:
            raise ConsoleError(400, f"{email} is not a trusted sender: trust it and confirm it.")
        if sender.status_code != CONFIRMED:
            status = _status(sender.status_code)
            raise ConsoleError(400, f"Trusted sender {email} is not confirmed: {status}.")
    priority, enabled = body.get("prioritycode", 3), body.get("isenabled", True)
    if priority is None:
        priority = 3
    if type(priority) is not int or not 1 <= priority <= len(PRIORITIES):
        raise ConsoleError(400, "PriorityCode must be one of the SmtpPlusPriorities codes (1-5).")
    if not isinstance(enabled, bool):
        raise ConsoleError(400, "IsEnabled must be true or false.")
    user = state.add_smtp_user(
        account.id,
        mlist.id,
        is_enabled=enabled,
        note=str(body.get("note") or ""),
        priority_code=priority,
        trusted_senders=senders,
        trusted_domains=domains,
    )
    req.details["username"] = user.username
    return Reply(200, _smtp_view(user))


@_endpoint("POST", r"/Console/List/(?P<list_id>\d+)/SmtpPlus/Reset", "smtpplus_reset")
def reset_password(req: Request, state: SandboxState, account: Account) -> Reply:
    username = str(_fields(req).get("username") or "").strip()
    req.details.update(list_id=int(req.params["list_id"]), username=username)
    user = state.smtp_users.get(username)
    if (
        user is None
        or user.deleted
        or user.account_id != account.id
        or user.list_id != int(req.params["list_id"])
    ):
        raise ConsoleError(404, "Account not found.")
    user.secret, user.updated = new_smtp_password(), utcnow()
    return Reply(200, _smtp_view(user) | {"IsTrusted": True})


# --- Trusted senders ---------------------------------------------------------------------------


def sender_view(sender: TrustedSender) -> dict[str, Any]:
    return {
        "AuthorizationDate": _date(sender.authorized),
        "CreationDate": _date(sender.created),
        "EmailAddress": sender.email,
        "IdTrustedSender": sender.id,
        "StatusCode": sender.status_code,
        "StatusDescription": _status(sender.status_code),
        "UpdateDate": _date(sender.updated),
    }


def _status(code: int) -> str:
    return STATUS_DESCRIPTIONS.get(code) or OTHER_STATUS.format(code)


def _sender(req: Request, state: SandboxState, account: Account) -> TrustedSender:
    sender = state.trusted_senders.get(req.params["sender_id"])
    req.details["id_trusted_sender"] = req.params["sender_id"]
    if sender is None or sender.account_id != account.id:
        raise ConsoleError(404, "Trusted sender not found.")
    return sender


def _page_param(req: Request, name: str, default: int, minimum: int) -> int:
    raw = req.query.get(name.lower(), "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConsoleError(400, f"{name} must be an integer >= {minimum}.")
    return int(raw)


def paged(
    req: Request,
    state: SandboxState,
    items: Sequence[T],
    view: Callable[[T], dict[str, Any]],
    fields: Sequence[str] = (),
) -> Reply:
    """One page of ``items`` in the Console envelope, after ``filterby`` and ``orderby``.
    MailUp chooses the size: the one asked for, capped at ``state.max_page_size``; the envelope
    tells the client which it got. ``fields``: the item's field names, else the first item's."""
    page = _page_param(req, "PageNumber", 0, 0)
    size = min(_page_param(req, "PageSize", DEFAULT_PAGE_SIZE, 1), state.max_page_size)
    skipped = page * size
    if "filterby" in req.query or "orderby" in req.query:
        views = [view(item) for item in items]
        fields = fields or (list(views[0]) if views else [])
        try:
            views = _filtered(req, views, fields)
        except ValueError as exc:
            raise ConsoleError(400, str(exc)) from None
        total, views = len(views), views[skipped : skipped + size]
    else:  # only the page's items are viewed: a group may hold 100,000 recipients
        total, views = len(items), [view(item) for item in items[skipped : skipped + size]]
    req.details.update(page_number=page, page_size=size, total=total)
    return Reply(
        200,
        {
            "IsPaginated": False,
            "Items": views,
            "PageNumber": page,
            "PageSize": size,
            "Skipped": skipped,
            "TotalElementsCount": total,
        },
    )


def _filtered(req: Request, views: list[dict[str, Any]], fields: Sequence[str]) -> list[Any]:
    """``views`` as ``filterby`` and ``orderby`` want them; ValueError when they are garbled."""
    filterby, orderby = req.query.get("filterby"), req.query.get("orderby")
    if filterby is not None:
        keep = query.compile_filter(filterby, fields, views[0] if views else None)
        views = [v for v in views if keep(v)]
    if orderby is not None:
        views = query.order(views, orderby, fields)
    return views


def _if_match(value: str) -> str:
    """The If-Match value as sent, minus surrounding whitespace and ETag-style quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return value


@_endpoint("POST", r"/Console/TrustedSenders", "trusted_sender_create")
def trust_sender(req: Request, state: SandboxState, account: Account) -> Reply:
    email = str(_fields(req).get("email") or "").strip()
    req.details["email"] = email
    if not EMAIL_RE.fullmatch(email):
        raise ConsoleError(400, f"Invalid email address: {email!r}.")
    existing = state.sender_by_email(account.id, email)
    if existing is not None and existing.status_code == BLOCKED:
        raise ConsoleError(400, f"Trusted sender {email} is blocked and cannot be trusted again.")
    sender = state.trust_sender(account.id, email)  # the verification email "goes out" here
    req.details.update(id_trusted_sender=sender.id, created=existing is None)
    return Reply(200, sender_view(sender))


@_endpoint("GET", r"/Console/TrustedSenders", "trusted_senders_list")
def list_senders(req: Request, state: SandboxState, account: Account) -> Reply:
    senders = [s for s in state.trusted_senders.values() if s.account_id == account.id]
    return paged(req, state, senders, sender_view)


@_endpoint("GET", r"/Console/TrustedSenders/(?P<sender_id>[^/]+)", "trusted_sender_get")
def get_sender(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, sender_view(_sender(req, state, account)))


@_endpoint("DELETE", r"/Console/TrustedSenders/(?P<sender_id>[^/]+)", "trusted_sender_delete")
def block_sender(req: Request, state: SandboxState, account: Account) -> Reply:
    if_match = req.headers.get("If-Match")
    if if_match is None or not if_match.strip():
        raise ConsoleError(403, "Missing If-Match header.")
    sender = _sender(req, state, account)
    if _if_match(if_match) != sender.email:  # the EmailAddress itself, case included
        raise ConsoleError(412, "Invalid [EmailAddress] from If-Match header field.")
    sender.status_code, sender.updated = BLOCKED, utcnow()
    return Reply(200, sender_view(sender))
