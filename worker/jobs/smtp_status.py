"""What ListUserInfo says of SMTP+ users, recorded in the ledger (``smtp_user_status``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from worker.ledger import store
from worker.ledger.models import SmtpUserStatus, utcnow
from worker.mailup.transactional import UserInfo


def record(db: Connection, account: str, users: Iterable[UserInfo]) -> None:
    for user in users:
        store.upsert(
            db,
            SmtpUserStatus,
            account=account,
            username=user.username,
            is_enabled=user.is_enabled,
            admin_block=user.admin_block,
            block_until=user.block_until,
            checked_at=utcnow(),
        )


def view(user: UserInfo) -> dict[str, object]:
    """A user's status for outcomes and operators."""
    return {
        "username": user.username,
        "is_enabled": user.is_enabled,
        "admin_block": user.admin_block,
        "block_until": user.block_until.isoformat() if user.block_until else None,
    }
