"""The emulated MailUp world: accounts, lists and their groups, recipients and their
subscriptions, recipient imports, SMS templates, opt-outs, OAuth2 clients and tokens, trusted
senders, SMTP+ users, email templates, the emails accepted for sending, and the Console's email
messages, tags and sendings.

Default seeded world (``SandboxState.default()``), deterministic so demos and tests can rely on it:

- account 1234, active, console user ``m1234`` / password ``sandbox-password``, 1000000 SMS
  credits, not a trial account (a trial one processes at most ``trial_recipients``, 25, recipients
  per sending);
- lists 1, 2, 3 of that account, GUIDs ``00000000-0000-4000-8000-00000000000N``, no ListSecret
  until one is created; default SMS sender (SmsSenderName) ``MailUp`` on lists 1 and 2, none on
  list 3; lists 1 "Newsletter" and 2 "Promotions" carry the sender details of ``LIST_DEFAULTS``
  (MailUp's "default settings": those of list 1), list 3 "Alerts" is an old list whose mandatory
  sender details are empty (they became mandatory after it was made);
- groups 1 (list 1) and 2 (list 2), both "TEST", not deletable; no recipients, no imports; new
  lists, groups, recipients and imports take account-wide ids from 4, 3, 1 and 1;
- imports complete 1.0 s after they were asked for (``import_delay``);
- SMS templates ``{1: "Hi [Name], welcome to [City]", 2: "Your code is [Code]"}``;
- opt-out number ``+393330000666``;
- OAuth2 client ``sandbox-client`` / ``sandbox-client-secret``; access tokens live 900 s;
- trusted sender ``sender@example.com`` (id ``SandboxSender001``), confirmed;
- Console list routes answer at most 20 items per page (``max_page_size``);
- SMTP+ user ``s1234_1`` / secret ``sandbox-smtp-secret`` on list 1, enabled, priority 3;
- email templates: list 1 ``7`` (lowercase tags [firstname] [lastname]) and ``9`` (a capitalised
  [FirstName] beside a lowercase [firstname]); list 2 ``8`` ([order]);
- no Console email messages, no tags, no sendings: new ones take account-wide ids from 1
  (messages, tags and sendings each); a sending finishes 2.0 s after it enters the Immediate
  queue (``sending_duration``). Deleting a list removes its messages, tags and sendings.

Handlers mutate the state only while holding ``state.lock``: one coarse lock keeps every request
atomic (a check-then-charge can't interleave), and the sandbox is never hot enough to need more.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_ACCOUNT_ID = 1234
DEFAULT_USERNAME = "m1234"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_SMTP_USER = "s1234_1"
DEFAULT_SMTP_SECRET = "sandbox-smtp-secret"
DEFAULT_TRUSTED_SENDER = "sender@example.com"

NOT_CONFIRMED, CONFIRMED, BLOCKED = 0, 1, 2  # trusted sender StatusCode
ACCOUNT_STATUSES = ("active", "suspended", "deleted")
DEFAULT_MAX_PAGE_SIZE = 20  # the PageSize of every paged example in the docs
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MOBILE_PREFIX_RE = re.compile(r"(\+|00)?\d{1,4}")
DEFAULT_IMPORT_DELAY = 1.0  # seconds from an import request to its completion
DEFAULT_SENDING_DURATION = 2.0  # seconds from entering the Immediate queue to finishing
DEFAULT_TRIAL_RECIPIENTS = 25  # recipients a trial account's sending processes
# A Console sending's states: the three queues, then done or stopped (out of the queues).
IMMEDIATE, DEFERRED, UNDEFINED, FINISHED, STOPPED = (
    "Immediate", "Deferred", "Undefined", "Finished", "Stopped",
)  # fmt: skip
QUEUES = (IMMEDIATE, DEFERRED, UNDEFINED)
SENDING_STATES = (*QUEUES, FINISHED, STOPPED)
ATTACHMENT_SLOTS = range(1, 6)  # MailUp messages have five attachment slots
SUBSCRIBED, UNSUBSCRIBED, PENDING = "subscribed", "unsubscribed", "pending"
SUBSCRIPTION_STATUSES = (SUBSCRIBED, UNSUBSCRIBED, PENDING)
# How a request moves a recipient's status on a list: "subscribe" (an add or import), "confirm"
# (the same with ConfirmEmail=true), "optout" (importType=asOptout), "force" (Subscribe/{id}).
JOIN_MODES = ("subscribe", "confirm", "optout", "force")
SENDER_DETAILS = (  # the doc's mandatory sender details
    "Name", "Business", "Customer", "OwnerEmail", "NLSenderName", "CompanyName", "ContactName",
    "Address", "City", "CountryCode", "PermissionReminder", "WebSiteUrl",
)  # fmt: skip
# The settings of list 1, MailUp's "default settings": every field of the doc's list details
# but IdList and ListGuid.
LIST_DEFAULTS: dict[str, Any] = {
    "Address": "Via dell'Emulatore 1",
    "BouncedEmail": None,
    "Business": True,
    "Charset": "UTF-8",
    "City": "Cremona",
    "CompanyName": "Sandbox company",
    "ContactName": "Sandbox owner",
    "ConversionlabTrackCode": "",
    "CountryCode": "IT",
    "Customer": True,
    "DefaultPrefix": "0039",
    "Description": "",
    "Disclaimer": "",
    "DisplayAs": "",
    "Format": "html",
    "FrontendForm": True,
    "HeaderListUnsubscriber": "<[listunsubscribe]>,<[mailto_uns]>",
    "HeaderXAbuse": "Please report abuse here: http://[host]/p",
    "KBMax": 100,
    "LinkTrackingParameters": "",
    "MultiOptoutList": "1",
    "MultipartText": True,
    "Name": "Newsletter",
    "NLSenderName": "Sandbox",
    "NotifyEmail": None,
    "OptoutType": 3,
    "OwnerEmail": DEFAULT_TRUSTED_SENDER,
    "PermissionReminder": "You receive this message because you subscribed on our web site.",
    "Phone": "",
    "PostalCode": "26100",
    "Public": True,
    "ReplyTo": DEFAULT_TRUSTED_SENDER,
    "ScopeCode": 0,
    "SendConfirmSms": False,
    "SendEmailOptout": False,
    "SmsSenderName": "MailUp",
    "StateOrProvince": "CR",
    "SubscribedEmail": True,
    "TimeZoneCode": "UTC+01:00.0",
    "TrackOnOpened": True,
    "WebSiteUrl": "https://www.example.com",
}


def list_guid(list_id: int) -> str:
    """The seeded GUID of list ``list_id``."""
    return f"00000000-0000-4000-8000-{list_id:012d}"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # MailUp shows whole seconds


def trusted(status_code: int) -> bool:
    """Doc 004: any StatusCode but 0 is trusted (2 is one disabled); those past 2 come of
    MailUp's checks after the click, and the doc lists none of them."""
    return status_code not in (NOT_CONFIRMED, BLOCKED)


