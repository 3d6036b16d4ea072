"""The ``mailup-jobs`` command: run the system, enqueue jobs, audit the ledger."""

from __future__ import annotations

import sys

import click

from producers.cli import (
    audit,
    campaigns,
    console,
    enqueue,
    ledger,
    lists,
    messages,
    observe,
    system,
)
from producers.cli.errors import explain
from producers.cli.output import say


@click.group()
def cli() -> None:
    """mailup-jobs: a durable job queue for the MailUp APIs."""


for command in (
    system.migrate,
    system.worker,
    system.beat,
    system.sandbox,
    system.generate_key,
    system.demo,
    system.check,
    system.flower,
    observe.metrics,
    enqueue.enqueue,
    audit.jobs,
    ledger.ledger_group,
    console.accounts,
    console.trusted_senders_group,
    console.smtp_users_group,
    lists.lists_group,
    lists.groups_group,
    lists.recipients_group,
    lists.import_file,
    lists.imports_group,
    messages.messages_group,
    campaigns.campaigns_group,
    campaigns.sendings_group,
):
    cli.add_command(command)
enqueue.enqueue.add_command(campaigns.enqueue_campaign)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        say(f"mailup-jobs: {line}", err=True)
        sys.exit(1)
    finally:
        _close_the_ledger()


def _close_the_ledger() -> None:
    """Close the pooled ledger connections now: dropped as the interpreter exits, psycopg
    may warn of each. (Only if the command used the ledger: --help loads no SQLAlchemy.)"""
    if "worker.ledger.db" in sys.modules:
        from worker.ledger.db import dispose_all

        dispose_all()
