"""Place an order and email its confirmation in one transaction; print what the broker and
the ledger held before and after the commit, as JSON."""

import json
from typing import Any

import redis
import sqlalchemy
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from producers import send_email
from shop.models import Order
from worker.app import QUEUE
from worker.settings import get_settings


class Rollback(Exception):
    pass


def queued() -> int:
    client = redis.Redis.from_url(get_settings().broker_url)
    keys = [k for k in client.scan_iter(f"{QUEUE}*") if client.type(k) == b"list"]
    return sum(int(client.llen(k)) for k in keys)


def in_ledger(job_id: str) -> bool:
    """Seen from another connection (a plain read: it never waits for a lock)."""
    engine = sqlalchemy.create_engine(get_settings().ledger_url, poolclass=sqlalchemy.NullPool)
    with engine.connect() as db:
        found = db.execute(sqlalchemy.text("SELECT 1 FROM jobs WHERE id = :id"), {"id": job_id})
        return found.first() is not None


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ref")
        parser.add_argument("--to", required=True)
        parser.add_argument("--key")
        parser.add_argument("--subject")
        parser.add_argument("--rollback", action="store_true")
        parser.add_argument("--twice", action="store_true", help="ask for the email twice")

    def handle(self, *args: Any, **options: Any) -> None:
        seen: dict[str, Any] = {}
        try:
            with transaction.atomic():
                order = Order.objects.create(ref=options["ref"])
                email = {
                    "sender": "shop@example.com",
                    "to": [options["to"]],
                    "subject": options["subject"] or f"Order {order.ref}",
                    "text": "Thanks!",
                    "idempotency_key": options["key"],
                }
                order.job_id = send_email(**email)
                if options["twice"]:
                    seen["second_job_id"] = send_email(**email)
                order.save()
                seen["job_id"] = order.job_id
                seen["queued_before_commit"] = queued()
                seen["in_ledger_before_commit"] = in_ledger(order.job_id)
                if options["rollback"]:
                    raise Rollback
        except Rollback:
            pass
        seen["queued_after"] = queued()
        seen["in_ledger_after"] = in_ledger(seen["job_id"])
        self.stdout.write(json.dumps(seen))
