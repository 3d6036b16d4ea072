"""Console API email messages (doc 003, "Email messages"; README †: MailUp's real URLs), on the
``CONSOLE`` family: create, details, update, enable dynamic fields, copy, publish; read a list's
messages (all at ``Emails``, published at ``Online/Emails``, archived at ``Archived/Emails``); a
list's tags; a message's five attachment slots.

A message belongs to one list and is reached only through it: a message of another list is a
404, as is an unknown list. Messages and tags take account-wide ids from 1. Sendings live in
``sandbox.apis.sendings``; a new sending of a message is its ``LastSendDate``.

Where the doc is silent: a message's body is ``{Subject, Content, Head, Body, Embed,
IsConfirmation, Notes, Fields: [{Id, Value, Description}], UseDynamicField, Tags: [{Id, Name,
Enabled}], TrackingInfo: {Enabled, Protocols, CustomParams}}``; Subject is mandatory (400, on
update too); a field of the wrong JSON type is a 400 naming it; unknown fields (``idMessage``,
``idList``, ``Attachments``, ``CreationDate`` of a details body sent back) are ignored. Tags are
matched by Id only (their Name and Enabled in the body are ignored) and each must be a tag of the
message's list, else 400 naming it. Dynamic fields are disabled unless Fields holds at least one
entry or UseDynamicField is true (the doc's two ways; a non-empty Fields enables them on update
too). An update replaces every field it is given and resets the ones it leaves out to their
defaults, but for Tags (empty or absent: unchanged, the doc) and Fields (absent: unchanged, the
doc says optional); TrackingInfo's Protocols are answered empty while tracking is disabled (the
doc: they are ignored then). A copy takes everything but the publication, the archive flag and
the LastSendDate, attachments and tags included; its body (optional) may override Subject and
Notes, nothing else. Visibility takes a bare JSON boolean (anything else 400) and answers an
empty 200. Reads answer the newest message first (as the other paged reads); ``tags`` (the doc's
``tags="1,13,'hello, world'"``) keeps the messages with at least one listed tag, each item
matching a tag's Id or its Name exactly (case included, as filterby's text search), single quotes
around a name that holds a comma; a blank ``tags`` filters nothing. "Url" of a published message
is a sandbox address, not a reachable page. A message is archived only by the control route
(``/_sandbox/messages/{id}``), the Console has no such call.

Tags: GET answers them in the paged envelope, newest first (MailUp's help page); POST takes a bare
JSON string (the doc), trimmed, not empty, at most 50 characters, and not the Name of another tag of
the list (any case) — 400 otherwise; PUT takes the doc's full ``{Enabled, Id, Name}`` with the same
rules, its Id (when given) matching the URL's (400); DELETE answers an empty 200 and takes the tag
off every message. A new tag is enabled.

Attachments: the URL's slot must be 1-5 (400); the body's Slot, idList and idMessage, when given,
must match the URL (400); Name is mandatory; Base64Data is mandatory and must be plain base64 —
no CR or LF (the doc's warning: a 400), no other whitespace, correctly padded, not empty. Adding
to a taken slot replaces its file. Path is ``attachments/{idList}/{idMessage}/{slot}/{Name}``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from sandbox.apis.console import ConsoleError, _date, _endpoint, _fields, _list, paged
from sandbox.http import Reply, Request
from sandbox.state import (
    ATTACHMENT_SLOTS,
    Account,
    Attachment,
    EmailMessage,
    MailingList,
    SandboxState,
    Tag,
)

LIST = r"/Console/List/(?P<list_id>\d+)"
MESSAGE = LIST + r"/Email/(?P<message_id>\d+)"
NEVER = "0001-01-01 00:00:00Z"  # the doc's LastSendDate of a message never sent
EMAIL_ITEM = (
    "idMessage", "idList", "Subject", "Notes", "CreationDate", "LastSendDate", "Tags",
    "ServiceType",
)  # fmt: skip
PUBLISHED_ITEM = (*EMAIL_ITEM, "Url")
TAG_ITEM = ("Enabled", "Id", "Name")
PUBLIC_URL = "https://sandbox.mailup.example/nl/{list_id}/{message_id}"
TAG_NAME_MAX = 50


# --- views -------------------------------------------------------------------------------------


def tag_view(tag: Tag) -> dict[str, Any]:
    return {"Enabled": tag.enabled, "Id": tag.id, "Name": tag.name}


def _tags(state: SandboxState, message: EmailMessage) -> list[dict[str, Any]]:
    return [tag_view(state.tags[i]) for i in message.tag_ids if i in state.tags]


def attachment_view(message: EmailMessage, attachment: Attachment) -> dict[str, Any]:
    path = f"attachments/{message.list_id}/{message.id}/{attachment.slot}/{attachment.name}"
    return {"Name": attachment.name, "Path": path, "Slot": attachment.slot}


def _attachments(message: EmailMessage) -> list[dict[str, Any]]:
    return [attachment_view(message, message.attachments[n]) for n in sorted(message.attachments)]


def _tracking(message: EmailMessage) -> dict[str, Any]:
    tracking = message.tracking
    enabled = bool(tracking.get("Enabled"))
    return {
        "CustomParams": tracking.get("CustomParams", ""),
        "Enabled": enabled,
        "Protocols": tracking.get("Protocols", []) if enabled else [],
    }


def details_view(state: SandboxState, message: EmailMessage) -> dict[str, Any]:
    return {
        "idMessage": message.id,
        "idList": message.list_id,
        "Subject": message.subject,
        "Content": message.content,
        "Head": message.head,
        "Body": message.body,
        "Embed": message.embed,
        "IsConfirmation": message.is_confirmation,
        "Notes": message.notes,
        "Fields": [dict(f) for f in message.fields],
        "UseDynamicField": message.use_dynamic_field,
        "Tags": _tags(state, message),
        "TrackingInfo": _tracking(message),
        "Attachments": _attachments(message),
        "CreationDate": _date(message.created),
    }


def _item_view(state: SandboxState) -> Callable[[EmailMessage], dict[str, Any]]:
    def view(message: EmailMessage) -> dict[str, Any]:
        return {
            "idMessage": message.id,
            "idList": message.list_id,
            "Subject": message.subject,
            "Notes": message.notes,
            "CreationDate": _date(message.created),
            "LastSendDate": _date(message.last_sent) or NEVER,
            "Tags": _tags(state, message),
            "ServiceType": 0,  # a newsletter: the sandbox has no SMTP+ messages here
        }

    return view


def _published_view(state: SandboxState) -> Callable[[EmailMessage], dict[str, Any]]:
    item = _item_view(state)

    def view(message: EmailMessage) -> dict[str, Any]:
        url = PUBLIC_URL.format(list_id=message.list_id, message_id=message.id)
        return item(message) | {"Url": url}

    return view


# --- request parsing ---------------------------------------------------------------------------


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key.lower())
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConsoleError(400, f"{key} must be a string.")
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key.lower())
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConsoleError(400, f"{key} must be true or false.")
    return value


def _lowered(item: Any, problem: ConsoleError) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise problem
    return {str(k).lower(): v for k, v in item.items()}


def _dynamic_fields(value: Any) -> list[dict[str, Any]]:
    """Fields ``[{Id, Value, Description}]``, as answered."""
    if value is None:
        return []
    problem = ConsoleError(400, "Fields must be a list of {Id, Value, Description} objects.")
    if not isinstance(value, list):
        raise problem
    fields = []
    for item in value:
        entry = _lowered(item, problem)
        field_id, text, description = (entry.get(k) for k in ("id", "value", "description"))
        if type(field_id) is not int or field_id < 1:
            raise problem
        if not isinstance(text, str | None) or not isinstance(description, str | None):
            raise problem
        fields.append({"Id": field_id, "Value": text or "", "Description": description or ""})
    return fields


def _tag_ids(value: Any, state: SandboxState, mlist: MailingList) -> list[int]:
    """The ids of Tags ``[{Id, ...}]``, each a tag of ``mlist`` (the doc: created in advance)."""
    if value is None:
        return []
    problem = ConsoleError(400, "Tags must be a list of {Id, Name, Enabled} objects.")
    if not isinstance(value, list):
        raise problem
    ids: list[int] = []
    for item in value:
        tag_id = _lowered(item, problem).get("id")
        if type(tag_id) is not int:
            raise problem
        tag = state.tags.get(tag_id)
        if tag is None or tag.list_id != mlist.id:
            raise ConsoleError(400, f"Tag {tag_id} is not a tag of list {mlist.id}.")
        if tag_id not in ids:
            ids.append(tag_id)
    return ids


def _tracking_info(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    problem = ConsoleError(
        400, "TrackingInfo must be {Enabled: bool, Protocols: [string], CustomParams: string}."
    )
    info = _lowered(value, problem)
    enabled, protocols, params = (info.get(k) for k in ("enabled", "protocols", "customparams"))
    if not isinstance(enabled, bool | None) or not isinstance(params, str | None):
        raise problem
    if isinstance(protocols, str):
        protocols = [protocols]
    if protocols is None:
        protocols = []
    if not isinstance(protocols, list) or not all(isinstance(p, str) for p in protocols):
        raise problem
    return {"Enabled": bool(enabled), "Protocols": list(protocols), "CustomParams": params or ""}


def _subject(body: dict[str, Any]) -> str:
    subject = _text(body, "Subject")
    if not subject.strip():
        raise ConsoleError(400, "Subject is mandatory.")
    return subject


def _apply(message: EmailMessage, body: dict[str, Any], state: SandboxState) -> None:
    """Set every field of the message from a create or update body (lowercased keys)."""
    mlist = state.lists[message.list_id]
    message.subject = _subject(body)
    message.content = _text(body, "Content")
    message.head = _text(body, "Head")
    message.body = _text(body, "Body")
    message.notes = _text(body, "Notes")
    message.embed = _flag(body, "Embed")
    message.is_confirmation = _flag(body, "IsConfirmation")
    use_dynamic = _flag(body, "UseDynamicField")
    if "fields" in body and body["fields"] is not None:
        message.fields = _dynamic_fields(body["fields"])
    message.use_dynamic_field = use_dynamic or bool(message.fields)
    tag_ids = _tag_ids(body.get("tags"), state, mlist)
    if tag_ids:  # the doc: empty leaves them; there is no way to clear all tags
        message.tag_ids = tag_ids
    message.tracking = _tracking_info(body.get("trackinginfo"))


# --- lookups -----------------------------------------------------------------------------------


def _message(req: Request, state: SandboxState, account: Account) -> EmailMessage:
    """The URL's message, which must be a message of the URL's list."""
    mlist = _list(req, state, account)
    message_id = int(req.params["message_id"])
    req.details["message_id"] = message_id
    message = state.messages.get(message_id)
    if message is None or message.list_id != mlist.id:
        raise ConsoleError(404, f"Message {message_id} not found in list {mlist.id}.")
    return message


def _tag(req: Request, state: SandboxState, account: Account) -> Tag:
    mlist = _list(req, state, account)
    tag_id = int(req.params["tag_id"])
    req.details["tag_id"] = tag_id
    tag = state.tags.get(tag_id)
    if tag is None or tag.list_id != mlist.id:
        raise ConsoleError(404, f"Tag {tag_id} not found in list {mlist.id}.")
    return tag


def _newest_first(state: SandboxState, mlist: MailingList) -> list[EmailMessage]:
    mine = [m for m in state.messages.values() if m.list_id == mlist.id]
    return sorted(mine, key=lambda m: m.id, reverse=True)


def _tag_terms(raw: str) -> list[str]:
    """The items of ``tags``: comma-separated, a name with a comma in single quotes."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    terms, current, quoted = [], "", False
    for char in raw:
        if char == "'":
            quoted = not quoted
        elif char == "," and not quoted:
            terms.append(current)
            current = ""
        else:
            current += char
    if quoted:
        raise ConsoleError(400, "tags: a quote is not closed.")
    terms.append(current)
    return [t.strip() for t in terms if t.strip()]


