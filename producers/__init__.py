"""What applications import to hand work to mailup-jobs."""

from producers.email import Attachment, send_email, send_email_template
from producers.enqueue import enqueue, manage_list_secret, send_sms
from producers.errors import ContentTruncatedWarning, InvalidJob, MergeTagCaseWarning

__all__ = [
    "Attachment",
    "ContentTruncatedWarning",
    "InvalidJob",
    "MergeTagCaseWarning",
    "enqueue",
    "manage_list_secret",
    "send_email",
    "send_email_template",
    "send_sms",
]