def random_token(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: datetimes in ISO 8601, for the control routes."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(obj).items()}


@dataclass
class Account:
    id: int
    username: str  # console user, "m" + id, used for HTTP Basic on ListSecret calls
    password: str
    credits: float
    status: str = "active"  # one of ACCOUNT_STATUSES; the transactional email API checks it
    trial: bool = False  # a free trial console account: its sendings are cut short
    trial_recipients: int = DEFAULT_TRIAL_RECIPIENTS  # recipients a trial sending processes


@dataclass
class MailingList:
    id: int
    account_id: int
    guid: str
    list_secret: str | None = None  # None: transactional SMS disabled on this list
    settings: dict[str, Any] = field(default_factory=dict)  # the doc's fields, by their names
    created: datetime = field(default_factory=utcnow)
    subscriptions: dict[int, str] = field(default_factory=dict)  # recipient id -> status

    @property
    def name(self) -> str:
        return str(self.settings.get("Name") or "")

    @property
    def default_sender(self) -> str | None:
        """The SMS sender of a send that names none: SmsSenderName, None when blank."""
        return self.settings.get("SmsSenderName") or None


@dataclass
class Group:
    id: int
    list_id: int
    name: str
    notes: str = ""
    deletable: bool = True
    members: set[int] = field(default_factory=set)  # recipient ids


@dataclass(frozen=True)
class RecipientData:
    """A recipient as a request describes it; None: not given, keep what is stored."""

    email: str
    name: str | None = None
    mobile_number: str | None = None
    mobile_prefix: str | None = None
    fields: tuple[tuple[int, str], ...] = ()  # (field id, value)


@dataclass
class Recipient:
    id: int
    account_id: int
    email: str
    name: str = ""
    mobile_number: str = ""
    mobile_prefix: str = ""
    fields: dict[int, str] = field(default_factory=dict)  # field id -> value

    def update(self, data: RecipientData) -> None:
        """Take what ``data`` gives; the rest stays (a recipient is reused, never replaced)."""
        self.name = self.name if data.name is None else data.name
        self.mobile_number = (
            self.mobile_number if data.mobile_number is None else data.mobile_number
        )
        self.mobile_prefix = (
            self.mobile_prefix if data.mobile_prefix is None else data.mobile_prefix
        )
        self.fields.update(data.fields)


@dataclass
class ImportCounts:
    """An import's counters, all 0 until it completes."""

    valid: int = 0
    not_valid: int = 0
    created: int = 0
    updated: int = 0
    imported: int = 0


@dataclass
class Import:
    id: int
    account_id: int
    list_id: int
    group_id: int | None
    items: list[RecipientData]  # the valid-looking and invalid ones alike, checked on completion
    mode: str  # one of JOIN_MODES but "force"
    created: datetime
    due: float  # time.monotonic() deadline of its completion
    completed: datetime | None = None
    counts: ImportCounts = field(default_factory=ImportCounts)


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Grant:
    """What an access or refresh token stands for."""

    account_id: int
    client_id: str
    expires_at: float = math.inf  # time.time() deadline; refresh tokens never expire


@dataclass
class TrustedSender:
    id: str  # IdTrustedSender
    account_id: int
    email: str
    status_code: int
    created: datetime
    updated: datetime
    authorized: datetime | None = None  # when the owner clicked the verification link


@dataclass
class SmtpUser:
    username: str
    secret: str
    account_id: int
    list_id: int
    created: datetime
    updated: datetime
    is_enabled: bool = True
    note: str = ""
    priority_code: int = 3
    trusted_senders: list[str] = field(default_factory=list)
    trusted_domains: list[str] = field(default_factory=list)
    admin_block: bool = False
    block_until: datetime | None = None
    deleted: bool = False


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class MessagePart:
    """An attachment or embedded image, its bytes decoded so tests can compare them."""

    filename: str
    content_id: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_id": self.content_id,
            "sha256": self.sha256,
            "size": len(self.body),
            "body_base64": base64.b64encode(self.body).decode(),
        }


