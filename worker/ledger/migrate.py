"""Bring a ledger's schema up to date (``mailup-jobs migrate``), and tell where it is."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

import migrations
from worker.ledger.db import engine_for


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["url"] = url
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def head() -> str | None:
    """The revision the code expects the ledger at."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current(url: str) -> str | None:
    """The ledger's revision (None: no tables yet). Raises when it cannot be reached."""
    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def shown(url: str) -> str:
    """The ledger's URL with its password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)
