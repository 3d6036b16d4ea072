"""What ListUserInfo says of SMTP+ users, recorded in the ledger (``smtp_user_status``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from worker.ledger import store
from worker.ledger.models import SmtpUserStatus, utcnow


def record(db: Connection, account: str, users: list[dict[str, Any]]) -> None:
    for user in users:
        store.upsert(
            db,
            SmtpUserStatus,
            account=account,
            username=user["Username"],
            is_enabled=user.get("IsEnabled"),
            admin_block=user.get("AdminBlock"),
            block_until=mailup_datetime(user.get("BlockUntil")),
            checked_at=utcnow(),
        )


def mailup_datetime(value: Any) -> datetime | None:
    """MailUp's dates: ISO, no zone (UTC); "0001-01-01T00:00:00" means none."""
    if not value or str(value).startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
