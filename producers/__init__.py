"""What applications import to hand work to mailup-jobs.

The names are loaded on first use, so that the CLI (a subpackage) starts without loading
the whole system, and reports a bad setting itself, in one line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producers.bulk import enqueue_many, send_email_many, send_sms_many
    from producers.email import Attachment, send_email, send_email_template
    from producers.enqueue import enqueue, manage_list_secret, send_sms
    from producers.errors import (
        BrokerUnavailableWarning,
        ContentTruncatedWarning,
        InvalidJob,
        MergeTagCaseWarning,
        NotGsmWarning,
    )

_HOMES = {
    "enqueue_many": "producers.bulk",
    "send_email_many": "producers.bulk",
    "send_sms_many": "producers.bulk",
    "Attachment": "producers.email",
    "send_email": "producers.email",
    "send_email_template": "producers.email",
    "enqueue": "producers.enqueue",
    "manage_list_secret": "producers.enqueue",
    "send_sms": "producers.enqueue",
    "BrokerUnavailableWarning": "producers.errors",
    "ContentTruncatedWarning": "producers.errors",
    "InvalidJob": "producers.errors",
    "MergeTagCaseWarning": "producers.errors",
    "NotGsmWarning": "producers.errors",
}
__all__ = [
    "Attachment",
    "BrokerUnavailableWarning",
    "ContentTruncatedWarning",
    "InvalidJob",
    "MergeTagCaseWarning",
    "NotGsmWarning",
    "enqueue",
    "enqueue_many",
    "manage_list_secret",
    "send_email",
    "send_email_many",
    "send_email_template",
    "send_sms",
    "send_sms_many",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'producers' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
