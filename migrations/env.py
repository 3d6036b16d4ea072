"""Alembic environment: the ledger's models, the URL from settings (or the caller)."""

from typing import Any

from alembic import context

from worker.ledger.db import engine_for
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
    with engine_for(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
