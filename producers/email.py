"""Enqueueing transactional email (SendMessage, SendTemplate).

from producers import Attachment, send_email
job_id = send_email(
    sender="Shop <shop@example.com>", to=["ada@example.com"], subject="Your order",
    html="<p>Thanks!</p><img src='cid:logo.png'>", text="Thanks!",
    embedded_images=[Attachment("logo.png", logo_bytes)],
    campaign_code="orders", idempotency_key="order-42",
)
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob, MergeTagCaseWarning
from worker.jobs.email import MAX_TOTAL_BYTES, Email, Part, PartBytes, SendMessage, SendTemplate
from worker.settings import DEFAULT_ACCOUNT

AddressLike = str | tuple[str, str] | dict[str, str]


@dataclass(frozen=True)
class Attachment:
    """A file to attach or embed. An embedded image's ContentId defaults to its file name,
    so the HTML refers to it as ``cid:NAME``."""

    filename: str
    content: bytes = field(repr=False)
    content_id: str | None = None


# An attachment given as the path of a file, read here.
Attachable = Attachment | os.PathLike[str]


def send_email(
    *,
    sender: AddressLike,
    subject: str,
    to: Iterable[AddressLike] = (),
    cc: Iterable[AddressLike] = (),
    bcc: Iterable[AddressLike] = (),
    html: str | None = None,
    text: str | None = None,
    **options: Any,
) -> str:
    """Queue one email (SendMessage). Options: see ``_queue``."""
    return _queue(
        "send_message",
        SendMessage,
        {"html": {"body": html} if html is not None else None, "text": text},
        sender=sender,
        subject=subject,
        to=to,
        cc=cc,
        bcc=bcc,
        **options,
    )


def send_email_template(
    *,
    template_id: int,
    sender: AddressLike,
    subject: str = "",
    to: Iterable[AddressLike] = (),
    cc: Iterable[AddressLike] = (),
    bcc: Iterable[AddressLike] = (),
    **options: Any,
) -> str:
    """Queue one email from a MailUp template (SendTemplate); merge tags from dynamic_fields."""
    fields = options.get("dynamic_fields") or {}
    capitalised = sorted(name for name in fields if name != name.lower())
    if capitalised:
        warnings.warn(
            f"MailUp replaces only lowercase merge tags in templates: {capitalised} will stay "
            "as written unless the template uses them in lowercase",
            MergeTagCaseWarning,
            stacklevel=2,
        )
    return _queue(
        "send_template",
        SendTemplate,
        {"template_id": template_id},
        sender=sender,
        subject=subject,
        to=to,
        cc=cc,
        bcc=bcc,
        **options,
    )


def _queue(
    kind: str,
    model: type[Email],
    content: dict[str, Any],
    *,
    sender: AddressLike,
    subject: str,
    to: Iterable[AddressLike],
    cc: Iterable[AddressLike],
    bcc: Iterable[AddressLike],
    reply_to: str | None = None,
    attachments: Sequence[Attachable] = (),
    embedded_images: Sequence[Attachable] = (),
    extended_headers: dict[str, str] | None = None,
    campaign_code: str | None = None,
    campaign_name: str | None = None,
    dynamic_fields: dict[str, str] | None = None,
    campaign: dict[str, Any] | None = None,
    charset: str = "utf-8",
    account: str = DEFAULT_ACCOUNT,
    priority: int = 5,
    idempotency_key: str | None = None,
) -> str:
    """``campaign`` takes the other XSmtpAPI options: header, footer, click_tracking,
    view_tracking, priority (1–5), schedule (a timezone-aware datetime), campaign_report,
    skip_dynamic_fields. ``attachments`` and ``embedded_images`` take an ``Attachment``
    or the path of a regular file."""
    attached = [_attachment(a, "attachments") for a in attachments]
    xsmtp = {
        **(campaign or {}),
        "campaign_code": campaign_code,
        "campaign_name": campaign_name,
        "dynamic_fields": dynamic_fields or {},
    }
    embedded = [
        Attachment(p.filename, p.content, p.content_id or p.filename)
        for p in (_attachment(e, "embedded_images") for e in embedded_images)
    ]
    payload = validate(
        model,
        **content,
        subject=subject,
        sender=_address(sender),
        to=[_address(a) for a in to],
        cc=[_address(a) for a in cc],
        bcc=[_address(a) for a in bcc],
        reply_to=reply_to,
        charset=charset,
        extended_headers=extended_headers or {},
        attachments=[Part.of(p.filename, p.content, p.content_id) for p in attached],
        embedded_images=[Part.of(p.filename, p.content, p.content_id) for p in embedded],
        campaign=xsmtp if any(v for v in xsmtp.values()) else None,
    )
    parts: PartBytes = {
        "attachment": [p.content for p in attached],
        "embedded": [p.content for p in embedded],
    }
    return enqueue(kind, payload, account, priority, idempotency_key, extras=parts)


def _address(value: AddressLike) -> dict[str, str] | str:
    """A string is parsed by the payload, strictly: exactly one address."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, tuple):
        name, email = value
        return {"name": name, "email": email}
    return value


def _attachment(item: Attachable, field: str) -> Attachment:
    """An attachment, or the file at a path: a regular file within the size limit, checked
    before a byte is read (a FIFO would block, /dev/zero never end)."""
    if isinstance(item, Attachment):
        return item
    path = Path(item)
    too_big = InvalidJob({field: f"{path} is over the limit of {MAX_TOTAL_BYTES} bytes"})
    try:
        # Non-blocking: a FIFO opens without waiting for a writer, and is refused below.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise InvalidJob({field: f"{path} is not a regular file"})
            if status.st_size > MAX_TOTAL_BYTES:
                raise too_big
            content = file.read(MAX_TOTAL_BYTES + 1)  # bounded: it may have grown since
    except OSError as exc:
        raise InvalidJob({field: f"{path}: {exc.strerror}"}) from None
    if len(content) > MAX_TOTAL_BYTES:
        raise too_big
    return Attachment(path.name, content)