@dataclass
class SentEmail:
    """A message the transactional email API accepted (SendMessage or SendTemplate)."""

    id: int
    kind: str  # "message" or "template"
    smtp_user: str
    list_id: int
    sender: dict[str, str]  # {"name", "email"}
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    reply_to: str | None
    subject: str
    html: str
    text: str
    rendered_subject: str  # after merge tags
    rendered_html: str
    rendered_text: str
    template_id: int | None
    campaign_code: str | None
    campaign_name: str | None
    dynamic_fields: list[dict[str, str]]  # [{"N", "V"}], as sent
    extended_headers: list[dict[str, str]]
    attachments: list[MessagePart]
    embedded_images: list[MessagePart]
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = {("from" if k == "sender" else k): v for k, v in self.__dict__.items()}
        data["attachments"] = [p.to_dict() for p in self.attachments]
        data["embedded_images"] = [p.to_dict() for p in self.embedded_images]
        return data


@dataclass
class Tag:
    """A Console tag of a list's email messages."""

    id: int
    list_id: int
    name: str
    enabled: bool = True


@dataclass
class Attachment:
    """A file in one of a message's five slots, its bytes decoded."""

    slot: int
    name: str
    data: bytes


@dataclass
class EmailMessage:
    """A Console email message of a list (not a transactional email: see ``SentEmail``)."""

    id: int
    account_id: int
    list_id: int
    subject: str
    content: str = ""  # the HTML
    head: str = ""
    body: str = ""
    embed: bool = False
    is_confirmation: bool = False
    notes: str = ""
    fields: list[dict[str, Any]] = field(default_factory=list)  # [{"Id", "Value", "Description"}]
    use_dynamic_field: bool = False
    tag_ids: list[int] = field(default_factory=list)
    tracking: dict[str, Any] = field(default_factory=dict)  # {"Enabled", "Protocols", ...}
    attachments: dict[int, Attachment] = field(default_factory=dict)  # by slot
    created: datetime = field(default_factory=utcnow)
    published: bool = False  # online visibility
    archived: bool = False
    last_sent: datetime | None = None  # when a sending of it was last created


