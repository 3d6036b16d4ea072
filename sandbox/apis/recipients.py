"""Console API recipients and imports (README †: MailUp's real URLs, missing from the pages), on
the ``CONSOLE`` family: add one recipient to a list or group, force a subscription or end it,
read a list's recipients by status and a group's members, and import many asynchronously.

A recipient belongs to the account (one per email address, any case) and has a status on each
list it joined: "subscribed", "unsubscribed" or "pending" (awaiting the confirmation email of
``ConfirmEmail=true``). Joining a group joins the group's list too (doc 004). An import answers
its id at once and is applied when it completes, ``state.import_delay`` seconds (1.0) after the
request; it completes lazily, on the first Console call (or control read) after that. Until then
``GET Console/Import/{id}`` answers Completed false and every counter 0. The import detail,
``GET Console/Imports/{id}``, has the shape of MailUp's server-generated schema: ``IdImport``,
``IdList``, ``StartDate``, ``EndDate`` (empty until completed), ``StatusCode`` (2 running, 3
completed: MailUp's import process codes) and ``Rows`` (``Total``, ``Valid: {EmailNew,
EmailUpdate, Total}``, ``Invalid: {Total}``).

Where the docs are silent: the body of an add is ``{Email, Name, MobileNumber, MobilePrefix,
Fields: [{Id, Value}]}``; Email is mandatory (no SMS-only recipients); a field given replaces the
stored one, a field left out keeps it, Fields are merged by Id. MobileNumber must be digits and
MobilePrefix like "39", "+39" or "0039". Adding or importing never resubscribes an unsubscribed
recipient (the doc sends that to "Update subscription", ``Subscribe/{id}``, which forces it), and
ConfirmEmail never demotes a subscribed one to pending; the journal says ``confirm_email_sent``
when the add leaves the recipient pending. ``importType=asOptout`` unsubscribes every valid item
(creating the unknown ones unsubscribed) and leaves group memberships alone; it wins over
ConfirmEmail. An import item that is not an object, or whose fields have the wrong JSON type,
refuses the whole request (400, as a deserializer would); an invalid email or mobile number only
skips the item (NotValidRecipients). ValidRecipients = ImportedRecipients = CreatedRecipients +
UpdatedRecipients; an address twice in one import counts once created, once updated. Subscribe
and Unsubscribe answer 200 with an empty body; unsubscribing a recipient that never joined the
list, or leaving a group it is not in, is a 404. A group's Recipients are all its members, whatever
their status. An import of a deleted list goes with it; one of a deleted group still subscribes
to the list. Paged reads answer the newest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.apis.console import (
    ConsoleError,
    ConsoleHandler,
    _date,
    _endpoint,
    _fields,
    _list,
    paged,
)
from sandbox.http import Reply, Request
from sandbox.state import (
    PENDING,
    SUBSCRIPTION_STATUSES,
    Account,
    Group,
    Import,
    MailingList,
    Recipient,
    RecipientData,
    SandboxState,
    recipient_problem,
)

RECIPIENT_ITEM = ("idRecipient", "Email", "Name", "MobileNumber", "MobilePrefix", "Fields")
IMPORT_ITEM = (
    "idImport", "Completed", "UpdatedRecipients", "ValidRecipients", "CreatedRecipients",
    "ImportedRecipients", "NotValidRecipients",
)  # fmt: skip
LIST = r"/Console/List/(?P<list_id>\d+)"
GROUP = r"/Console/Group/(?P<group_id>\d+)"
RECIPIENT = r"(?P<recipient_id>\d+)"
RUNNING, COMPLETED = 2, 3  # an import detail's StatusCode


def recipient_view(recipient: Recipient) -> dict[str, Any]:
    return {
        "idRecipient": recipient.id,
        "Email": recipient.email,
        "Name": recipient.name,
        "MobileNumber": recipient.mobile_number,
        "MobilePrefix": recipient.mobile_prefix,
        "Fields": [{"Id": k, "Value": v} for k, v in sorted(recipient.fields.items())],
    }


def import_view(imp: Import) -> dict[str, Any]:
    counts = imp.counts
    return {
        "idImport": imp.id,
        "Completed": imp.completed is not None,
        "UpdatedRecipients": counts.updated,
        "ValidRecipients": counts.valid,
        "CreatedRecipients": counts.created,
        "ImportedRecipients": counts.imported,
        "NotValidRecipients": counts.not_valid,
    }


def import_detail_view(imp: Import) -> dict[str, Any]:
    counts = imp.counts
    return {
        "EndDate": _date(imp.completed),
        "IdImport": imp.id,
        "IdList": imp.list_id,
        "Rows": {
            "Invalid": {"Total": counts.not_valid},
            "Total": counts.valid + counts.not_valid,
            "Valid": {
                "EmailNew": counts.created,
                "EmailUpdate": counts.updated,
                "Total": counts.valid,
            },
        },
        "StartDate": _date(imp.created),
        "StatusCode": RUNNING if imp.completed is None else COMPLETED,
    }


# --- request parsing ---------------------------------------------------------------------------


def _optional_text(body: dict[str, Any], key: str, label: str) -> str | None:
    value = body.get(key.lower())
    if value is not None and not isinstance(value, str):
        raise ConsoleError(400, f"{label}{key} must be a string.")
    return None if value is None else value.strip()


def _custom_fields(value: Any, label: str) -> tuple[tuple[int, str], ...]:
    """Fields ``[{Id, Value}]`` as (id, value) pairs."""
    if value is None:
        return ()
    problem = ConsoleError(400, f"{label}Fields must be a list of {{Id, Value}} objects.")
    if not isinstance(value, list):
        raise problem
    pairs = []
    for item in value:
        entry = {str(k).lower(): v for k, v in item.items()} if isinstance(item, dict) else {}
        field_id, text = entry.get("id"), entry.get("value")
        if type(field_id) is not int or field_id < 1 or not isinstance(text, str | None):
            raise problem
        pairs.append((field_id, text or ""))
    return tuple(pairs)


def _recipient_data(item: Any, label: str = "") -> RecipientData:
    """A recipient object of a request; ``label`` prefixes errors ("Recipient 3: ")."""
    if not isinstance(item, dict):
        raise ConsoleError(400, f"{label}a recipient must be a JSON object.")
    body = {str(k).lower(): v for k, v in item.items()}
    return RecipientData(
        email=_optional_text(body, "Email", label) or "",
        name=_optional_text(body, "Name", label),
        mobile_number=_optional_text(body, "MobileNumber", label),
        mobile_prefix=_optional_text(body, "MobilePrefix", label),
        fields=_custom_fields(body.get("fields"), label),
    )


def _flag_param(req: Request, name: str) -> bool:
    raw = req.query.get(name.lower())
    if raw is None:
        return False
    if raw.strip().lower() not in ("true", "false"):
        raise ConsoleError(400, f"{name} must be true or false.")
    return raw.strip().lower() == "true"


def _import_mode(req: Request) -> str:
    """How the import moves statuses: importType=asOptout, else ConfirmEmail decides."""
    confirm, import_type = _flag_param(req, "ConfirmEmail"), req.query.get("importtype")
    if import_type is not None and import_type.strip().lower() != "asoptout":
        raise ConsoleError(400, f"Unknown importType: {import_type!r}.")
    return "optout" if import_type is not None else "confirm" if confirm else "subscribe"


# --- lookups -----------------------------------------------------------------------------------


def _group(req: Request, state: SandboxState, account: Account) -> tuple[Group, MailingList]:
    """The URL's group and its list."""
    group_id = int(req.params["group_id"])
    req.details["group_id"] = group_id
    group = state.groups.get(group_id)
    mlist = None if group is None else state.lists.get(group.list_id)
    if group is None or mlist is None or mlist.account_id != account.id:
        raise ConsoleError(404, f"Group {group_id} not found.")
    req.details["list_id"] = mlist.id
    return group, mlist