def _with_tags(req: Request, state: SandboxState, messages: list[EmailMessage]) -> list[Any]:
    raw = req.query.get("tags")
    terms = _tag_terms(raw) if raw is not None else []
    if not terms:
        return messages
    req.details["tags"] = terms

    def matches(tag: Tag) -> bool:
        return any(term == tag.name or term == str(tag.id) for term in terms)

    wanted = {t.id for t in state.tags.values() if matches(t)}
    return [m for m in messages if wanted.intersection(m.tag_ids)]


# --- messages ----------------------------------------------------------------------------------


@_endpoint("POST", LIST + "/Email", "email_create")
def create_message(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist = _list(req, state, account)
    body = _fields(req)
    _subject(body)  # before an id is taken
    message = EmailMessage(0, account.id, mlist.id, "")
    _apply(message, body, state)
    message.id = state.take_id("message")
    state.messages[message.id] = message
    req.details.update(message_id=message.id, subject=message.subject)
    return Reply(200, details_view(state, message))


@_endpoint("GET", LIST + "/Emails", "emails_list")
def read_messages(req: Request, state: SandboxState, account: Account) -> Reply:
    messages = _with_tags(req, state, _newest_first(state, _list(req, state, account)))
    return paged(req, state, messages, _item_view(state), EMAIL_ITEM)


@_endpoint("GET", LIST + "/Online/Emails", "emails_published")
def read_published(req: Request, state: SandboxState, account: Account) -> Reply:
    messages = [m for m in _newest_first(state, _list(req, state, account)) if m.published]
    messages = _with_tags(req, state, messages)
    return paged(req, state, messages, _published_view(state), PUBLISHED_ITEM)


@_endpoint("GET", LIST + "/Archived/Emails", "emails_archived")
def read_archived(req: Request, state: SandboxState, account: Account) -> Reply:
    messages = [m for m in _newest_first(state, _list(req, state, account)) if m.archived]
    messages = _with_tags(req, state, messages)
    return paged(req, state, messages, _item_view(state), EMAIL_ITEM)


@_endpoint("GET", MESSAGE, "email_details")
def message_details(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, details_view(state, _message(req, state, account)))


@_endpoint("PUT", MESSAGE, "email_update")
def update_message(req: Request, state: SandboxState, account: Account) -> Reply:
    message = _message(req, state, account)
    body = _fields(req)
    staged = EmailMessage(message.id, message.account_id, message.list_id, message.subject)
    staged.fields, staged.tag_ids = list(message.fields), list(message.tag_ids)
    _apply(staged, body, state)  # all checks pass before anything changes
    for name in (
        "subject", "content", "head", "body", "notes", "embed", "is_confirmation", "fields",
        "use_dynamic_field", "tag_ids", "tracking",
    ):  # fmt: skip
        setattr(message, name, getattr(staged, name))
    return Reply(200, details_view(state, message))


@_endpoint("PUT", MESSAGE + "/DynamicFields", "email_dynamic_fields")
def dynamic_fields(req: Request, state: SandboxState, account: Account) -> Reply:
    message = _message(req, state, account)
    value = _fields(req).get("usedynamicfield")
    if not isinstance(value, bool):
        raise ConsoleError(400, "UseDynamicField must be true or false.")
    message.use_dynamic_field = value
    req.details["use_dynamic_field"] = value
    return Reply(200, details_view(state, message))


@_endpoint("POST", MESSAGE, "email_copy")
def copy_message(req: Request, state: SandboxState, account: Account) -> Reply:
    source = _message(req, state, account)
    body = _fields(req) if req.body.strip() else {}
    subject = source.subject if body.get("subject") is None else _subject(body)
    notes = source.notes if body.get("notes") is None else _text(body, "Notes")
    copy = EmailMessage(
        state.take_id("message"),
        account.id,
        source.list_id,
        subject,
        source.content,
        source.head,
        source.body,
        source.embed,
        source.is_confirmation,
        notes,
        [dict(f) for f in source.fields],
        source.use_dynamic_field,
        list(source.tag_ids),
        dict(source.tracking),
        dict(source.attachments),  # Attachments are never changed in place: shared safely
    )
    state.messages[copy.id] = copy
    req.details["copy_id"] = copy.id
    return Reply(200, details_view(state, copy))


@_endpoint("PUT", MESSAGE + "/Online/Visibility", "email_visibility")
def visibility(req: Request, state: SandboxState, account: Account) -> Reply:
    message = _message(req, state, account)
    try:
        value = req.json()
    except ValueError:
        raise ConsoleError(400, "The request body is not valid JSON.") from None
    if not isinstance(value, bool):
        raise ConsoleError(400, "The request body must be true or false.")
    message.published = value
    req.details["published"] = value
    return Reply(200)


# --- tags --------------------------------------------------------------------------------------


def _tag_name(value: Any, state: SandboxState, mlist: MailingList, tag_id: int = 0) -> str:
    if not isinstance(value, str):
        raise ConsoleError(400, "The tag name must be a string.")
    name = value.strip()
    if not name:
        raise ConsoleError(400, "The tag name is mandatory.")
    if len(name) > TAG_NAME_MAX:
        raise ConsoleError(400, f"The tag name must be at most {TAG_NAME_MAX} characters.")
    for tag in state.tags.values():
        if tag.list_id == mlist.id and tag.id != tag_id and tag.name.lower() == name.lower():
            raise ConsoleError(400, f"List {mlist.id} already has a tag named {tag.name!r}.")
    return name


@_endpoint("GET", LIST + "/Tags", "tags_list")
def read_tags(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist = _list(req, state, account)
    tags = sorted((t for t in state.tags.values() if t.list_id == mlist.id), key=lambda t: -t.id)
    return paged(req, state, tags, tag_view, TAG_ITEM)


@_endpoint("POST", LIST + "/Tag", "tag_create")
def create_tag(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist = _list(req, state, account)
    try:
        value = req.json()
    except ValueError:
        raise ConsoleError(400, "The request body is not valid JSON.") from None
    tag = Tag(0, mlist.id, _tag_name(value, state, mlist))
    tag.id = state.take_id("tag")
    state.tags[tag.id] = tag
    req.details.update(tag_id=tag.id, name=tag.name)
    return Reply(200, tag_view(tag))


@_endpoint("PUT", LIST + r"/Tag/(?P<tag_id>\d+)", "tag_update")
def update_tag(req: Request, state: SandboxState, account: Account) -> Reply:
    tag = _tag(req, state, account)
    body = _fields(req)
    if body.get("id") is not None and body["id"] != tag.id:
        raise ConsoleError(400, f"Id {body['id']!r} does not match the tag of the URL ({tag.id}).")
    enabled = body.get("enabled", tag.enabled)
    if not isinstance(enabled, bool):
        raise ConsoleError(400, "Enabled must be true or false.")
    tag.name = _tag_name(body.get("name"), state, state.lists[tag.list_id], tag.id)
    tag.enabled = enabled
    return Reply(200, tag_view(tag))


@_endpoint("DELETE", LIST + r"/Tag/(?P<tag_id>\d+)", "tag_delete")
def delete_tag(req: Request, state: SandboxState, account: Account) -> Reply:
    tag = _tag(req, state, account)
    del state.tags[tag.id]
    tagged = [m for m in state.messages.values() if tag.id in m.tag_ids]
    for message in tagged:
        message.tag_ids.remove(tag.id)
    req.details["messages_untagged"] = len(tagged)
    return Reply(200)


# --- attachments -------------------------------------------------------------------------------


def _slot(req: Request) -> int:
    slot = int(req.params["slot"])
    req.details["slot"] = slot
    if slot not in ATTACHMENT_SLOTS:
        raise ConsoleError(400, f"Slot must be 1 to {ATTACHMENT_SLOTS[-1]}: {slot}.")
    return slot


def _decoded(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise ConsoleError(400, "Base64Data is mandatory.")
    if "\r" in value or "\n" in value:
        raise ConsoleError(400, "Base64Data must not contain CR or LF characters.")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if base64.b64encode(data).decode() != value:  # stray padding or bits too
        raise ConsoleError(400, "Base64Data is not valid base64.")
    if not data:
        raise ConsoleError(400, "Base64Data is empty.")
    return data


@_endpoint("GET", MESSAGE + "/Attachment", "attachments_list")
def read_attachments(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, _attachments(_message(req, state, account)))


@_endpoint("POST", MESSAGE + r"/Attachment/(?P<slot>-?\d+)", "attachment_add")
def add_attachment(req: Request, state: SandboxState, account: Account) -> Reply:
    message, slot = _message(req, state, account), _slot(req)
    body = _fields(req)
    for key, wanted in (("slot", slot), ("idlist", message.list_id), ("idmessage", message.id)):
        if body.get(key) is not None and body[key] != wanted:
            raise ConsoleError(400, f"{key} {body[key]!r} does not match the URL ({wanted}).")
    name = _text(body, "Name").strip()
    if not name:
        raise ConsoleError(400, "Name is mandatory.")
    data = _decoded(body.get("base64data"))
    req.details.update(name=name, size=len(data), replaced=slot in message.attachments)
    message.attachments[slot] = Attachment(slot, name, data)
    return Reply(200, _attachments(message))


@_endpoint("DELETE", MESSAGE + r"/Attachment/(?P<slot>-?\d+)", "attachment_delete")
def delete_attachment(req: Request, state: SandboxState, account: Account) -> Reply:
    message, slot = _message(req, state, account), _slot(req)
    req.details["removed"] = message.attachments.pop(slot, None) is not None
    return Reply(200, _attachments(message))
