"""The enqueue API applications import. Every function validates at the door, commits the
job to the ledger, publishes its id, and returns that id. In a unit of work (the Flask
extension's methods, a Django atomic block: see ``worker.engine.submit``) the job is written
in the application's transaction instead, and published once that commits.

    from producers import send_sms
    job_id = send_sms(list_id=1, recipient="+393350000001", content="Hi [Name]",
                      dynamic_fields={"Name": "Ada"}, idempotency_key="welcome-42")
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from kombu.utils.url import maybe_sanitize_url
from pydantic import ValidationError

from producers.errors import (
    BrokerUnavailableWarning,
    ContentTruncatedWarning,
    InvalidJob,
    NotGsmWarning,
)
from worker.app import check_broker
from worker.engine.clients import variable
from worker.engine.kind import FieldError, Payload
from worker.engine.submit import Item, submit
from worker.errors import ConfigurationError
from worker.jobs import list_credentials
from worker.jobs.fields import has_control
from worker.jobs.list_secret import ManageListSecret, Operation
from worker.jobs.registry import KINDS
from worker.jobs.sms import SendSms
from worker.ledger.store import IdempotencyConflict
from worker.mailup.sms import SMS_MAX_CHARS, outside_gsm
from worker.publish import publish
from worker.settings import DEFAULT_ACCOUNT, get_settings

P = TypeVar("P", bound=Payload)
# A job is a request, not a store: bytes go beside it (``extras``), lists to imports.
MAX_PAYLOAD_BYTES = 512 * 2**10


def send_sms(
    *,
    list_id: int,
    recipient: str,
    content: str | None = None,
    template_id: int | None = None,
    campaign_code: str | None = None,
    dynamic_fields: dict[str, str] | None = None,
    is_unicode: bool = False,
    sender: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    idempotency_key: str | None = None,
) -> str:
    """Queue one transactional SMS. Content or template_id, not both.

    Warns (``ContentTruncatedWarning``) when the text, merge tags filled, is longer than
    MailUp sends, and (``NotGsmWarning``) when it has characters an SMS without
    ``is_unicode`` cannot carry.

    Raises:
        InvalidJob: naming the field (recipient without international prefix, sender not
            1–11 letters/digits, both or neither of content and template_id, content over
            1,000 characters, …).
    """
    payload = validate(
        SendSms,
        list_id=list_id,
        recipient=recipient,
        content=content,
        template_id=template_id,
        campaign_code=campaign_code,
        dynamic_fields=dynamic_fields or {},
        is_unicode=is_unicode,
        sender=sender,
    )
    text = payload.text or ""
    if payload.truncated:
        warnings.warn(
            f"the text is {len(text)} characters with its merge tags filled: MailUp sends "
            f"the first {SMS_MAX_CHARS}",
            ContentTruncatedWarning,
            stacklevel=2,
        )
    if not is_unicode and (odd := outside_gsm(text)):
        warnings.warn(
            f"{odd!r} cannot be sent in an SMS without is_unicode: they would be lost or "
            "replaced on the phone (set is_unicode, which fits fewer characters per SMS)",
            NotGsmWarning,
            stacklevel=2,
        )
    return enqueue("send_sms", payload, account, priority, idempotency_key)


def manage_list_secret(
    operation: Operation,
    *,
    list_id: int,
    list_guid: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    idempotency_key: str | None = None,
) -> str:
    """Queue a ListSecret operation: "read", "create", "delete" or "rotate".

    The secret itself never passes through here: the worker stores it, encrypted.
    """
    payload = validate(ManageListSecret, operation=operation, list_id=list_id, list_guid=list_guid)
    if operation != "read" and payload.list_guid is None and not _guid_obtainable(account, list_id):
        raise InvalidJob(
            {
                "list_guid": f"is required to {operation} a ListSecret of this list: the ledger "
                f"does not know it, and without {variable(account, 'client_id')} the worker "
                "cannot read it from MailUp"
            }
        )
    return enqueue("list_secret", payload, account, priority, idempotency_key)


def enqueue(
    kind: str,
    payload: Mapping[str, Any] | Payload,
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    idempotency_key: str | None = None,
    *,
    extras: Any = None,
) -> str:
    """Queue a job of any registered kind; the specific functions are friendlier.

    ``payload``: the kind's fields, or its payload model (the producers pass the one they
    checked). ``extras`` goes to the kind's ``stage`` with the new job (e.g. attachment
    bytes).
    """
    settings = get_settings()
    check_broker(settings)  # refused before anything is written, not after the commit
    if kind not in KINDS:
        raise InvalidJob({"kind": f"unknown job kind; known: {', '.join(sorted(KINDS))}"})
    model = KINDS[kind].payload
    data = payload if type(payload) is model else validate(model, **dict(payload))
    _within_size(data)
    try:
        settings.account(account)
    except ConfigurationError as exc:
        raise InvalidJob({"account": str(exc)}) from None
    if not 0 <= priority <= 9:
        raise InvalidJob({"priority": "must be from 0 (most urgent) to 9"})
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise InvalidJob({"idempotency_key": "must be 1 to 200 characters"})
    if idempotency_key is not None and has_control(idempotency_key):
        raise InvalidJob({"idempotency_key": "must not contain a control character"})
    collected = _collecting.get()
    if collected is not None:  # a bulk submission: checked here, written with the rest
        collected.append(Item(KINDS[kind], data, account, priority, idempotency_key, extras))
        return ""
    try:
        job_id, published = submit(
            settings,
            KINDS[kind],
            data,
            account=account,
            priority=priority,
            idempotency_key=idempotency_key,
            publish=publish,
            extras=extras,
        )
    except IdempotencyConflict as exc:
        raise InvalidJob({"idempotency_key": str(exc)}) from None
    if not published:
        warnings.warn(
            f"the broker at {maybe_sanitize_url(settings.broker_url)} is unreachable: job "
            f"{job_id} is accepted and the sweeper will publish it",
            BrokerUnavailableWarning,
            stacklevel=2,
        )
    return job_id


_collecting: ContextVar[list[Item] | None] = ContextVar("mailup_jobs_collecting", default=None)


@contextmanager
def collecting() -> Iterator[list[Item]]:
    """Inside, ``enqueue`` (and every producer built on it) checks its job and adds it to
    the list it yields instead of submitting it (see ``producers.bulk``)."""
    items: list[Item] = []
    token = _collecting.set(items)
    try:
        yield items
    finally:
        _collecting.reset(token)


def validate(model: type[P], **fields: Any) -> P:
    """The payload, or InvalidJob naming each bad field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, FieldError):
                errors.setdefault(cause.field, cause.message)
                continue
            name = ".".join(str(part) for part in error["loc"]) or "payload"
            errors.setdefault(name, error["msg"].removeprefix("Value error, "))
        raise InvalidJob(errors) from None


def _within_size(payload: Payload) -> None:
    """Refuses a payload over MAX_PAYLOAD_BYTES of JSON, naming its largest field."""
    size = len(payload.model_dump_json().encode())
    if size > MAX_PAYLOAD_BYTES:
        fields = payload.model_dump(mode="json")
        largest = max(fields, key=lambda name: len(json.dumps(fields[name])))
        raise InvalidJob(
            {largest: f"makes the job {size} bytes of JSON; at most {MAX_PAYLOAD_BYTES}"}
        )


def _guid_obtainable(account: str, list_id: int) -> bool:
    """Whether the worker will find the list's GUID: in the ledger, or from MailUp's Console."""
    settings = get_settings()
    try:
        if settings.account(account).client_id:
            return True
    except ConfigurationError:
        return True  # not this check's concern: enqueue() refuses the unknown account
    return list_credentials.known_guid(settings, account, list_id) is not None
