"""Text output that cannot be turned against its reader: the ledger's and MailUp's strings
(campaign codes, error texts, subjects, names) are echoed with their control characters
escaped, so none can drive the terminal or forge a line. JSON output escapes them already."""

from __future__ import annotations

import click


def say(line: str, *, err: bool = False) -> None:
    """Echo one line of text output, its control characters escaped."""
    # Imported here: `mailup-jobs --help` loads nothing of the worker.
    from worker.escape import printable

    click.echo(printable(line), err=err)