def _recipient(req: Request, state: SandboxState, account: Account) -> Recipient:
    recipient_id = int(req.params["recipient_id"])
    req.details["recipient_id"] = recipient_id
    recipient = state.recipients.get(recipient_id)
    if recipient is None or recipient.account_id != account.id:
        raise ConsoleError(404, f"Recipient {recipient_id} not found.")
    return recipient


def _newest_first(state: SandboxState, ids: Iterable[int]) -> list[Recipient]:
    return [state.recipients[i] for i in sorted(ids, reverse=True)]


# --- one recipient -----------------------------------------------------------------------------


def _add(req: Request, state: SandboxState, mlist: MailingList, group: Group | None) -> Reply:
    """Add or update one recipient; the bare recipient id."""
    data = _recipient_data(_fields(req))
    confirm = _flag_param(req, "ConfirmEmail")
    req.details.update(email=data.email, confirm_email=confirm)
    problem = recipient_problem(data)
    if problem:
        raise ConsoleError(400, problem)
    mode = "confirm" if confirm else "subscribe"
    recipient, created, status = state.add_recipient(mlist, data, mode, group)
    req.details.update(recipient_id=recipient.id, created=created, status=status)
    req.details["confirm_email_sent"] = status == PENDING
    return Reply(200, recipient.id)


@_endpoint("POST", LIST + "/Recipient", "recipient_add")
def add_to_list(req: Request, state: SandboxState, account: Account) -> Reply:
    return _add(req, state, _list(req, state, account), None)


@_endpoint("POST", GROUP + "/Recipient", "group_recipient_add")
def add_to_group(req: Request, state: SandboxState, account: Account) -> Reply:
    group, mlist = _group(req, state, account)
    return _add(req, state, mlist, group)


@_endpoint("POST", LIST + "/Subscribe/" + RECIPIENT, "list_subscribe")
def subscribe(req: Request, state: SandboxState, account: Account) -> Reply:
    """Force the subscription, whatever the status (the doc's "Update subscription")."""
    mlist, recipient = _list(req, state, account), _recipient(req, state, account)
    req.details["previous_status"] = mlist.subscriptions.get(recipient.id)
    req.details["status"] = state.join(mlist, recipient.id, "force")
    return Reply(200)


