"""What applications import to hand work to mailup-jobs."""

from producers.enqueue import enqueue, manage_list_secret, send_sms
from producers.errors import ContentTruncatedWarning, InvalidJob

__all__ = ["ContentTruncatedWarning", "InvalidJob", "enqueue", "manage_list_secret", "send_sms"]
