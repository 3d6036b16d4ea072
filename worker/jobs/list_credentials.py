"""A list's ListGuid and ListSecret, as the ledger keeps them (the secret encrypted)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.errors import ConfigurationError
from worker.ledger.crypto import secret_box
from worker.ledger.db import transaction
from worker.ledger.models import ListCredential
from worker.mailup.sms import SmsClient
from worker.settings import Settings


@dataclass(frozen=True)
class ListKeys:
    list_guid: str | None
    secret: str | None


def load(session: Session, settings: Settings, account: str, list_id: int) -> ListKeys:
    row = session.scalar(
        select(ListCredential).where(
            ListCredential.account == account, ListCredential.list_id == list_id
        )
    )
    if row is None:
        return ListKeys(None, None)
    secret = secret_box(settings).decrypt(row.secret_encrypted) if row.secret_encrypted else None
    return ListKeys(row.list_guid, secret)


def row(settings: Settings, account: str, list_id: int, keys: ListKeys) -> ListCredential:
    """The ledger row for these keys, ready to merge."""
    encrypted = secret_box(settings).encrypt(keys.secret) if keys.secret else None
    return ListCredential(
        account=account, list_id=list_id, list_guid=keys.list_guid, secret_encrypted=encrypted
    )


def refresh_secret(
    settings: Settings, account: str, list_id: int, client: SmsClient, list_guid: str | None
) -> str | None:
    """Read the ListSecret from MailUp and keep it (a miss, or a secret rotated elsewhere)."""
    secret, _ = client.get_list_secret(list_id)
    with transaction(settings.ledger_url) as session:
        session.merge(row(settings, account, list_id, ListKeys(list_guid, secret)))
    return secret


def for_sending(
    settings: Settings, account: str, list_id: int, client: SmsClient
) -> tuple[str, str]:
    """ListGuid and ListSecret for an SMS: from the ledger, the secret from MailUp on a miss."""
    with transaction(settings.ledger_url) as session:
        keys = load(session, settings, account, list_id)
    if keys.list_guid is None:
        raise ConfigurationError(
            f"no ListGuid is known for list {list_id} of account {account!r}: run "
            f"'mailup-jobs enqueue list-secret read --list-id {list_id} --list-guid GUID' first"
        )
    secret = keys.secret or refresh_secret(settings, account, list_id, client, keys.list_guid)
    if secret is None:
        raise ConfigurationError(
            f"list {list_id} of account {account!r} has no ListSecret on MailUp: run "
            f"'mailup-jobs enqueue list-secret create --list-id {list_id}' first"
        )
    return keys.list_guid, secret
