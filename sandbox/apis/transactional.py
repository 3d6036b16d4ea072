"""MailUp transactional email API (``https://send.mailup.com/API/v2.0``), served under
``/send/API/v2.0``: SendMessage, SendTemplate, ListUserInfo.

No auth header: the SMTP+ user's credentials travel in the body as ``"User": {"Username",
"Secret"}``. Answers ``{"Status": "done", "Code": "0", "Message": "Ok"}`` or ``{"Status":
"error", "Code", "Message"}`` with the doc's code and text, HTTP 400 for code 1 and 403 for
101-112. Accepted messages are kept in ``state.emails``, attachments and embedded images decoded
to bytes, for ``/_sandbox/emails``. JSON field names match case-insensitively.

Where the doc is silent or loose: the checks run 101 (no JSON object), 102 (unknown user or wrong
secret), 112, then the SMTP+ user's account: 106 (not in the sandbox), 107 (suspended), 108
(deleted), then 103, 104, 105, then 109, 110, 111. ListUserInfo still answers a disabled or
blocked caller (the doc sends blocked users there to learn why): only 102, 112 and 106-108 stop
it (the doc says nothing of a closed account there; answering one would be kinder than a closed
account gets), and an unknown or foreign Username answers code 1. A malformed DTO (wrong types, a
Body that is not base64 or a byte array) answers code 1. The doc's examples word 111 and 112
unlike its table: the table wins. Merge tags apply to SendMessage too (the doc's own example uses
them); a ``[tag]`` is replaced only when written in lowercase in the content, its DynamicFields
name matched case-insensitively.

MailUp's caps (``sandbox.limits``): ListUserInfo counts against the account of the SMTP+ user
named in ``User`` (5 calls/s, shared with the Console API), whatever the secret; SendMessage and
SendTemplate are limited by the speed bought, not per second, so they are not counted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from sandbox import limits
from sandbox.http import ApiFamily, LimitKey, Reply, Request
from sandbox.state import MessagePart, SandboxState, SentEmail, SmtpUser, utcnow

DESCRIPTIONS = {  # the doc's error table
    "0": "Ok",
    "1": "The operation failed.",
    "101": "The input is null.",
    "102": "The operation is not authorized.",
    "103": "The user is not enabled.",
    "104": "The user is blocked.",
    "105": "The user is blocked until this date.",
    "106": "The MailUp account cannot be found.",
    "107": "The MailUp account has been suspended.",
    "108": "The MailUp account has been deleted.",
    "109": "At leastone recipient is required.",
    "110": "The sender is required.",
    "111": "The template cannot found.",
    "112": "The user has been deleted.",
}
NEVER_BLOCKED = "0001-01-01T00:00:00"  # .NET's DateTime.MinValue, as ListUserInfo shows it
TAG_RE = re.compile(r"\[([^\[\]]+)\]")


def error_body(code: str, description: str) -> dict[str, str]:
    return {"Status": "done" if code == "0" else "error", "Code": code, "Message": description}


OK = error_body("0", DESCRIPTIONS["0"])
TRANSACTIONAL = ApiFamily(
    "transactional", "/send/API/v2.0", error_body, DESCRIPTIONS, server_error_code="1"
)


class SendError(Exception):
    """A documented error answer; raised by validation, turned into a Reply by ``_endpoint``.
    The Message is the doc's text, then ``detail`` if any (clients may match on the text)."""

    def __init__(self, code: str, detail: str = ""):
        message = f"{DESCRIPTIONS[code]} {detail}".strip()
        super().__init__(message)
        self.reply = Reply(400 if code == "1" else 403, error_body(code, message))


SendHandler = Callable[[Request, SandboxState, dict[str, Any], SmtpUser], Reply]


def _endpoint(
    pattern: str, operation: str, *, check_blocks: bool = True, limit_key: LimitKey | None = None
) -> Callable[[SendHandler], SendHandler]:
    """Register a POST handler that gets the parsed body and the authenticated SMTP+ user, and
    runs under the state lock; reaching its return means processed. ``check_blocks``: refuse
    disabled and blocked users (103-105); ``limit_key``: the call counts against a cap."""

    def register(func: SendHandler) -> SendHandler:
        def handler(req: Request) -> Reply:
            assert req.state is not None
            try:
                body = _fields(req)
                with req.state.lock:
                    user = _authenticate(req, req.state, body, check_blocks)
                    reply = func(req, req.state, body, user)
            except SendError as err:
                return err.reply
            req.processed = True
            return reply

        TRANSACTIONAL.route("POST", pattern, operation, limit_key=limit_key)(handler)
        return func

    return register


