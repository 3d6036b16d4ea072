"""Every job kind the worker runs. A new kind is one module and one line here.

A kind's module is imported when the kind is first looked up, so that reading one job
(``mailup-jobs jobs show``) loads that kind alone, not every kind with its clients. The
worker still loads them all as it starts: ``worker.tasks`` imports POLLS, built from them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from worker.engine.kind import JobKind, Poll
from worker.settings import Settings

# Each kind's name and where its JobKind is, "module:attribute".
_HOMES = {
    "send_sms": "worker.jobs.sms:KIND",
    "list_secret": "worker.jobs.list_secret:KIND",
    "send_message": "worker.jobs.email:MESSAGE",
    "send_template": "worker.jobs.email:TEMPLATE",
    "trusted_sender": "worker.jobs.trusted_senders:KIND",
    "create_smtp_user": "worker.jobs.smtp_users:CREATE",
    "reset_smtp_password": "worker.jobs.smtp_users:RESET",
    "smtp_user_info": "worker.jobs.smtp_users:INFO",
    "list_create": "worker.jobs.lists:CREATE",
    "list_update": "worker.jobs.lists:UPDATE",
    "list_delete": "worker.jobs.lists:DELETE",
    "group_create": "worker.jobs.groups:CREATE",
    "group_update": "worker.jobs.groups:UPDATE",
    "group_delete": "worker.jobs.groups:DELETE",
    "group_clear": "worker.jobs.groups:CLEAR",
    "recipient_add": "worker.jobs.recipients:ADD",
    "recipient_subscription": "worker.jobs.recipients:SUBSCRIPTION",
    "import_chunk": "worker.jobs.imports:KIND",
    "message_create": "worker.jobs.messages:CREATE",
    "message_update": "worker.jobs.messages:UPDATE",
    "message_copy": "worker.jobs.messages:COPY",
    "message_visibility": "worker.jobs.messages:VISIBILITY",
    "message_dynamic_fields": "worker.jobs.messages:DYNAMIC_FIELDS",
    "tag_create": "worker.jobs.messages:TAG_CREATE",
    "tag_rename": "worker.jobs.messages:TAG_RENAME",
    "tag_delete": "worker.jobs.messages:TAG_DELETE",
    "attachment_add": "worker.jobs.messages:ATTACHMENT_ADD",
    "attachment_delete": "worker.jobs.messages:ATTACHMENT_DELETE",
    "campaign_send": "worker.jobs.campaigns:KIND",
    "sending_stop": "worker.jobs.sendings:STOP",
    "sending_delete": "worker.jobs.sendings:DELETE",
}


class _Kinds(Mapping[str, JobKind]):
    """The kinds by name, each imported on its first lookup."""

    def __getitem__(self, name: str) -> JobKind:
        return _load(_HOMES[name])

    def __contains__(self, name: object) -> bool:
        return name in _HOMES  # without importing the kind

    def __iter__(self) -> Iterator[str]:
        return iter(_HOMES)

    def __len__(self) -> int:
        return len(_HOMES)


@functools.cache  # looked up for every job enqueued
def _load(home: str) -> JobKind:
    module, attribute = home.split(":")
    kind: JobKind = getattr(importlib.import_module(module), attribute)
    return kind


KINDS: Mapping[str, JobKind] = _Kinds()

if TYPE_CHECKING:  # built by __getattr__ on first use: they need every kind
    CHANNELS: list[str]
    POLLS: dict[str, Poll]


def __getattr__(name: str) -> object:
    if name == "CHANNELS":
        value: object = sorted({kind.channel.name for kind in KINDS.values() if kind.channel})
    elif name == "POLLS":
        value = {poll.name: poll for kind in KINDS.values() for poll in kind.polls}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


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
