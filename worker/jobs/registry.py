"""Every job kind the worker runs. A new kind is one module and one line here."""

from worker.jobs import email, list_secret, sms
from worker.jobs.base import JobKind

KINDS: dict[str, JobKind] = {
    kind.name: kind for kind in (sms.KIND, list_secret.KIND, email.MESSAGE, email.TEMPLATE)
}
