"""MailUp transactional SMS API (``https://sendsms.mailup.com/api/v2.0``), served under
``/sms/api/v2.0``: ListSecret GET/POST/DELETE (HTTP Basic, console user) and SMS send.

Envelope: ``{"Data": ..., "Code": "0", "Description": "", "State": "DONE"}``; errors carry
``Data: null``, the documented code and text, and ``State: "ERROR"``. Like ASP.NET, JSON field
names and query keys are matched case-insensitively (the doc itself writes both ``ListGUID`` and
``ListGuid``).

Where the doc is silent or loose: bad Basic credentials answer HTTP 401 + WWW-Authenticate with
code 250 (the doc's table files 250 under 403); texts over 670 chars are truncated, never 107; an
unknown TemplateId answers 101 before the credit check (the cost depends on the template's text);
a 301 answer has ``State: "DONE"``, since the SMS went out.

MailUp's caps (``sandbox.limits``): sends count against the account in the URL (30 calls/s);
ListSecret calls against the Basic-auth user's account, or the list's when the user is unknown
(5 calls/s, shared with the Console API), whatever the password: a refused login still arrives.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from sandbox import limits
from sandbox.http import ApiFamily, LimitKey, Reply, Request
from sandbox.state import Account, MailingList, SandboxState

DESCRIPTIONS = {  # the doc's error table; [recipient] / [idList] are filled in when known
    "0": "",
    "100": "No request found",
    "101": "Missing or empty parameters",
    "102": "ListGUID is not valid for the current account or list",
    "103": "ListSecret is not valid for the current account or list",
    "104": "SMS sender name is empty for list nr. [idList]",
    "105": "Number or Prefix missing in the recipient",
    "106": "Recipient is invalid",
    "107": "Content too long",
    "201": "listID is not valid for the current account or list",
    "202": "ListGUID is not in a correct format",
    "203": "ListSecret is not in a correct format",
    "204": "Cannot send SMS to USA recipient",
    "205": "Sending denied: NO CREDITS",
    "206": "SMS number [recipient] is in optout state for list nr.[idList].",
    "207": "Provided SMS sender is not certified and cannot be used to send messages",
    "250": "Access denied",
    "300": "Operation failed: a generic error occur",
    "301": "The message was sent but the statistics are incorrect due to an error",
    "302": "Error delivering message to [recipient]",
}
MAX_CHARS = 670  # the sending engine truncates longer messages
GUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SENDER_RE = re.compile(r"[A-Za-z0-9]{1,11}")
RECIPIENT_RE = re.compile(r"(\+|00)(\d{8,15})")


def envelope(data: Any, code: str = "0", description: str = "") -> dict[str, Any]:
    state = "DONE" if code in ("0", "301") else "ERROR"
    return {"Data": data, "Code": code, "Description": description, "State": state}


def error_body(code: str, description: str) -> dict[str, Any]:
    return envelope(None, code, description)


SMS = ApiFamily("sms", "/sms/api/v2.0", error_body, DESCRIPTIONS)


class SmsError(Exception):
    """A documented error answer; raised by validation, turned into a Reply by ``_endpoint``."""

    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None, **fill: Any):
        text = DESCRIPTIONS[code]
        for name, value in fill.items():
            text = text.replace(f"[{name}]", str(value))
        super().__init__(text)
        self.reply = Reply(status, error_body(code, text), headers or {})


SmsHandler = Callable[[Request, SandboxState], Reply]


def _endpoint(
    method: str, pattern: str, operation: str, limit_key: LimitKey, *, allows_301: bool = False
) -> Callable[[SmsHandler], SmsHandler]:
    """Register a handler that runs under the state lock; reaching its return means processed.
    ``limit_key`` names the account the call counts against (MailUp's per-account caps)."""

    def register(func: SmsHandler) -> SmsHandler:
        def handler(req: Request) -> Reply:
            assert req.state is not None
            req.details["list_id"] = int(req.params["list_id"])
            try:
                with req.state.lock:
                    reply = func(req, req.state)
            except SmsError as err:
                return err.reply
            req.processed = True
            return reply

        SMS.route(method, pattern, operation, allows_301=allows_301, limit_key=limit_key)(handler)
        return func

    return register


def _fields(req: Request) -> dict[str, Any]:
    """The JSON object body with lowercased keys; 400/100 when absent or not an object."""
    try:
        body = req.json()
    except ValueError:
        raise SmsError(400, "100") from None
    if not isinstance(body, dict):
        raise SmsError(400, "100")
    return {str(k).lower(): v for k, v in body.items()}


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def _check_guid(given: str, mlist: MailingList) -> None:
    if not given:
        raise SmsError(400, "101")
    if not GUID_RE.fullmatch(given):
        raise SmsError(403, "202")
    if given.lower() != mlist.guid.lower():
        raise SmsError(400, "102")


# --- ListSecret management -----------------------------------------------------------------


def _console_account(req: Request, state: SandboxState) -> tuple[int, str] | None:
    """The Basic-auth user's account, else the list's: a ListSecret call is a REST method."""
    credentials = req.basic_credentials()
    account = state.account_by_username(credentials[0]) if credentials else None
    mlist = state.lists.get(int(req.params["list_id"]))
    account_id = account.id if account else mlist.account_id if mlist else None
    return None if account_id is None else (account_id, limits.CONSOLE)


def _authorized_list(req: Request, state: SandboxState) -> MailingList:
    account = _basic_auth(req, state)
    mlist = state.lists.get(int(req.params["list_id"]))
    if mlist is None or mlist.account_id != account.id:
        raise SmsError(403, "201")
    return mlist


def _basic_auth(req: Request, state: SandboxState) -> Account:
    denied = SmsError(401, "250", {"WWW-Authenticate": 'Basic realm="MailUp SMS"'})
    credentials = req.basic_credentials()
    if credentials is None:
        raise denied
    account = state.account_by_username(credentials[0])
    if account is None or account.password != credentials[1]:
        raise denied
    return account


@_endpoint("GET", r"/lists/(?P<list_id>\d+)/listsecret", "listsecret_get", _console_account)
def get_list_secret(req: Request, state: SandboxState) -> Reply:
    mlist = _authorized_list(req, state)
    return Reply(200, envelope({"ListSecret": mlist.list_secret}))


@_endpoint("POST", r"/lists/(?P<list_id>\d+)/listsecret", "listsecret_create", _console_account)
def create_list_secret(req: Request, state: SandboxState) -> Reply:
    mlist = _authorized_list(req, state)
    _check_guid(_text(_fields(req).get("listguid")), mlist)
    req.details["created"] = mlist.list_secret is None
    if mlist.list_secret is None:  # an existing secret is answered unchanged
        mlist.list_secret = str(uuid.uuid4())
    return Reply(200, envelope({"ListSecret": mlist.list_secret}))


@_endpoint("DELETE", r"/lists/(?P<list_id>\d+)/listsecret", "listsecret_delete", _console_account)
def delete_list_secret(req: Request, state: SandboxState) -> Reply:
    mlist = _authorized_list(req, state)
    _check_guid(req.query.get("listguid", "").strip(), mlist)
    mlist.list_secret = None
    return Reply(200, envelope(None))


# --- Sending ---------------------------------------------------------------------------------


def segments(length: int, unicode: bool) -> int:
    """SMS parts billed for a text: GSM 160 single / 153 per part, Unicode 70 / 67."""
    single, part = (70, 67) if unicode else (160, 153)
    return 1 if length <= single else math.ceil(length / part)


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true")


def _merge(text: str, dynamic_fields: Any) -> str:
    """Replace each ``[N]`` with ``V``; 400/101 when DynamicFields isn't a list of {N, V}."""
    if dynamic_fields is None:
        return text
    if not isinstance(dynamic_fields, list) or not all(isinstance(f, dict) for f in dynamic_fields):
        raise SmsError(400, "101")
    for item in dynamic_fields:
        pair = {str(k).lower(): v for k, v in item.items()}
        if _text(pair.get("n")):
            text = text.replace(f"[{_text(pair['n'])}]", _text(pair.get("v")))
    return text


def _recipient(raw: str) -> str:
    """Validate and normalize a recipient to "+<digits>"."""
    number = "".join(raw.split())
    m = RECIPIENT_RE.fullmatch(number)
    if m is None:
        raise SmsError(400, "105" if number.isdigit() else "106")
    normalized = "+" + m.group(2)
    if normalized.startswith("+1"):
        raise SmsError(403, "204")
    return normalized


def _sms_account(req: Request, state: SandboxState) -> tuple[int, str]:
    """The account in the URL: sends count against its 30 calls per second."""
    return int(req.params["account_id"]), limits.SMS


@_endpoint(
    "POST", r"/sms/(?P<account_id>\d+)/(?P<list_id>\d+)", "send_sms", _sms_account, allows_301=True
)
def send_sms(req: Request, state: SandboxState) -> Reply:
    body = _fields(req)
    list_id, details = int(req.params["list_id"]), req.details
    details.update(
        recipient=_text(body.get("recipient")), campaign_code=_text(body.get("campaigncode"))
    )
    guid, secret, recipient = (_text(body.get(k)) for k in ("listguid", "listsecret", "recipient"))
    content, template_id = _text(body.get("content")), _text(body.get("templateid"))
    if not (guid and secret and recipient) or bool(content) == bool(template_id):
        raise SmsError(400, "101")
    mlist = state.lists.get(list_id)
    if mlist is None or mlist.account_id != int(req.params["account_id"]):
        raise SmsError(403, "201")
    account = state.accounts[mlist.account_id]
    _check_guid(guid, mlist)
    if not GUID_RE.fullmatch(secret):
        raise SmsError(403, "203")
    details["list_secret_valid"] = (
        mlist.list_secret is not None and secret.lower() == mlist.list_secret.lower()
    )
    if not details["list_secret_valid"]:
        raise SmsError(400, "103")
    sender = _text(body.get("sender")) or mlist.default_sender
    if not sender:
        raise SmsError(400, "104", idList=list_id)
    details["recipient"] = recipient = _recipient(recipient)
    if not SENDER_RE.fullmatch(sender):
        raise SmsError(403, "207")
    if recipient in state.optout:
        raise SmsError(403, "206", recipient=recipient, idList=list_id)
    if template_id:
        text = state.sms_templates.get(int(template_id)) if template_id.isdigit() else None
        if text is None:
            raise SmsError(400, "101")
    else:
        text = content
    text = _merge(text, body.get("dynamicfields"))
    unicode = _is_true(body.get("isunicode"))
    truncated = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]
    cost = float(segments(len(text), unicode))
    if account.credits < cost:
        raise SmsError(403, "205")
    account.credits -= cost
    delivery_id = state.take_delivery_id()
    details.update(
        delivery_id=delivery_id, content=text, truncated=truncated, cost=cost, sender=sender,
        is_unicode=unicode, template_id=int(template_id) if template_id else None,
    )  # fmt: skip
    if req.fault == "301":  # delivered and charged, but MailUp lost track of the id
        return Reply(200, envelope({"DeliveryId": 0, "Cost": cost}, "301", DESCRIPTIONS["301"]))
    return Reply(200, envelope({"DeliveryId": delivery_id, "Cost": cost}))
