"""Bring a ledger's schema up to date (``mailup-jobs migrate``), and tell where it is."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import migrations
from worker.ledger.db import engine_for

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["url"] = url
    return config


# How long a migration's statement waits for a table lock on PostgreSQL before it gives up
# (and is tried again): what a producer or worker queued behind it may wait at most.
LOCK_TIMEOUT_MS = 500
# Tries of a migration that keeps meeting a lock held by a long transaction.
LOCK_TRIES = 120


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. A migration whose lock wait timed out (a long transaction
    held its table) is tried again, the migrations before it kept."""
    for attempt in range(1, LOCK_TRIES + 1):
        try:
            command.upgrade(alembic_config(url), revision)
            return
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE or attempt == LOCK_TRIES:
                raise
            log.info("a migration waited %d ms for a lock: trying again", LOCK_TIMEOUT_MS)
            time.sleep(min(0.1 * attempt, 2.0))


LOCK_NOT_AVAILABLE = "55P03"


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