@_endpoint("DELETE", LIST + "/Unsubscribe/" + RECIPIENT, "list_unsubscribe")
def unsubscribe(req: Request, state: SandboxState, account: Account) -> Reply:
    mlist, recipient = _list(req, state, account), _recipient(req, state, account)
    previous = mlist.subscriptions.get(recipient.id)
    req.details["previous_status"] = previous
    if previous is None:
        raise ConsoleError(404, f"Recipient {recipient.id} is not in list {mlist.id}.")
    req.details["status"] = state.join(mlist, recipient.id, "optout")
    return Reply(200)


@_endpoint("POST", GROUP + "/Subscribe/" + RECIPIENT, "group_subscribe")
def join_group(req: Request, state: SandboxState, account: Account) -> Reply:
    """Into the group, and a forced subscription to its list (doc 004)."""
    (group, mlist), recipient = _group(req, state, account), _recipient(req, state, account)
    group.members.add(recipient.id)
    req.details["status"] = state.join(mlist, recipient.id, "force")
    return Reply(200)


@_endpoint("DELETE", GROUP + "/Unsubscribe/" + RECIPIENT, "group_unsubscribe")
def leave_group(req: Request, state: SandboxState, account: Account) -> Reply:
    """Out of the group; the list subscription stays."""
    (group, _), recipient = _group(req, state, account), _recipient(req, state, account)
    if recipient.id not in group.members:
        raise ConsoleError(404, f"Recipient {recipient.id} is not in group {group.id}.")
    group.members.discard(recipient.id)
    return Reply(200)


# --- reads -------------------------------------------------------------------------------------


def _status_reader(status: str) -> ConsoleHandler:
    """The read of a list's recipients in ``status``."""

    def read(req: Request, state: SandboxState, account: Account) -> Reply:
        mlist = _list(req, state, account)
        ids = [i for i, s in mlist.subscriptions.items() if s == status]
        return paged(req, state, _newest_first(state, ids), recipient_view, RECIPIENT_ITEM)

    return read


for _status in SUBSCRIPTION_STATUSES:
    _endpoint("GET", f"{LIST}/Recipients/{_status}", f"list_recipients_{_status}")(
        _status_reader(_status)
    )


@_endpoint("GET", GROUP + "/Recipients", "group_recipients_list")
def group_recipients(req: Request, state: SandboxState, account: Account) -> Reply:
    group, _ = _group(req, state, account)
    members = _newest_first(state, group.members)
    return paged(req, state, members, recipient_view, RECIPIENT_ITEM)


# --- imports -----------------------------------------------------------------------------------


def _import(req: Request, state: SandboxState, mlist: MailingList, group: Group | None) -> Reply:
    """Accept the batch now, apply it on completion; the bare import id."""
    try:
        body = req.json()
    except ValueError:
        raise ConsoleError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, list):
        raise ConsoleError(400, "The request body must be a JSON array of recipients.")
    req.details.update(list_id=mlist.id, items=len(body))
    mode = _import_mode(req)
    items = [_recipient_data(item, f"Recipient {n}: ") for n, item in enumerate(body)]
    imp = state.add_import(mlist, group, items, mode)
    req.details.update(import_id=imp.id, mode=mode)
    return Reply(200, imp.id)


@_endpoint("POST", LIST + "/Recipients", "recipients_import")
def import_to_list(req: Request, state: SandboxState, account: Account) -> Reply:
    return _import(req, state, _list(req, state, account), None)


@_endpoint("POST", GROUP + "/Recipients", "group_recipients_import")
def import_to_group(req: Request, state: SandboxState, account: Account) -> Reply:
    group, mlist = _group(req, state, account)
    return _import(req, state, mlist, group)


def _account_import(req: Request, state: SandboxState, account: Account) -> Import:
    import_id = int(req.params["import_id"])
    req.details["import_id"] = import_id
    imp = state.imports.get(import_id)
    if imp is None or imp.account_id != account.id:
        raise ConsoleError(404, f"Import {import_id} not found.")
    req.details["completed"] = imp.completed is not None
    return imp


@_endpoint("GET", r"/Console/Import/(?P<import_id>\d+)", "import_status")
def import_status(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, import_view(_account_import(req, state, account)))


@_endpoint("GET", r"/Console/Imports/(?P<import_id>\d+)", "import_detail")
def import_detail(req: Request, state: SandboxState, account: Account) -> Reply:
    return Reply(200, import_detail_view(_account_import(req, state, account)))


@_endpoint("GET", r"/Console/Imports", "imports_list")
def read_imports(req: Request, state: SandboxState, account: Account) -> Reply:
    mine = [i for i in state.imports.values() if i.account_id == account.id]
    imports = sorted(mine, key=lambda i: i.id, reverse=True)
    return paged(req, state, imports, import_view, IMPORT_ITEM)
