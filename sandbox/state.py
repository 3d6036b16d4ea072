"""The emulated MailUp world: accounts, lists, SMS templates, opt-outs.

Default seeded world (``SandboxState.default()``), deterministic so demos and tests can rely on it:

- account 1234, console user ``m1234`` / password ``sandbox-password``, 1000000 SMS credits;
- lists 1, 2, 3 of that account, GUIDs ``00000000-0000-4000-8000-00000000000N``, no ListSecret
  until one is created; default SMS sender ``MailUp`` on lists 1 and 2, none on list 3;
- SMS templates ``{1: "Hi [Name], welcome to [City]", 2: "Your code is [Code]"}``;
- opt-out number ``+393330000666``.

Handlers mutate the state only while holding ``state.lock``: one coarse lock keeps every request
atomic (a check-then-charge can't interleave), and the sandbox is never hot enough to need more.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

DEFAULT_ACCOUNT_ID = 1234
DEFAULT_USERNAME = "m1234"
DEFAULT_PASSWORD = "sandbox-password"


def list_guid(list_id: int) -> str:
    """The seeded GUID of list ``list_id``."""
    return f"00000000-0000-4000-8000-{list_id:012d}"


@dataclass
class Account:
    id: int
    username: str  # console user, "m" + id, used for HTTP Basic on ListSecret calls
    password: str
    credits: float


@dataclass
class MailingList:
    id: int
    account_id: int
    guid: str
    list_secret: str | None = None  # None: transactional SMS disabled on this list
    default_sender: str | None = None


@dataclass
class SandboxState:
    accounts: dict[int, Account]
    lists: dict[int, MailingList]
    sms_templates: dict[int, str]
    optout: set[str]  # normalized "+<digits>" numbers
    next_delivery_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def default(cls) -> SandboxState:
        account = Account(DEFAULT_ACCOUNT_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD, 1_000_000.0)
        lists = {
            n: MailingList(n, account.id, list_guid(n), None, sender)
            for n, sender in ((1, "MailUp"), (2, "MailUp"), (3, None))
        }
        return cls(
            accounts={account.id: account},
            lists=lists,
            sms_templates={1: "Hi [Name], welcome to [City]", 2: "Your code is [Code]"},
            optout={"+393330000666"},
        )

    def take_delivery_id(self) -> int:
        """Next DeliveryId; call with ``lock`` held."""
        delivery_id = self.next_delivery_id
        self.next_delivery_id += 1
        return delivery_id

    def account_by_username(self, username: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.username == username), None)

    def describe(self) -> list[str]:
        """Human-readable summary of credentials and lists, for ``serve``'s banner."""
        lines = [
            f"account {a.id}: console user {a.username!r}, password {a.password!r}, "
            f"credits {a.credits:.10g}"
            for a in self.accounts.values()
        ]
        lines += [
            f"list {m.id} (account {m.account_id}): GUID {m.guid}, "
            f"default sender {m.default_sender!r}, ListSecret {m.list_secret or 'none'}"
            for m in self.lists.values()
        ]
        lines.append(f"SMS templates: {self.sms_templates}")
        lines.append(f"opt-out numbers: {sorted(self.optout)}")
        return lines