# --- parsing: DTOs with case-insensitive names; code 1 when a value has the wrong type -----------


def _fields(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise SendError("101") from None
    if not isinstance(body, dict):
        raise SendError("101")
    return _obj(body)


def _obj(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SendError("1", "An object was expected.")
    return {str(k).lower(): v for k, v in value.items()}


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SendError("1", "A list was expected.")
    return value


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def _address(value: Any) -> dict[str, str]:
    dto = _obj(value)
    return {"name": _text(dto.get("name")), "email": _text(dto.get("email"))}


def _pairs(value: Any) -> list[dict[str, str]]:
    """A List<NameValueDTO> as [{"N", "V"}]."""
    return [{"N": _text(d.get("n")), "V": _text(d.get("v"))} for d in map(_obj, _items(value))]


def _bytes(value: Any) -> bytes:
    """MessagePartDTO.Body: .NET serializes byte[] as base64; a literal byte array works too."""
    try:
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
        if isinstance(value, list):
            return bytes(value)
    except (binascii.Error, ValueError, TypeError):
        pass
    raise SendError("1", "Body must be base64 or an array of bytes.")


def _parts(value: Any) -> list[MessagePart]:
    return [
        MessagePart(_text(d.get("filename")), _text(d.get("contentid")), _bytes(d.get("body")))
        for d in map(_obj, _items(value))
    ]


def _html(value: Any) -> str:
    """HtmlDTO's Body (the HTML inside <body>); a bare string is taken as the body itself."""
    return value if isinstance(value, str) else _text(_obj(value).get("body"))


def merge(content: str, fields: list[dict[str, str]]) -> str:
    """Replace ``[name]`` by its DynamicFields value, only where the tag is written in lowercase
    (the doc: "If you use capital letters (e.g. "Dear [FirstName]"), the text is not replaced")."""
    values = {f["N"].lower(): f["V"] for f in fields if f["N"]}

    def substitute(m: re.Match[str]) -> str:
        name = m.group(1)
        return values[name] if name == name.lower() and name in values else m.group(0)

    return TAG_RE.sub(substitute, content)


# --- authentication ------------------------------------------------------------------------------


def _authenticate(
    req: Request, state: SandboxState, body: dict[str, Any], check_blocks: bool
) -> SmtpUser:
    credentials = _obj(body.get("user"))
    username, secret = _text(credentials.get("username")), credentials.get("secret")
    user = state.smtp_users.get(username)
    valid = user is not None and isinstance(secret, str) and secret == user.secret
    req.details.update(smtp_user=username, secret_valid=valid)  # never the secret itself
    if user is None or not valid:
        raise SendError("102")
    if user.deleted:
        raise SendError("112")
    _check_account(state, user)
    if check_blocks:
        if not user.is_enabled:
            raise SendError("103")
        if user.admin_block:
            raise SendError("104")
        if user.block_until is not None and user.block_until > utcnow():
            until = f"{user.block_until:%Y-%m-%dT%H:%M:%S}"
            raise SendError("105", f"BlockUntil: {until}")
    return user


def _check_account(state: SandboxState, user: SmtpUser) -> None:
    """106-108: the SMTP+ user's MailUp account must exist and be active."""
    account = state.accounts.get(user.account_id)
    if account is None:
        raise SendError("106")
    if account.status == "suspended":
        raise SendError("107")
    if account.status == "deleted":
        raise SendError("108")


def _caller_account(req: Request, state: SandboxState) -> tuple[int, str] | None:
    """The account of the SMTP+ user named in the body, for the caps; None when unparseable."""
    try:
        credentials = _obj(_fields(req).get("user"))
    except SendError:
        return None
    user = state.smtp_users.get(_text(credentials.get("username")))
    return None if user is None else (user.account_id, limits.CONSOLE)


# --- sending -------------------------------------------------------------------------------------


def _accept(
    req: Request,
    state: SandboxState,
    body: dict[str, Any],
    user: SmtpUser,
    kind: str,
    content: tuple[str, str, str] | None,  # subject, html, text before merging; None: no template
    template_id: int | None = None,
) -> Reply:
    """Validate what both sends share (109, 110, 111, code 1), then keep the message."""
    to, cc, bcc = ([_address(a) for a in _items(body.get(k))] for k in ("to", "cc", "bcc"))
    req.details.update(
        to=[a["email"] for a in to], cc=[a["email"] for a in cc], bcc=[a["email"] for a in bcc]
    )
    if not any(a["email"] for a in to + cc + bcc):
        raise SendError("109")
    sender = _address(body.get("from"))
    req.details["from"] = sender["email"]
    if not sender["email"]:
        raise SendError("110")
    if content is None:
        raise SendError("111")
    xsmtp = _obj(body.get("xsmtpapi"))
    fields = _pairs(xsmtp.get("dynamicfields"))
    skip = xsmtp.get("skipdynamicfields") is True
    subject, html, text = content
    rendered = [c if skip else merge(c, fields) for c in content]
    email = SentEmail(
        id=len(state.emails) + 1,
        kind=kind,
        smtp_user=user.username,
        list_id=user.list_id,
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=_text(body.get("replyto")) or None,
        subject=subject,
        html=html,
        text=text,
        rendered_subject=rendered[0],
        rendered_html=rendered[1],
        rendered_text=rendered[2],
        template_id=template_id,
        campaign_code=_text(xsmtp.get("campaigncode")) or None,
        campaign_name=_text(xsmtp.get("campaignname")) or None,
        dynamic_fields=fields,
        extended_headers=_pairs(body.get("extendedheaders")),
        attachments=_parts(body.get("attachments")),
        embedded_images=_parts(body.get("embeddedimages")),
    )
    state.emails.append(email)
    req.details.update(
        email_id=email.id,
        subject=email.rendered_subject,
        campaign_code=email.campaign_code,
        attachments=[p.sha256 for p in email.attachments],
        embedded_images=[p.sha256 for p in email.embedded_images],
    )
    return Reply(200, OK)


@_endpoint("/messages/sendmessage", "send_message")
def send_message(req: Request, state: SandboxState, body: dict[str, Any], user: SmtpUser) -> Reply:
    content = (_text(body.get("subject")), _html(body.get("html")), _text(body.get("text")))
    return _accept(req, state, body, user, "message", content)


@_endpoint("/messages/sendtemplate", "send_template")
def send_template(req: Request, state: SandboxState, body: dict[str, Any], user: SmtpUser) -> Reply:
    raw_id = _text(body.get("templateid"))
    template_id = int(raw_id) if raw_id.isdigit() else None
    req.details["template_id"] = template_id
    # Only messages of the SMTP+ user's own list qualify (the doc's TemplateDTO).
    template = state.email_templates.get(user.list_id, {}).get(template_id or 0)
    content = None
    if template is not None:  # the request's Subject, if any, overrides the template's
        subject = _text(body.get("subject")) or template.subject
        content = (subject, template.html, template.text)
    return _accept(req, state, body, user, "template", content, template_id)


# --- users -------------------------------------------------------------------------------------


def _user_info(user: SmtpUser) -> dict[str, Any]:
    """UserInfoDTO, as in the doc's example."""
    return {
        "Username": user.username,
        "IdConsole": user.account_id,
        "IdList": user.list_id,
        "IsEnabled": user.is_enabled,
        "Priority": user.priority_code,
        "Note": user.note,
        "CreationDate": f"{user.created:%Y-%m-%dT%H:%M:%S}",
        "UpdateDate": f"{user.updated:%Y-%m-%dT%H:%M:%S}",
        "DomainList": ",".join(user.trusted_domains),
        "SenderList": ",".join(user.trusted_senders),
        "BlockUntil": f"{user.block_until:%Y-%m-%dT%H:%M:%S}"
        if user.block_until
        else NEVER_BLOCKED,
        "AdminBlock": user.admin_block,
    }


@_endpoint("/users/listuserinfo", "list_user_info", check_blocks=False, limit_key=_caller_account)
def list_user_info(
    req: Request, state: SandboxState, body: dict[str, Any], caller: SmtpUser
) -> Reply:
    wanted = _text(body.get("username"))
    req.details["username"] = wanted or None
    peers = [  # the caller's own list only, per the doc
        u
        for u in state.smtp_users.values()
        if (u.account_id, u.list_id) == (caller.account_id, caller.list_id)
    ]
    if wanted:
        found = [u for u in peers if u.username == wanted]
        if not found:
            raise SendError("1", f"No SMTP+ user {wanted} on this list.")
        if found[0].deleted:
            raise SendError("112")
        users = found
    else:
        users = [u for u in peers if not u.deleted]
    req.details["users"] = [u.username for u in users]
    return Reply(200, OK | {"UserList": [_user_info(u) for u in users]})