@dataclass
class Sending:
    """A Console sending of an email message: its recipients are a snapshot taken when it was
    asked for. Its state moves lazily (``SandboxState.advance_sendings``)."""

    id: int
    account_id: int
    list_id: int
    message_id: int
    kind: str  # "list", "group" or "recipient"
    group_id: int | None
    sender_name: str
    sender_address: str
    reply_to: str | None
    recipients: list[str]  # the emails enqueued
    invalid: list[dict[str, str]]  # [{"Email", "Reason"}]
    unprocessed: list[dict[str, str]]
    created: datetime  # full precision: a short sending_duration must show
    state: str = UNDEFINED  # one of SENDING_STATES
    deferred_until: datetime | None = None
    started: datetime | None = None  # when it entered the Immediate queue
    finishes: datetime | None = None  # started + the sending_duration of then
    ended: datetime | None = None  # when it finished or was stopped
    # Until then it is listed nowhere, queues or history: MailUp still verifying it.
    listed_from: datetime | None = None

    def listed(self, now: datetime) -> bool:
        return self.listed_from is None or self.listed_from <= now

    @property
    def sent(self) -> int:
        """MailUp's Sent: the recipients enqueued, and the discarded ones too (the doc)."""
        return len(self.recipients) + len(self.invalid) + len(self.unprocessed)


