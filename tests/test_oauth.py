"""The console OAuth2 token: shared by workers, refreshed once, kept encrypted."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import replace

import pytest
import redis
import sqlalchemy

from sandbox.server import Sandbox
from tests.conftest import Env
from worker.engine.clients import oauth_client
from worker.engine.tokens import AccessTokens, LedgerTokenStore, RedisTokenStore, TokenStore
from worker.ledger.crypto import secret_box
from worker.ledger.db import dispose_all
from worker.mailup.console import ConsoleClient, TrustedSender
from worker.mailup.http import Timeouts
from worker.settings import get_settings


@pytest.fixture(params=["ledger", "redis"])
def store_kind(request: pytest.FixtureRequest, env: Env) -> str:
    if request.param == "redis":
        env.set(MAILUP_JOBS_BROKER_URL=request.getfixturevalue("redis_broker"))
    return str(request.param)


def _store() -> TokenStore:
    settings = get_settings()
    if settings.broker_is_redis:
        return RedisTokenStore(redis.Redis.from_url(settings.broker_url), secret_box(settings))
    return LedgerTokenStore(settings.ledger_url, secret_box(settings))


def _tokens() -> AccessTokens:
    return AccessTokens(_store(), lambda account: oauth_client(get_settings(), account))


def _console(tokens: AccessTokens) -> ConsoleClient:
    """The default account's Console API, on ``tokens``."""
    return ConsoleClient(
        get_settings().console_url,
        token=lambda: tokens.get("default"),
        renew=lambda rejected: tokens.renew("default", rejected),
        timeouts=Timeouts(2, 5),
    )


def _grants(sandbox: Sandbox) -> tuple[int, int]:
    return len(sandbox.journal(operation="token_password")), len(
        sandbox.journal(operation="token_refresh")
    )


def test_one_login_serves_every_call_until_expiry(sandbox: Sandbox, store_kind: str) -> None:
    tokens = _tokens()
    first = tokens.get("default")

    assert _tokens().get("default") == first  # another worker reuses it
    assert _grants(sandbox) == (1, 0)


def test_a_401_renews_the_token_once_and_the_call_goes_through(
    sandbox: Sandbox, store_kind: str
) -> None:
    tokens = _tokens()
    console = _console(tokens)
    assert [p.code for p in console.smtp_priorities()] == [1, 2, 3, 4, 5]

    sandbox.expire_tokens()  # MailUp forgets the token before its announced expiry

    assert len(console.smtp_priorities()) == 5
    assert _grants(sandbox) == (1, 1)


def _get_token_at(barrier_time: float) -> None:
    dispose_all()
    get_settings.cache_clear()
    time.sleep(max(barrier_time - time.time(), 0))
    _tokens().get("default")


def test_two_workers_and_an_expired_token_make_one_refresh(
    sandbox: Sandbox, store_kind: str
) -> None:
    # Given a stored token whose time is up
    store = _store()
    _tokens().get("default")
    with store.locked("default") as slot:
        current = slot.current()
        assert current is not None
        slot.save(replace(current, expires_at=time.time() - 1))

    # When two worker processes need it at the same moment
    context = multiprocessing.get_context("fork")
    start = time.time() + 0.5
    workers = [context.Process(target=_get_token_at, args=(start,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    # Then MailUp saw exactly one refresh (and no second login)
    assert _grants(sandbox) == (1, 1)
    fresh = store.load("default")
    assert fresh is not None and fresh.fresh()


def test_tokens_are_stored_encrypted(sandbox: Sandbox, store_kind: str) -> None:
    access = _tokens().get("default")
    settings = get_settings()
    if settings.broker_is_redis:
        client = redis.Redis.from_url(settings.broker_url)
        stored = b"".join(client.get(k) or b"" for k in client.scan_iter("mailup-jobs:oauth:*"))
        assert stored and access.encode() not in stored
    else:
        engine = sqlalchemy.create_engine(settings.ledger_url)
        with engine.connect() as connection:
            rows = str(list(connection.exec_driver_sql("SELECT * FROM oauth_tokens")))
        engine.dispose()
        assert "gAAAAA" in rows and access not in rows


def test_both_error_shapes_become_clear_errors(sandbox: Sandbox, env: Env) -> None:
    from worker.mailup.errors import PermanentError

    # {"error", "error_description"}: the token endpoint refusing a password
    env.set(MAILUP_PASSWORD="wrong-password")
    with pytest.raises(PermanentError) as refused:
        oauth_client(get_settings(), "default").password_grant()
    assert refused.value.code == "invalid_grant" and refused.value.http_status == 400
    assert "wrong-password" not in str(refused.value)

    # {"ErrorCode", "ErrorDescription", …}: the Console API refusing a request
    env.set(MAILUP_PASSWORD="sandbox-password")
    tokens = _tokens()
    console = _console(tokens)
    with pytest.raises(PermanentError) as missing:
        console.disable_trusted_sender(TrustedSender("no-such-id", "x@example.com", 1, "", None))
    assert missing.value.code == "404" and missing.value.http_status == 404
    assert "disable trusted sender: HTTP 404 code 404:" in str(missing.value)
