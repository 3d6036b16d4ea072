"""Every job kind the worker runs. A new kind is one module and one line here."""

from worker.jobs import email, list_secret, sms, smtp_users, trusted_senders
from worker.jobs.base import JobKind

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
    )
}