@dataclass
class SandboxState:
    accounts: dict[int, Account]
    lists: dict[int, MailingList]
    sms_templates: dict[int, str]
    optout: set[str]  # normalized "+<digits>" numbers
    next_delivery_id: int = 1
    oauth_clients: dict[str, OAuthClient] = field(default_factory=dict)
    token_lifetime: int = 900  # expires_in of new access tokens, seconds
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE  # MailUp's cap on a Console list's PageSize
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)  # single-use: popped on use
    trusted_senders: dict[str, TrustedSender] = field(default_factory=dict)  # by id
    smtp_users: dict[str, SmtpUser] = field(default_factory=dict)  # by username
    email_templates: dict[int, dict[int, EmailTemplate]] = field(default_factory=dict)  # by list
    emails: list[SentEmail] = field(default_factory=list)
    groups: dict[int, Group] = field(default_factory=dict)
    recipients: dict[int, Recipient] = field(default_factory=dict)
    # (account id, lowercased email) -> recipient id: imports of 100,000 rows look each one up
    recipient_ids: dict[tuple[int, str], int] = field(default_factory=dict)
    imports: dict[int, Import] = field(default_factory=dict)
    import_delay: float = DEFAULT_IMPORT_DELAY  # seconds, for imports asked for from now on
    messages: dict[int, EmailMessage] = field(default_factory=dict)
    tags: dict[int, Tag] = field(default_factory=dict)
    sendings: dict[int, Sending] = field(default_factory=dict)
    sending_duration: float = DEFAULT_SENDING_DURATION  # seconds, from entering Immediate
    # Seconds a new sending is listed nowhere (doc 003: "every time an item is processed, it
    # starts a verification process that requires some seconds").
    listing_delay: float = 0.0
    # The next id of each kind of thing; MailUp numbers them per account, the sandbox globally
    # (an account still sees its own ids grow, with gaps where another account's went).
    next_ids: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def default(cls) -> SandboxState:
        account = Account(DEFAULT_ACCOUNT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD, 1_000_000.0)
        old_list = dict.fromkeys(SENDER_DETAILS, "") | {"Business": False, "Customer": False}
        settings = {
            1: LIST_DEFAULTS,
            2: LIST_DEFAULTS | {"Name": "Promotions", "MultiOptoutList": "2"},
            3: LIST_DEFAULTS | old_list | {"Name": "Alerts", "MultiOptoutList": "3"},
        }
        settings[3] |= {"SmsSenderName": "", "ReplyTo": "", "PostalCode": "", "StateOrProvince": ""}
        lists = {
            n: MailingList(n, account.id, list_guid(n), None, dict(settings[n])) for n in settings
        }
        groups = {n: Group(n, n, "TEST", "Used for test sending.", deletable=False) for n in (1, 2)}
        now = utcnow()
        sender = TrustedSender(
            "SandboxSender001", account.id, DEFAULT_TRUSTED_SENDER, CONFIRMED, now, now, now
        )
        smtp_user = SmtpUser(
            DEFAULT_SMTP_USER,
            DEFAULT_SMTP_SECRET,
            account.id,
            1,
            now,
            now,
            note="seeded",
            trusted_senders=[DEFAULT_TRUSTED_SENDER],
        )
        return cls(
            accounts={account.id: account},
            lists=lists,
            sms_templates={1: "Hi [Name], welcome to [City]", 2: "Your code is [Code]"},
            optout={"+393330000666"},
            oauth_clients={
                DEFAULT_CLIENT_ID: OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            },
            trusted_senders={sender.id: sender},
            smtp_users={smtp_user.username: smtp_user},
            email_templates={
                1: {
                    7: EmailTemplate(
                        "Welcome", "<p>Hello [firstname] [lastname]</p>", "Hello [firstname]"
                    ),
                    9: EmailTemplate(
                        "Mixed case", "<p>Dear [FirstName] / [firstname]</p>", "[FirstName]"
                    ),
                },
                2: {8: EmailTemplate("Receipt", "<p>Order [order]</p>", "Order [order]")},
            },
            groups=groups,
            next_ids={
                "list": 4,
                "group": 3,
                "recipient": 1,
                "import": 1,
                "message": 1,
                "tag": 1,
                "sending": 1,
            },
        )

    def take_delivery_id(self) -> int:
        """Next DeliveryId; call with ``lock`` held."""
        delivery_id = self.next_delivery_id
        self.next_delivery_id += 1
        return delivery_id

    def account_by_username(self, username: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.username == username), None)

    # --- OAuth2 (call with ``lock`` held) ----------------------------------------------------

    def issue_tokens(self, account_id: int, client_id: str) -> tuple[str, str]:
        """A fresh (access_token, refresh_token) pair."""
        access, refresh = random_token(48), random_token(48)
        deadline = time.time() + self.token_lifetime
        self.access_tokens[access] = Grant(account_id, client_id, deadline)
        self.refresh_tokens[refresh] = Grant(account_id, client_id)
        return access, refresh

    def account_of_token(self, access_token: str) -> Account | None:
        """The account an unexpired access token stands for."""
        grant = self.access_tokens.get(access_token)
        if grant is None or time.time() >= grant.expires_at:
            return None
        return self.accounts.get(grant.account_id)

    def expire_tokens(self) -> int:
        """Make every issued access token expire now; returns how many were still live."""
        now = time.time()
        live = [t for t, g in self.access_tokens.items() if g.expires_at > now]
        for token in live:
            self.access_tokens[token] = replace(self.access_tokens[token], expires_at=now)
        return len(live)

    # --- trusted senders and SMTP+ users (call with ``lock`` held) -----------------------------

    def sender_by_email(self, account_id: int, email: str) -> TrustedSender | None:
        email = email.strip().lower()
        return next(
            (
                s
                for s in self.trusted_senders.values()
                if s.account_id == account_id and s.email.lower() == email
            ),
            None,
        )

    def trust_sender(self, account_id: int, email: str) -> TrustedSender:
        """Create the sender, or send it back to NotConfirmed (the doc's re-request)."""
        now = utcnow()
        sender = self.sender_by_email(account_id, email)
        if sender is None:
            sender = TrustedSender(
                random_token(16), account_id, email.strip(), NOT_CONFIRMED, now, now
            )
            self.trusted_senders[sender.id] = sender
        else:
            sender.status_code, sender.updated, sender.authorized = NOT_CONFIRMED, now, None
        return sender

    def add_smtp_user(self, account_id: int, list_id: int, **settings: Any) -> SmtpUser:
        """A new SMTP+ user ``s<account>_<n>`` with a random password."""
        prefix = f"s{account_id}_"
        taken = [int(u[len(prefix) :]) for u in self.smtp_users if u.startswith(prefix)]
        now = utcnow()
        username = f"{prefix}{max(taken, default=0) + 1}"
        user = SmtpUser(username, new_smtp_password(), account_id, list_id, now, now, **settings)
        self.smtp_users[user.username] = user
        return user

    # --- lists, groups, recipients, imports (call with ``lock`` held) --------------------------

    def take_id(self, kind: str) -> int:
        """The next id of ``kind``: "list", "group", "recipient", "import", "message", "tag" or
        "sending"."""
        taken = self.next_ids[kind]
        self.next_ids[kind] = taken + 1
        return taken

    def add_list(self, account_id: int, settings: dict[str, Any]) -> MailingList:
        """A new list with a random GUID and, as MailUp makes one for each list, a TEST group."""
        mlist = MailingList(self.take_id("list"), account_id, str(uuid.uuid4()), None, settings)
        settings.setdefault("MultiOptoutList", str(mlist.id))
        self.lists[mlist.id] = mlist
        self.add_group(mlist.id, "TEST", "Used for test sending.", deletable=False)
        return mlist

    def delete_list(self, list_id: int) -> MailingList:
        """Remove the list with its groups, subscriptions, imports, messages, tags, sendings."""
        mlist = self.lists.pop(list_id)
        for group in self.list_groups(list_id):
            del self.groups[group.id]
        for things in (self.imports, self.messages, self.tags, self.sendings):
            for key in [k for k, v in things.items() if v.list_id == list_id]:
                del things[key]
        return mlist

    def list_groups(self, list_id: int) -> list[Group]:
        return [g for g in self.groups.values() if g.list_id == list_id]

    def add_group(self, list_id: int, name: str, notes: str, *, deletable: bool = True) -> Group:
        group = Group(self.take_id("group"), list_id, name, notes, deletable)
        self.groups[group.id] = group
        return group

    def recipient_by_email(self, account_id: int, email: str) -> Recipient | None:
        recipient_id = self.recipient_ids.get((account_id, email.strip().lower()))
        return None if recipient_id is None else self.recipients[recipient_id]

    def upsert_recipient(self, account_id: int, data: RecipientData) -> tuple[Recipient, bool]:
        """The account's recipient with ``data.email`` (any case), updated, or a new one; and
        whether it is new."""
        recipient = self.recipient_by_email(account_id, data.email)
        created = recipient is None
        if recipient is None:
            recipient = Recipient(self.take_id("recipient"), account_id, data.email.strip())
            self.recipients[recipient.id] = recipient
            self.recipient_ids[account_id, recipient.email.lower()] = recipient.id
        recipient.update(data)
        return recipient, created

    def join(self, mlist: MailingList, recipient_id: int, mode: str) -> str:
        """Move the recipient's status on ``mlist`` as ``mode`` (JOIN_MODES) says; the new one.
        Only "force" resubscribes an unsubscribed recipient, and a confirmation never demotes a
        subscribed one to pending."""
        current = mlist.subscriptions.get(recipient_id)
        if mode == "force":
            status = SUBSCRIBED
        elif mode == "optout":
            status = UNSUBSCRIBED
        elif current in (SUBSCRIBED, UNSUBSCRIBED):
            status = current
        else:
            status = PENDING if mode == "confirm" else SUBSCRIBED
        mlist.subscriptions[recipient_id] = status
        return status

    def add_recipient(
        self, mlist: MailingList, data: RecipientData, mode: str, group: Group | None = None
    ) -> tuple[Recipient, bool, str]:
        """Create or update the recipient, move its status on the list, put it in ``group``
        (an opt-out leaves memberships alone); (recipient, created, status)."""
        recipient, created = self.upsert_recipient(mlist.account_id, data)
        status = self.join(mlist, recipient.id, mode)
        if group is not None and mode != "optout":
            group.members.add(recipient.id)
        return recipient, created, status

    def add_import(
        self, mlist: MailingList, group: Group | None, items: list[RecipientData], mode: str
    ) -> Import:
        group_id = None if group is None else group.id
        due = time.monotonic() + self.import_delay
        imp = Import(
            self.take_id("import"), mlist.account_id, mlist.id, group_id, items, mode, utcnow(), due
        )
        self.imports[imp.id] = imp
        return imp

    def complete_due_imports(self) -> None:
        """Complete every import whose time has come: imports run lazily, on observation."""
        now = time.monotonic()
        for imp in self.imports.values():
            if imp.completed is None and imp.due <= now:
                self.complete_import(imp)

    def complete_import(self, imp: Import) -> None:
        """Apply the import's valid items now and fill in its counters (once)."""
        if imp.completed is not None:
            return
        mlist, group = self.lists[imp.list_id], self.groups.get(imp.group_id or 0)
        counts = imp.counts
        for data in imp.items:
            if recipient_problem(data):
                counts.not_valid += 1
                continue
            _, created, _ = self.add_recipient(mlist, data, imp.mode, group)
            counts.valid += 1
            counts.imported += 1
            counts.created += created
            counts.updated += not created
        imp.completed = utcnow()

    # --- Console sendings (call with ``lock`` held) --------------------------------------------

    def start_sending(self, sending: Sending, at: datetime) -> None:
        """Into the Immediate queue at ``at``; it finishes ``sending_duration`` s later."""
        sending.state, sending.started = IMMEDIATE, at
        sending.finishes = at + timedelta(seconds=self.sending_duration)
        sending.ended = None

    def advance_sendings(self, now: datetime | None = None) -> None:
        """Move every sending as time has moved: sendings run lazily, on observation. A deferred
        one enters Immediate at its date (its creation, if the date was already past then)."""
        now = datetime.now(UTC) if now is None else now
        for sending in self.sendings.values():
            due, ends = sending.deferred_until, sending.finishes
            if sending.state == DEFERRED and due is not None and due <= now:
                self.start_sending(sending, max(due, sending.created))
                ends = sending.finishes
            if sending.state == IMMEDIATE and ends is not None and ends <= now:
                sending.state, sending.ended = FINISHED, ends

    def describe(self) -> list[str]:
        """Human-readable summary of credentials and lists, for ``serve``'s banner."""
        lines = [
            f"account {a.id} ({a.status}): console user {a.username!r}, "
            f"password {a.password!r}, credits {a.credits:.10g}"
            for a in self.accounts.values()
        ]
        lines += [
            f"list {m.id} {m.name!r} (account {m.account_id}): GUID {m.guid}, "
            f"default sender {m.default_sender!r}, ListSecret {m.list_secret or 'none'}"
            for m in self.lists.values()
        ]
        lines += [
            f"group {g.id} {g.name!r} of list {g.list_id}"
            + ("" if g.deletable else ", not deletable")
            for g in self.groups.values()
        ]
        lines.append(f"imports complete {self.import_delay:g} s after they are asked for")
        lines.append(
            f"Console sendings finish {self.sending_duration:g} s after they enter Immediate"
        )
        lines.append(f"SMS templates: {self.sms_templates}")
        lines.append(f"opt-out numbers: {sorted(self.optout)}")
        lines += [
            f"OAuth2 client {c.client_id!r}, secret {c.client_secret!r}, "
            f"tokens live {self.token_lifetime} s"
            for c in self.oauth_clients.values()
        ]
        lines += [
            f"SMTP+ user {u.username!r}, secret {u.secret!r}, list {u.list_id}"
            for u in self.smtp_users.values()
        ]
        lines += [
            f"trusted sender {t.email!r} (id {t.id}), StatusCode {t.status_code}"
            for t in self.trusted_senders.values()
        ]
        lines += [
            f"email templates of list {list_id}: "
            + ", ".join(f"{n} {t.subject!r}" for n, t in templates.items())
            for list_id, templates in self.email_templates.items()
        ]
        return lines


def recipient_problem(data: RecipientData) -> str | None:
    """What makes a recipient invalid (its field named), or None."""
    if not EMAIL_RE.fullmatch(data.email.strip()):
        return f"Invalid Email: {data.email!r}."
    if data.mobile_number and not data.mobile_number.isdigit():
        return f"Invalid MobileNumber: {data.mobile_number!r}."
    if data.mobile_prefix and not MOBILE_PREFIX_RE.fullmatch(data.mobile_prefix):
        return f"Invalid MobilePrefix: {data.mobile_prefix!r}."
    return None


def new_smtp_password() -> str:
    return random_token(10, string.ascii_lowercase + string.digits + "?!")
