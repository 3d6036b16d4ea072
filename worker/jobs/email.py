"""Job kinds ``send_message`` and ``send_template``: one transactional email (SendMessage or
SendTemplate) to its To / Cc / Bcc recipients.

Attachment and embedded-image bytes are staged beside the job (``job_parts``) with its
recipients (``email_recipients``); the payload holds only their names, sizes and hashes.
The SMTP+ user comes from the account's settings or, after a password reset done here,
from the ledger. The ``email`` channel pauses when MailUp says the account or its SMTP+
user cannot send; beat asks ListUserInfo when it may send again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, model_validator
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session

from worker.engine.clients import with_smtp_user
from worker.engine.kind import (
    Addressed,
    Channel,
    FieldError,
    JobContext,
    JobKind,
    Payload,
    ProbeVerdict,
    Result,
    hash_missing,
    in_period,
)
from worker.jobs import smtp_status
from worker.jobs.fields import (
    DisplayName,
    DynamicFields,
    EmailAddress,
    HeaderText,
    MailUpId,
    one_line,
)
from worker.ledger.crypto import recipient_hasher
from worker.ledger.db import connection
from worker.ledger.models import EmailRecipient, Job, JobPart, JobStatus, table, utcnow
from worker.ledger.store import Statement
from worker.mailup import transactional as mailup
from worker.mailup.errors import Api, Condition, MailUpError
from worker.mailup.transactional import TransactionalClient, UserInfo
from worker.settings import Settings, get_settings

MAX_TOTAL_BYTES = 10 * 2**20
# A BlockUntil already past (MailUp's clock behind ours) means "very soon", and a second
# past MailUp's date absorbs the clocks' difference.
BRIEF = timedelta(seconds=30)
CLOCK_GRACE = timedelta(seconds=1)


Filename = Annotated[
    HeaderText, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\]+$")
]
# Headers that say who sends and who receives: only the payload's own fields set those.
ADDRESSING = frozenset({"from", "sender", "to", "cc", "bcc", "reply-to"})
# MIME's charset names (RFC 2978).
Charset = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'+^_`{}~-]{1,40}$")]


# RFC 5322's field names: printable ASCII but the colon.
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")


def _header_name(value: str) -> str:
    # Named as the field, not by the key: the key is what is hostile (a line break, say).
    if not _HEADER_NAME.fullmatch(value):
        raise FieldError("extended_headers", f"{value!r} is not a header name")
    if value.lower() in ADDRESSING:
        raise FieldError("extended_headers", f"{value} is set by sender, to, cc, bcc, reply_to")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]


def mailbox(value: str) -> dict[str, str | None]:
    """``addr`` or ``Name <addr>`` (the name may be in double quotes) as its two parts.

    Anything else is refused, not guessed at: where a lenient parser (``parseaddr``) finds
    another address or drops one, this finds an error."""
    text = one_line(value).strip()  # the whole first: a stripped end may hold a CR
    if "<" not in text and ">" not in text:
        return {"name": None, "email": text}
    if text.count("<") != 1 or text.count(">") != 1 or not text.endswith(">"):
        raise ValueError('must be one address: "addr" or "Name <addr>"')
    name, _, email = text[:-1].partition("<")
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return {"name": name or None, "email": email}


class Address(Payload):
    email: EmailAddress
    name: DisplayName | None = Field(default=None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _parsed(cls, value: Any) -> Any:
        return mailbox(value) if isinstance(value, str) else value


class Part(Payload):
    """An attachment or embedded image; its bytes are in ``job_parts``."""

    filename: Filename
    content_id: HeaderText | None = Field(default=None, max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def of(cls, filename: str, body: bytes, content_id: str | None = None) -> dict[str, Any]:
        return {
            "filename": filename,
            "content_id": content_id,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }


class Html(Payload):
    body: str
    doc_type: str | None = None
    head: str | None = None
    body_tag: str | None = None


class Campaign(Payload):
    """XSmtpAPI: aggregation, tracking, priority, schedule and merge tags."""

    campaign_name: HeaderText | None = None
    campaign_code: HeaderText | None = None
    campaign_report: HeaderText | None = None
    header: bool | None = None
    footer: bool | None = None
    click_tracking: bool | None = None
    view_tracking: bool | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    # When MailUp should send it; a naive time is refused (whose clock would it be?).
    schedule: AwareDatetime | None = None
    skip_dynamic_fields: bool | None = None
    dynamic_fields: DynamicFields = Field(default_factory=dict)


class Email(Payload):
    """What SendMessage and SendTemplate share."""

    subject: HeaderText = Field(default="", max_length=998)
    sender: Address
    to: list[Address] = Field(default_factory=list)
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    reply_to: EmailAddress | None = None
    charset: Charset = "utf-8"
    extended_headers: dict[HeaderName, HeaderText] = Field(default_factory=dict)
    attachments: list[Part] = Field(default_factory=list)
    embedded_images: list[Part] = Field(default_factory=list)
    campaign: Campaign | None = None

    @model_validator(mode="after")
    def _sane(self) -> Self:
        if not (self.to or self.cc or self.bcc):
            raise FieldError("to", "at least one recipient is required (to, cc or bcc)")
        total = sum(p.size for p in (*self.attachments, *self.embedded_images))
        if total > MAX_TOTAL_BYTES:
            raise FieldError(
                "attachments", f"attachments total {total} bytes; at most {MAX_TOTAL_BYTES}"
            )
        return self

    def recipients(self) -> list[tuple[str, Address]]:
        return [(role, a) for role in ("to", "cc", "bcc") for a in getattr(self, role)]


class SendMessage(Email):
    html: Html | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _content(self) -> Self:
        if self.html is None and self.text is None:
            raise FieldError("html", "give html, text or both")
        return self


class SendTemplate(Email):
    template_id: MailUpId


# --- the rows beside the job ------------------------------------------------------------

# Part bytes by role ("attachment", "embedded"), in payload order.
PartBytes = dict[str, list[bytes]]
_ROLES = {"attachment": "attachments", "embedded": "embedded_images"}


_INSERT_RECIPIENT = insert(table(EmailRecipient))
_INSERT_PART = insert(table(JobPart))


def stage(job_id: str, payload: Email, parts: PartBytes | None) -> list[Statement]:
    """Recipients (for "what did we send to x@y", with the keyed hash that answers it after
    a purge; the producer's settings, staging is given no others) and the parts' bytes."""
    hashed = recipient_hasher(get_settings())
    rows: list[Statement] = []
    for role, address in payload.recipients():
        email = str(address.email)
        recipient = {"role": role, "email": email, "name": address.name}
        rows.append(
            (_INSERT_RECIPIENT, {"job_id": job_id, **recipient, "email_hash": hashed(email)})
        )
    for role, field in _ROLES.items():
        for position, part in enumerate(getattr(payload, field)):
            where = {"job_id": job_id, "role": role, "position": position}
            named = {"filename": part.filename, "content_id": part.content_id}
            rows.append((_INSERT_PART, {**where, **named, "body": (parts or {})[role][position]}))
    return rows


def _stored_parts(context: JobContext) -> dict[tuple[str, int], bytes]:
    with connection(context.settings.ledger_url) as db:
        rows = db.execute(
            select(JobPart.role, JobPart.position, JobPart.body).where(
                JobPart.job_id == context.claim.job_id
            )
        )
        return {(row.role, row.position): row.body for row in rows}


# --- the call -----------------------------------------------------------------------------


def message(payload: Email, parts: dict[tuple[str, int], bytes]) -> mailup.Message:
    """The MailUp message for a payload, with the parts' bytes from the ledger."""

    def address(a: Address) -> mailup.Address:
        return mailup.Address(str(a.email), a.name)

    def stored(role: str) -> tuple[mailup.Part, ...]:
        items = getattr(payload, _ROLES[role])
        return tuple(
            mailup.Part(p.filename, parts[(role, n)], p.content_id) for n, p in enumerate(items)
        )

    campaign = payload.campaign
    html = getattr(payload, "html", None)
    return mailup.Message(
        sender=address(payload.sender),
        subject=payload.subject,
        to=tuple(map(address, payload.to)),
        cc=tuple(map(address, payload.cc)),
        bcc=tuple(map(address, payload.bcc)),
        reply_to=str(payload.reply_to) if payload.reply_to else None,
        charset=payload.charset,
        headers=dict(payload.extended_headers),
        attachments=stored("attachment"),
        embedded_images=stored("embedded"),
        xsmtp=mailup.XSmtpApi(**campaign.model_dump()) if campaign else None,
        html=mailup.Html(**html.model_dump()) if html else None,
        text=getattr(payload, "text", None),
        template_id=getattr(payload, "template_id", None),
    )


def execute(context: JobContext, payload: Email) -> Result:
    has_parts = payload.attachments or payload.embedded_images
    wire = message(payload, _stored_parts(context) if has_parts else {})
    context.calling()
    sent = with_smtp_user(context.settings, context.claim.account, lambda c: c.send(wire))
    outcome = {"status": sent.status, "code": sent.code, "message": sent.message}
    return Result(outcome=outcome, http_status=sent.http_status, code=sent.code)


def describe(session: Session, job: Job) -> dict[str, Any]:
    recipients = session.execute(
        select(EmailRecipient.role, EmailRecipient.email, EmailRecipient.name)
        .where(EmailRecipient.job_id == job.id)
        .order_by(EmailRecipient.id)
    )
    result = dict(job.outcome or {})
    if job.last_error_code and not result:
        result = {"status": "error", "code": job.last_error_code, "message": job.last_error}
    result["recipients"] = [{"role": r.role, "email": r.email, "name": r.name} for r in recipients]
    return result


# --- the audits: who was sent what, and the purge of personal data -----------------------


def sent_to(
    session: Session,
    kinds: list[str],
    recipient_hash: str,
    since: datetime | None,
    until: datetime | None,
) -> list[Addressed]:
    rows = session.execute(
        select(Job, EmailRecipient.role)
        .join(EmailRecipient, EmailRecipient.job_id == Job.id)
        .where(
            EmailRecipient.email_hash == recipient_hash,
            Job.kind.in_(kinds),
            in_period(Job.created_at, since, until),
        )
    )
    return [
        Addressed(
            job_id=job.id,
            kind=job.kind,
            role=role,
            outcome="sent" if job.status == JobStatus.SUCCEEDED else job.status,
            at=job.finished_at or job.updated_at,
            created_at=job.created_at,
            code=(job.outcome or {}).get("code") or job.last_error_code,
            campaign_code=(job.payload.get("campaign") or {}).get("campaign_code"),
        )
        for job, role in rows
    ]


def purge(db: Connection, job_ids: list[str], hashed: Callable[[str], str]) -> None:
    """Addresses, names and part bytes go; each address's hash stays."""
    mine = EmailRecipient.job_id.in_(job_ids)
    hash_missing(
        db, EmailRecipient.id, EmailRecipient.email, EmailRecipient.email_hash, mine, hashed
    )
    db.execute(update(EmailRecipient).where(mine).values(email=None, name=None))
    db.execute(update(JobPart).where(JobPart.job_id.in_(job_ids)).values(body=None))


# Nothing personal: how it was sent and how it is counted (the subject, bodies, addresses,
# headers, part names and merge fields all go).
KEEPS = (
    "template_id",
    "charset",
    "campaign.campaign_name",
    "campaign.campaign_code",
    "campaign.campaign_report",
    "campaign.priority",
    "campaign.schedule",
)


# --- the channel: when the account's email cannot go out --------------------------------


def _user_info(settings: Settings, account: str) -> UserInfo | None:
    """ListUserInfo of the account's own SMTP+ user, recorded in the ledger."""
    username = settings.account(account).smtp_user

    def ask(client: TransactionalClient) -> list[UserInfo]:
        return client.list_user_info(username)

    users = with_smtp_user(settings, account, ask)
    found = next((u for u in users if u.username == username), None)
    if found is not None:
        with connection(settings.ledger_url) as db:
            smtp_status.record(db, account, [found])
    return found


def _blocked_until(user: UserInfo | None, now: datetime) -> datetime | None:
    """A date from which the user may send again, when only a date stands in its way."""
    if user is None or user.admin_block or user.is_enabled is False:
        return None
    if user.block_until is not None and user.block_until > now:
        return user.block_until + CLOCK_GRACE
    return None


def on_pause(context: JobContext, error: MailUpError) -> datetime | None:
    """How long the pause lasts: until BlockUntil, if that is all that stops the user."""
    now = utcnow()
    try:
        user = _user_info(context.settings, context.claim.account)
    except MailUpError:
        user = None  # the account itself is closed: no date to wait for
    until = _blocked_until(user, now)
    if until is None and error.condition == Condition.SMTP_USER_BLOCKED_UNTIL:
        until = now + BRIEF  # MailUp said "until a date" that is already past for us
    return until


def probe(settings: Settings, account: str) -> ProbeVerdict:
    """Whether the account's SMTP+ user may send again, asked of ListUserInfo."""
    try:
        user = _user_info(settings, account)
    except MailUpError as exc:
        return ProbeVerdict(reason=exc.message)
    if user is None:
        return ProbeVerdict(reason="ListUserInfo does not list the account's SMTP+ user")
    until = _blocked_until(user, utcnow())
    if until is not None:
        return ProbeVerdict(until=until, reason=f"SMTP+ user {user.username} is blocked")
    if user.admin_block or user.is_enabled is False:
        return ProbeVerdict(reason=f"SMTP+ user {user.username} is disabled or blocked")
    return ProbeVerdict(clear=True)


EMAIL = Channel("email", probe=probe, on_pause=on_pause)
MESSAGE = JobKind(
    "send_message",
    SendMessage,
    execute,
    describe,
    channel=EMAIL,
    stage=stage,
    api=Api.EMAIL,
    sent_to=sent_to,
    keeps=KEEPS,
    purge=purge,
)
TEMPLATE = JobKind(
    "send_template",
    SendTemplate,
    execute,
    describe,
    channel=EMAIL,
    stage=stage,
    api=Api.EMAIL,
    sent_to=sent_to,
    keeps=KEEPS,
    purge=purge,
)
