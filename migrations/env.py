"""Alembic environment: the ledger's models, the URL from settings (or the caller)."""

from typing import Any

from alembic import context
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from worker.ledger.db import engine_for
from worker.ledger.migrate import LOCK_TIMEOUT_MS
from worker.ledger.models import Base, UtcDateTime
from worker.settings import get_settings

config = context.config
url = config.attributes.get("url") or get_settings().ledger_url


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell plain SQLAlchemy types, so they never import the application.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=render_item,
            # One transaction per migration: each holds its locks only for its own time.
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


def _engine() -> Engine:
    """On PostgreSQL, a connection of its own whose DDL waits at most LOCK_TIMEOUT for a
    lock: a DDL waiting in a table's lock queue holds up every producer and worker behind
    it, so it gives up instead (and ``worker.ledger.migrate.upgrade`` tries again)."""
    if not url.startswith("postgresql"):
        return engine_for(url)
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _bounded_waits(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        dbapi_connection.commit()

    return engine


run()
