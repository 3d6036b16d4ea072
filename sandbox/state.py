"""The emulated MailUp world: accounts, lists, SMS templates, opt-outs, OAuth2 clients and tokens,
trusted senders, SMTP+ users, email templates and the emails accepted for sending.

Default seeded world (``SandboxState.default()``), deterministic so demos and tests can rely on it:

- account 1234, active, console user ``m1234`` / password ``sandbox-password``, 1000000 SMS
  credits;
- lists 1, 2, 3 of that account, GUIDs ``00000000-0000-4000-8000-00000000000N``, no ListSecret
  until one is created; default SMS sender ``MailUp`` on lists 1 and 2, none on list 3;
- SMS templates ``{1: "Hi [Name], welcome to [City]", 2: "Your code is [Code]"}``;
- opt-out number ``+393330000666``;
- OAuth2 client ``sandbox-client`` / ``sandbox-client-secret``; access tokens live 900 s;
- trusted sender ``sender@example.com`` (id ``SandboxSender001``), confirmed;
- Console list routes answer at most 20 items per page (``max_page_size``);
- SMTP+ user ``s1234_1`` / secret ``sandbox-smtp-secret`` on list 1, enabled, priority 3;
- email templates: list 1 ``7`` (lowercase tags [firstname] [lastname]) and ``9`` (a capitalised
  [FirstName] beside a lowercase [firstname]); list 2 ``8`` ([order]).

Handlers mutate the state only while holding ``state.lock``: one coarse lock keeps every request
atomic (a check-then-charge can't interleave), and the sandbox is never hot enough to need more.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
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
STATUS_CODES = (NOT_CONFIRMED, CONFIRMED, BLOCKED)
ACCOUNT_STATUSES = ("active", "suspended", "deleted")
DEFAULT_MAX_PAGE_SIZE = 20  # the PageSize of every paged example in the docs


def list_guid(list_id: int) -> str:
    """The seeded GUID of list ``list_id``."""
    return f"00000000-0000-4000-8000-{list_id:012d}"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # MailUp shows whole seconds


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


@dataclass
class MailingList:
    id: int
    account_id: int
    guid: str
    list_secret: str | None = None  # None: transactional SMS disabled on this list
    default_sender: str | None = None


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def default(cls) -> SandboxState:
        account = Account(DEFAULT_ACCOUNT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD, 1_000_000.0)
        lists = {
            n: MailingList(n, account.id, list_guid(n), None, sender)
            for n, sender in ((1, "MailUp"), (2, "MailUp"), (3, None))
        }
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

    def describe(self) -> list[str]:
        """Human-readable summary of credentials and lists, for ``serve``'s banner."""
        lines = [
            f"account {a.id} ({a.status}): console user {a.username!r}, "
            f"password {a.password!r}, credits {a.credits:.10g}"
            for a in self.accounts.values()
        ]
        lines += [
            f"list {m.id} (account {m.account_id}): GUID {m.guid}, "
            f"default sender {m.default_sender!r}, ListSecret {m.list_secret or 'none'}"
            for m in self.lists.values()
        ]
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


def new_smtp_password() -> str:
    return random_token(10, string.ascii_lowercase + string.digits + "?!")
