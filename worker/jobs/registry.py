"""Every job kind the worker runs. A new kind is one module and one line here."""

from collections.abc import Callable

from worker.engine.kind import JobKind, Poll
from worker.jobs import (
    campaigns,
    email,
    groups,
    imports,
    list_secret,
    lists,
    messages,
    recipients,
    sendings,
    sms,
    smtp_users,
    trusted_senders,
)
from worker.settings import Settings

KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        sms.KIND,
        list_secret.KIND,
        email.MESSAGE,
        email.TEMPLATE,
        trusted_senders.KIND,
        smtp_users.CREATE,
        smtp_users.RESET,
        smtp_users.INFO,
        lists.CREATE,
        lists.UPDATE,
        lists.DELETE,
        groups.CREATE,
        groups.UPDATE,
        groups.DELETE,
        groups.CLEAR,
        recipients.ADD,
        recipients.SUBSCRIPTION,
        imports.KIND,
        messages.CREATE,
        messages.UPDATE,
        messages.COPY,
        messages.VISIBILITY,
        messages.DYNAMIC_FIELDS,
        messages.TAG_CREATE,
        messages.TAG_RENAME,
        messages.TAG_DELETE,
        messages.ATTACHMENT_ADD,
        messages.ATTACHMENT_DELETE,
        campaigns.KIND,
        sendings.STOP,
        sendings.DELETE,
    )
}
CHANNELS = sorted({kind.channel.name for kind in KINDS.values() if kind.channel})
POLLS: dict[str, Poll] = {poll.name: poll for kind in KINDS.values() for poll in kind.polls}


def channel_kinds(channel: str) -> list[str]:
    """The kinds that send on ``channel``: a pause of it holds them all."""
    return [name for name, kind in KINDS.items() if kind.channel and kind.channel.name == channel]


def requeue_if_called(settings: Settings) -> Callable[[str, str], bool]:
    """For the sweeper: whether a job whose worker died mid-call is sent again."""

    def decide(kind: str, account: str) -> bool:
        found = KINDS.get(kind)
        if found is None or account not in settings.accounts:
            return False
        return found.delivery_for(settings.accounts[account]) == "at_least_once"

    return decide
