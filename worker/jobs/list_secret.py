"""Job kind ``list_secret``: read, create, delete or rotate a list's SMS ListSecret.

Every operation reaches the same end state when repeated, so none needs the "calling"
mark: a worker that dies mid-call leaves the job to be re-queued, not put in doubt.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from worker.engine.clients import sms_client
from worker.engine.kind import JobContext, JobKind, Payload, Result
from worker.jobs import list_credentials
from worker.jobs.fields import Guid, ListId
from worker.jobs.list_credentials import ListKeys
from worker.ledger.db import connection
from worker.ledger.models import Job, JobStatus
from worker.mailup.errors import Api
from worker.settings import Settings

Operation = Literal["read", "create", "delete", "rotate"]


class ManageListSecret(Payload):
    operation: Operation
    list_id: ListId
    # Needed to create, delete or rotate: when omitted, the one the ledger remembers, or else
    # the one MailUp's Console API gives.
    list_guid: Guid | None = None


def execute(context: JobContext, payload: ManageListSecret) -> Result:
    settings, account = context.settings, context.claim.account
    client = sms_client(settings, account)
    with connection(settings.ledger_url) as db:
        known = list_credentials.load(db, settings, account, payload.list_id)
    list_guid = payload.list_guid or known.list_guid
    if list_guid is None and payload.operation != "read":
        list_guid = list_credentials.read_guid(settings, account, payload.list_id)

    secret, reply = client.get_list_secret(payload.list_id)
    created = False
    if payload.operation in ("delete", "rotate") and secret is not None:
        assert list_guid is not None
        reply = client.delete_list_secret(payload.list_id, list_guid)
        secret = None
    if payload.operation in ("create", "rotate") and secret is None:
        assert list_guid is not None
        secret, reply = client.create_list_secret(payload.list_id, list_guid)
        created = True

    keys = ListKeys(list_guid, secret)
    return Result(
        outcome={
            "operation": payload.operation,
            "secret_exists": secret is not None,
            "created": created,
        },
        record=lambda db: list_credentials.save(db, settings, account, payload.list_id, keys),
        http_status=reply.http_status,
        code=reply.code,
    )


def under_way(settings: Settings, account: str, list_id: int) -> bool:
    """Whether a job that changes this list's ListSecret is queued or running: meanwhile
    MailUp may briefly know no secret for the list, or refuse the one we hold."""
    with connection(settings.ledger_url) as db:
        payloads = db.scalars(
            select(Job.payload).where(
                Job.kind == KIND.name,
                Job.account == account,
                Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)),
            )
        )
        return any(p.get("list_id") == list_id and p.get("operation") != "read" for p in payloads)


KIND = JobKind("list_secret", ManageListSecret, execute, api=Api.SMS)  # the SMS API's codes
