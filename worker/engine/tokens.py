"""One console OAuth2 token per account, shared by every worker on every host.

The token lives in Redis when the broker is Redis, else in the ledger; either way encrypted
with the secret key. A refresh happens under a lock, and whoever takes the lock first looks
again before calling MailUp: so when many workers find the token expired together, MailUp
sees one refresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from worker.ledger.crypto import SecretBox, secret_box
from worker.ledger.db import connection
from worker.ledger.models import OAuthToken
from worker.mailup.errors import PermanentError
from worker.mailup.oauth import OAuthClient, Token
from worker.settings import Settings


class TokenSlot(Protocol):
    """An account's token, held under its lock."""

    def current(self) -> Token | None: ...

    def save(self, token: Token) -> None: ...


class TokenStore(Protocol):
    def load(self, account: str) -> Token | None: ...

    def locked(self, account: str) -> AbstractContextManager[TokenSlot]: ...


def _encode(box: SecretBox, token: Token) -> str:
    return box.encrypt(json.dumps(token.as_dict()))


def _decode(box: SecretBox, text: str | None) -> Token | None:
    return Token(**json.loads(box.decrypt(text))) if text else None


class RedisTokenStore:
    def __init__(
        self, client: redis.Redis, box: SecretBox, prefix: str = "mailup-jobs:oauth:"
    ) -> None:
        self._redis = client
        self._box = box
        self._prefix = prefix

    def load(self, account: str) -> Token | None:
        raw = self._redis.get(self._prefix + account)
        return _decode(self._box, raw.decode() if isinstance(raw, bytes) else raw)

    @contextmanager
    def locked(self, account: str) -> Iterator[TokenSlot]:
        lock = self._redis.lock(self._prefix + account + ":lock", timeout=60, blocking_timeout=60)
        with lock:
            yield _RedisSlot(self, account)


class _RedisSlot:
    def __init__(self, store: RedisTokenStore, account: str) -> None:
        self._store = store
        self._account = account

    def current(self) -> Token | None:
        return self._store.load(self._account)

    def save(self, token: Token) -> None:
        ttl = max(int(token.expires_at - time.time()), 1)
        self._store._redis.set(
            self._store._prefix + self._account, _encode(self._store._box, token), ex=ttl
        )


class LedgerTokenStore:
    """Without Redis: a row per account; its row lock (SQLite: the write lock) serialises."""

    def __init__(self, database_url: str, box: SecretBox) -> None:
        self._url = database_url
        self._box = box

    def load(self, account: str) -> Token | None:
        with connection(self._url) as db:
            text = db.scalar(
                select(OAuthToken.token_encrypted).where(OAuthToken.account == account)
            )
        return _decode(self._box, text)

    @contextmanager
    def locked(self, account: str) -> Iterator[TokenSlot]:
        try:
            with connection(self._url) as db:
                db.execute(insert(OAuthToken).values(account=account, token_encrypted=None))
        except IntegrityError:
            pass  # the row exists already
        with connection(self._url) as db:
            text = db.scalar(
                select(OAuthToken.token_encrypted)
                .where(OAuthToken.account == account)
                .with_for_update()
            )
            slot = _LedgerSlot(_decode(self._box, text))
            yield slot
            if slot.saved is not None:
                db.execute(
                    update(OAuthToken)
                    .where(OAuthToken.account == account)
                    .values(token_encrypted=_encode(self._box, slot.saved))
                )


class _LedgerSlot:
    def __init__(self, token: Token | None) -> None:
        self._token = token
        self.saved: Token | None = None

    def current(self) -> Token | None:
        return self.saved or self._token

    def save(self, token: Token) -> None:
        self.saved = token


class AccessTokens:
    """Bearer tokens for an account's console calls: fresh, shared, refreshed once."""

    def __init__(self, store: TokenStore, client: Callable[[str], OAuthClient]) -> None:
        self._store = store
        self._client = client
        self._memo: dict[str, Token] = {}

    def get(self, account: str) -> str:
        token = self._memo.get(account)
        if token is None or not token.fresh():
            token = self._store.load(account)
        if token is None or not token.fresh():
            token = self._renew(account, rejected=None)
        self._memo[account] = token
        return token.access_token

    def renew(self, account: str, rejected: str) -> str:
        """After a 401: a new token, unless another worker already replaced ``rejected``."""
        self._memo.pop(account, None)
        token = self._renew(account, rejected=rejected)
        self._memo[account] = token
        return token.access_token

    def _renew(self, account: str, *, rejected: str | None) -> Token:
        with self._store.locked(account) as slot:
            current = slot.current()
            if current and current.fresh() and current.access_token != rejected:
                return current  # someone refreshed while we waited for the lock
            client = self._client(account)
            token = None
            if current and current.refresh_token:
                try:
                    token = client.refresh(current.refresh_token)
                except PermanentError:
                    token = None  # refresh token expired or used: log in again
            token = token or client.password_grant()
            slot.save(token)
            return token


def access_tokens(settings: Settings, client: Callable[[str], OAuthClient]) -> AccessTokens:
    """The token source for this process: Redis when the broker is Redis, else the ledger."""
    box = secret_box(settings)
    store: TokenStore
    if settings.broker_is_redis:
        store = RedisTokenStore(redis.Redis.from_url(settings.broker_url), box)
    else:
        store = LedgerTokenStore(settings.ledger_url, box)
    return AccessTokens(store, client)
