"""A list's ListGuid and ListSecret, as the ledger keeps them (the secret encrypted).

Workers cache them for a minute: a secret rotated meanwhile makes MailUp answer 103, and
the SMS job then reads the new one (see ``refresh_secret``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import Connection, select

from worker.engine.clients import console_client
from worker.errors import ConfigurationError
from worker.ledger import store
from worker.ledger.crypto import secret_box
from worker.ledger.db import connection
from worker.ledger.models import ListCredential, utcnow
from worker.ledger.store import Executor
from worker.mailup.lists import Lists
from worker.mailup.sms import SmsClient
from worker.settings import Settings

CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class ListKeys:
    list_guid: str | None
    secret: str | None


_cache: dict[tuple[str, str, int], tuple[float, ListKeys]] = {}


def load(db: Executor, settings: Settings, account: str, list_id: int) -> ListKeys:
    row = db.execute(
        select(ListCredential.list_guid, ListCredential.secret_encrypted).where(
            ListCredential.account == account, ListCredential.list_id == list_id
        )
    ).first()
    if row is None:
        return ListKeys(None, None)
    secret = secret_box(settings).decrypt(row.secret_encrypted) if row.secret_encrypted else None
    return ListKeys(row.list_guid, secret)


def known_guid(settings: Settings, account: str, list_id: int) -> str | None:
    """The list's GUID if the ledger knows it (without touching the secret)."""
    with connection(settings.ledger_url) as db:
        return db.scalar(
            select(ListCredential.list_guid).where(
                ListCredential.account == account, ListCredential.list_id == list_id
            )
        )


def save(db: Connection, settings: Settings, account: str, list_id: int, keys: ListKeys) -> None:
    """Replace the list's keys (the secret encrypted)."""
    store.upsert(
        db,
        ListCredential,
        account=account,
        list_id=list_id,
        list_guid=keys.list_guid,
        secret_encrypted=encrypt(settings, keys),
        updated_at=utcnow(),
    )
    _cache.pop((settings.ledger_url, account, list_id), None)


def encrypt(settings: Settings, keys: ListKeys) -> str | None:
    return secret_box(settings).encrypt(keys.secret) if keys.secret else None


def refresh_secret(
    settings: Settings, account: str, list_id: int, client: SmsClient, list_guid: str | None
) -> str | None:
    """Read the ListSecret from MailUp and keep it (a miss, or a secret rotated elsewhere)."""
    secret, _ = client.get_list_secret(list_id)
    with connection(settings.ledger_url) as db:
        save(db, settings, account, list_id, ListKeys(list_guid, secret))
    return secret


def read_guid(settings: Settings, account: str, list_id: int) -> str:
    """The list's ListGuid from MailUp's Console API (it needs the account's OAuth2 client)."""
    try:
        return Lists(console_client(settings, account)).details(list_id).guid
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"no ListGuid is known for list {list_id} of account {account!r} and it cannot be "
            f"read from MailUp ({exc}): give list_guid to a list-secret job for this list"
        ) from None


def for_sending(settings: Settings, account: str, list_id: int, client: SmsClient) -> ListKeys:
    """ListGuid and ListSecret for an SMS: from the ledger, or from MailUp on a miss (the
    secret is None when MailUp has none either)."""
    key = (settings.ledger_url, account, list_id)
    cached = _cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    with connection(settings.ledger_url) as db:
        keys = load(db, settings, account, list_id)
    if keys.list_guid is None or keys.secret is None:
        guid = keys.list_guid or read_guid(settings, account, list_id)
        keys = ListKeys(guid, keys.secret or client.get_list_secret(list_id)[0])
        with connection(settings.ledger_url) as db:
            save(db, settings, account, list_id, keys)
    if keys.secret is not None:
        _cache[key] = (time.monotonic() + CACHE_SECONDS, keys)
    return keys


def missing_secret(account: str, list_id: int) -> NoReturn:
    raise ConfigurationError(
        f"list {list_id} of account {account!r} has no ListSecret on MailUp: run "
        f"'mailup-jobs enqueue list-secret create --list-id {list_id}' first"
    )
